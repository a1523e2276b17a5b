package dispatch

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

// TestWalkInBatches walks a plan of topic targets and a member list a few
// topics at a time: in target order, members in player-id order, each batch
// resuming from the position the last one returned, and stopping before until.
func TestWalkInBatches(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "test"})
	_, err := games.NewStore(pool).Create(ctx, games.Game{ID: "g1", Name: "g1", DefaultLocale: "en"})
	require.NoError(t, err)
	segs := segments.NewStore(pool)
	members, err := segments.ParseRule([]byte(`{"members":true}`), "rule")
	require.NoError(t, err)
	seg, err := segs.Create(ctx, segments.Segment{GameID: "g1", Name: "s", Rule: members})
	require.NoError(t, err)
	_, err = segs.ReplaceMembers(ctx, "g1", seg.ID, strings.NewReader("p3\np1\np5\np2\np4\n"))
	require.NoError(t, err)
	var list int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT member_list_id FROM segments WHERE id = $1`, seg.ID).Scan(&list))

	w := &walker{db: pool, prefix: "h", game: "g1", kind: protocol.KindNotice, msg: "m", list: &list,
		targets: []segments.Target{
			{Scope: protocol.ScopeAll},
			{Scope: protocol.ScopeTag, Keys: []string{"level", "30-39"}},
			{Scope: protocol.ScopePlayer, Members: true},
		}}
	walk := func(from position, n int, until *position) (topics []string, next position) {
		steps, next, err := w.next(ctx, from, n, until)
		require.NoError(t, err)
		for _, st := range steps {
			topics = append(topics, st.topic)
		}
		return topics, next
	}
	got, next := walk(position{}, 3, nil)
	require.Equal(t, []string{"h/g1/all/notice/m", "h/g1/tag/level/30-39/notice/m", "h/g1/player/p1/notice/m"}, got)
	require.Equal(t, position{Target: 2, After: "p1"}, next)
	got, next = walk(next, 3, nil)
	require.Equal(t, []string{"h/g1/player/p2/notice/m", "h/g1/player/p3/notice/m", "h/g1/player/p4/notice/m"}, got)
	got, next = walk(next, 3, nil)
	require.Equal(t, []string{"h/g1/player/p5/notice/m"}, got)
	require.Equal(t, position{Target: 3}, next, "the list ran out: the walk is over")
	got, _ = walk(next, 3, nil)
	require.Empty(t, got)

	got, _ = walk(position{}, 10, &position{Target: 2, After: "p2"})
	require.Equal(t, []string{"h/g1/all/notice/m", "h/g1/tag/level/30-39/notice/m", "h/g1/player/p1/notice/m",
		"h/g1/player/p2/notice/m"}, got, "up to and including until's player")
	got, _ = walk(position{}, 10, &position{Target: 1})
	require.Equal(t, []string{"h/g1/all/notice/m"}, got, "stops before until's target")
}
