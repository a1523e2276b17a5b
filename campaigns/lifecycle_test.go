package campaigns_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

// TestFireDueSkipsACampaignHeldUp holds the lock on the segment of the
// earliest due campaign, as a stuck transaction would: FireDue fires the other
// campaigns, another game's included, reports the held one, and fires it in a
// later round once the lock is free.
func TestFireDueSkipsACampaignHeldUp(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "test"})
	store := campaigns.NewStore(pool, 0)
	for _, g := range []string{"g1", "g2"} {
		_, err := games.NewStore(pool).Create(ctx, games.Game{ID: g, Name: g, DefaultLocale: "en"})
		require.NoError(t, err)
	}
	seg, err := segments.NewStore(pool).Create(ctx, segments.Segment{GameID: "g1", Name: "s", Rule: everyone(t)})
	require.NoError(t, err)
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	schedule := func(game, audience string, at time.Time) uuid.UUID {
		var in campaigns.Input
		require.NoError(t, json.Unmarshal(fmt.Appendf(nil, `{"kind":"notice","name":"n","audience":%s,
			"content":{"title":{"en":"t"},"body":{"en":"b"}},"schedule":{"at":%q}}`, audience, at.Format(time.RFC3339)), &in))
		c, err := store.Create(ctx, game, in)
		require.NoError(t, err)
		return c.ID
	}
	held := schedule("g1", fmt.Sprintf(`{"segment_id":%q}`, seg.ID), at)
	other := schedule("g1", `{"rule":{"everyone":true}}`, at.Add(time.Second))
	otherGame := schedule("g2", `{"rule":{"everyone":true}}`, at.Add(2*time.Second))

	holder, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer holder.Rollback(ctx) //nolint:errcheck // released below; this is for a failed test
	_, err = holder.Exec(ctx, `SELECT 1 FROM segments WHERE id = $1 FOR UPDATE`, seg.ID)
	require.NoError(t, err)

	now := at.Add(3 * time.Second)
	fired, err := store.FireDue(ctx, now, time.Minute)
	require.Equal(t, 2, fired, "the two campaigns not held up are sent")
	require.ErrorContains(t, err, held.String())
	require.Equal(t, campaigns.StatusLive, status(t, store, "g1", other))
	require.Equal(t, campaigns.StatusLive, status(t, store, "g2", otherGame))
	require.Equal(t, campaigns.StatusScheduled, status(t, store, "g1", held), "held up, not recorded as missed")

	require.NoError(t, holder.Rollback(ctx))
	fired, err = store.FireDue(ctx, now, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 1, fired, "the next round sends it")
	require.Equal(t, campaigns.StatusLive, status(t, store, "g1", held))
}

func everyone(t *testing.T) protocol.Rule {
	r, err := segments.ParseRule(json.RawMessage(`{"everyone":true}`), "rule")
	require.NoError(t, err)
	return r
}

func status(t *testing.T, store *campaigns.Store, game string, id uuid.UUID) campaigns.Status {
	t.Helper()
	c, err := store.Get(context.Background(), game, id)
	require.NoError(t, err)
	return c.Status
}
