package receipts

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/dbtest"
)

// clock is a settable time for the Ingester's received_at.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func f(v float64) *float64 { return &v }

// Stats count players per event, the funnel, the latency from sent_at to
// Herald receiving each delivered receipt, and receipts per minute; over a
// campaign's sends, a player counts once per event.
func TestStatsOfASendAndOfACampaign(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.NewPool(t)
	sent := time.Now().Add(-time.Hour).Truncate(time.Minute)
	campaign := newCampaign(t, db, "g1")
	d1 := newDispatch(t, db, campaign, sent)
	d2 := newDispatch(t, db, campaign, sent.Add(30*time.Minute))
	var c clock
	store, in := startIngester(t, db, Config{Now: c.now})
	handled := 0
	receive := func(at time.Time, player string, send uuid.UUID, event string) {
		c.set(at)
		in.Handle(topic("g1", player), payload(send, event, at))
		handled++
		waitSettled(t, in, int64(handled)) // one receipt at a time, each at its time
	}
	for i, p := range []string{"p1", "p2", "p3", "p4"} {
		receive(sent.Add(time.Duration(i+1)*time.Second), p, d1, "delivered") // 1 to 4 s
	}
	for _, p := range []string{"p1", "p2", "p3"} {
		receive(sent.Add(70*time.Second), p, d1, "displayed")
	}
	receive(sent.Add(80*time.Second), "p1", d1, "clicked")
	receive(sent.Add(3*time.Minute), "p2", d1, "dismissed")
	receive(sent.Add(30*time.Minute+10*time.Second), "p1", d2, "delivered")
	receive(sent.Add(30*time.Minute+20*time.Second), "p5", d2, "delivered")

	ctx := context.Background()
	st, err := store.Stats(ctx, []uuid.UUID{d1})
	require.NoError(t, err)
	assert.Equal(t, Events{Delivered: 4, Displayed: 3, Clicked: 1, Dismissed: 1}, st.Players)
	assert.Equal(t, Funnel{DisplayedPerDelivered: f(0.75), ClickedPerDisplayed: f(0.3333), DismissedPerDisplayed: f(0.3333)}, st.Funnel)
	assert.Equal(t, Latency{Receipts: 4, P50: "2.5s", P90: "3.7s", P99: "3.97s"}, st.Latency)
	minute := func(m int) time.Time { return sent.Add(time.Duration(m) * time.Minute).UTC() }
	assert.Equal(t, []Minute{
		{Minute: minute(0), Events: Events{Delivered: 4}},
		{Minute: minute(1), Events: Events{Displayed: 3, Clicked: 1}},
		{Minute: minute(3), Events: Events{Dismissed: 1}},
	}, st.Timeline)

	st, err = store.Stats(ctx, []uuid.UUID{d1, d2})
	require.NoError(t, err)
	assert.Equal(t, Events{Delivered: 5, Displayed: 3, Clicked: 1, Dismissed: 1}, st.Players, "p1 counts once")
	assert.Equal(t, Latency{Receipts: 6, P50: "3.5s", P90: "15s", P99: "19.5s"}, st.Latency)
	assert.Len(t, st.Timeline, 4)

	st, err = store.Stats(ctx, []uuid.UUID{newSend(t, db, "g1", time.Now())})
	require.NoError(t, err)
	assert.Equal(t, Stats{Timeline: []Minute{}}, st, "no receipts: zeros, no ratios, no percentiles")
}

// The stats of a send read its receipts through the key (send_id first),
// never the other sends' of its day, nor other days' partitions.
func TestStatsReadOnlyTheirSends(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.NewPool(t)
	ctx := context.Background()
	now := time.Now()
	store := NewStore(db, 0)
	_, _, err := store.Maintain(ctx, now)
	require.NoError(t, err)
	big, small := newSend(t, db, "g1", now), newSend(t, db, "g1", now)
	_, err = db.Exec(ctx, `INSERT INTO receipts (send_id, game_id, player_id, event, client_at, received_at)
		SELECT $1, 'g1', 'p' || i, e, now(), now() FROM generate_series(1, 20000) AS i,
			unnest(ARRAY['delivered', 'displayed']) AS e`, big)
	require.NoError(t, err)
	_, err = db.Exec(ctx, `INSERT INTO receipts (send_id, game_id, player_id, event, client_at, received_at)
		SELECT $1, 'g1', 'p' || i, 'delivered', now(), now() FROM generate_series(1, 10) AS i`, small)
	require.NoError(t, err)
	_, err = db.Exec(ctx, `ANALYZE receipts`)
	require.NoError(t, err)

	for _, q := range []struct {
		sql  string
		args []any
	}{
		{playersOfOne, []any{small}},
		{playersOfMany, []any{[]uuid.UUID{small, newSend(t, db, "g1", now)}}},
		{latencyQuery, []any{[]uuid.UUID{small}, []time.Time{now}}},
		{timelineQuery, []any{[]uuid.UUID{small}}},
	} {
		plan := explain(t, db, q.sql, q.args...)
		assert.NotContains(t, plan, "Seq Scan on receipts", "%s\n%s", q.sql, plan)
		assert.Contains(t, plan, "Index", "%s\n%s", q.sql, plan)
		assert.Contains(t, plan, partitionName(dayOf(now)), plan)
		assert.NotContains(t, plan, partitionName(dayOf(now)+1), "other days' partitions are not read")
	}
}

func explain(t testing.TB, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, sql string, args ...any) string {
	t.Helper()
	rows, err := db.Query(context.Background(), "EXPLAIN "+sql, args...)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return strings.Join(lines, "\n")
}
