package segments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/segments"
)

// TestPurgeRetiredListsWaitsForTheirDispatches replaces a member list that a
// dispatch still reads: the purge keeps it while the dispatch needs it, then
// deletes it (over several batches) and nothing of the current list.
func TestPurgeRetiredListsWaitsForTheirDispatches(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "test"})
	store := campaigns.NewStore(pool, 0)
	dispatches := dispatch.NewStore(pool)
	_, err := games.NewStore(pool).Create(ctx, games.Game{ID: "g1", Name: "g1", DefaultLocale: "en"})
	require.NoError(t, err)
	segs := segments.NewStore(pool)
	members, err := segments.ParseRule(json.RawMessage(`{"members":true}`), "rule")
	require.NoError(t, err)
	seg, err := segs.Create(ctx, segments.Segment{GameID: "g1", Name: "s", Rule: members})
	require.NoError(t, err)
	var old strings.Builder
	for i := range 25_000 { // more than one purge batch
		fmt.Fprintf(&old, "p%d\n", i)
	}
	_, err = segs.ReplaceMembers(ctx, "g1", seg.ID, strings.NewReader(old.String()))
	require.NoError(t, err)
	var in campaigns.Input
	require.NoError(t, json.Unmarshal(fmt.Appendf(nil, `{"kind":"notice","name":"n","audience":{"segment_id":%q},
		"content":{"title":{"en":"t"},"body":{"en":"b"}}}`, seg.ID), &in))
	c, err := store.Create(ctx, "g1", in) // sent now: its dispatch reads the old list
	require.NoError(t, err)
	_, err = segs.ReplaceMembers(ctx, "g1", seg.ID, strings.NewReader("q1\nq2\n"))
	require.NoError(t, err)
	stored := func() (n int) {
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM segment_members`).Scan(&n))
		return n
	}

	n, err := segs.PurgeRetiredLists(ctx, dispatches.ListsInUse)
	require.NoError(t, err)
	require.Zero(t, n, "the dispatch still needs the old list")
	require.Equal(t, 25_002, stored())

	_, err = pool.Exec(ctx, `UPDATE dispatches SET cleared_at = now() WHERE campaign_id = $1`, c.ID)
	require.NoError(t, err)
	n, err = segs.PurgeRetiredLists(ctx, dispatches.ListsInUse)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Equal(t, 2, stored(), "only the current list is left")
	var lists int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM member_lists`).Scan(&lists))
	require.Equal(t, 1, lists)
}
