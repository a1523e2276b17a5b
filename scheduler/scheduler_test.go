package scheduler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/internal/clocktest"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/scheduler"
	"github.com/heraldpush/herald/segments"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(dbtest.WithTemplate(m), goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"))
}

// TestOneLeaderAndHandover runs two schedulers on one database: exactly one
// leads, and when it stops the other takes over.
func TestOneLeaderAndHandover(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := scheduler.Config{DB: pool, Campaigns: campaigns.NewStore(pool, 0), Dispatches: dispatch.NewStore(pool),
		Lists: segments.NewStore(pool), Log: log, Tick: 20 * time.Millisecond}
	a, b := scheduler.New(cfg), scheduler.New(cfg)
	a.Start(context.Background())
	defer a.Stop()
	require.Eventually(t, a.Leader, 60*time.Second, 10*time.Millisecond)
	b.Start(context.Background())
	defer b.Stop()

	// b keeps trying for a while and never leads while a does.
	for range 20 {
		require.False(t, b.Leader(), "two leaders at once")
		require.True(t, a.Leader())
		time.Sleep(10 * time.Millisecond)
	}
	a.Stop()
	require.False(t, a.Leader())
	require.Eventually(t, b.Leader, 60*time.Second, 10*time.Millisecond, "b takes over when a stops")
}

// TestSendsAndExpiresByItsClock runs the scheduler on a clock the test moves:
// a campaign scheduled an hour ahead is sent once the clock reaches its time,
// and its dispatch is marked for clearing once the clock passes its expiry,
// without waiting an hour or a week.
func TestSendsAndExpiresByItsClock(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "test"})
	start := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := clocktest.New(start)
	store := campaigns.NewStore(pool, 0).WithClock(clock.Now)
	_, err := games.NewStore(pool).Create(ctx, games.Game{ID: "g1", Name: "g1", DefaultLocale: "en"})
	require.NoError(t, err)
	var in campaigns.Input
	require.NoError(t, json.Unmarshal(fmt.Appendf(nil, `{"kind":"notice","name":"n","audience":{"rule":{"everyone":true}},
		"content":{"title":{"en":"t"},"body":{"en":"b"}},"schedule":{"at":%q},"expires_at":%q}`,
		start.Add(time.Hour).Format(time.RFC3339), start.Add(25*time.Hour).Format(time.RFC3339)), &in))
	c, err := store.Create(ctx, "g1", in)
	require.NoError(t, err)

	s := scheduler.New(scheduler.Config{DB: pool, Campaigns: store, Dispatches: dispatch.NewStore(pool),
		Lists: segments.NewStore(pool), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Tick: 10 * time.Millisecond, Poll: 10 * time.Millisecond, Now: clock.Now}) // a moved clock notifies nobody: look often
	s.Start(context.Background())
	defer s.Stop()
	require.Eventually(t, s.Leader, 60*time.Second, 10*time.Millisecond)

	clock.Add(time.Hour)
	require.Eventually(t, func() bool {
		got, err := store.Get(ctx, "g1", c.ID)
		require.NoError(t, err)
		return got.Status == campaigns.StatusLive
	}, 60*time.Second, 10*time.Millisecond, "sent when the clock reaches its time")

	clock.Add(24 * time.Hour)
	require.Eventually(t, func() bool {
		var reason *string
		require.NoError(t, pool.QueryRow(ctx, `SELECT clear_reason FROM dispatches WHERE campaign_id = $1`, c.ID).Scan(&reason))
		return reason != nil && *reason == string(dispatch.ReasonExpire)
	}, 60*time.Second, 10*time.Millisecond, "marked for clearing when the clock passes its expiry")
}

// TestAScheduleChangeWakesTheLeader: with a safety poll of ten minutes, only
// the notification of the new campaign can make the leader fire it, two
// seconds after it was created.
func TestAScheduleChangeWakesTheLeader(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "test"})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := campaigns.NewStore(pool, 0)
	_, err := games.NewStore(pool).Create(ctx, games.Game{ID: "g1", Name: "g1", DefaultLocale: "en"})
	require.NoError(t, err)
	s := scheduler.New(scheduler.Config{DB: pool, Campaigns: store, Dispatches: dispatch.NewStore(pool), Lists: segments.NewStore(pool),
		Log: log, Poll: 10 * time.Minute, Channel: campaigns.ScheduleChannel})
	s.Start(context.Background())
	defer s.Stop()
	require.Eventually(t, s.Leader, 60*time.Second, 10*time.Millisecond)

	at := time.Now().Add(2 * time.Second)
	var in campaigns.Input
	require.NoError(t, json.Unmarshal(fmt.Appendf(nil, `{"kind":"notice","name":"soon","audience":{"rule":{"everyone":true}},
		"content":{"title":{"en":"t"},"body":{"en":"b"}},"schedule":{"at":%q}}`, at.Format(time.RFC3339Nano)), &in))
	c, err := store.Create(ctx, "g1", in)
	require.NoError(t, err)
	var fired campaigns.Campaign
	require.Eventually(t, func() bool {
		fired, err = store.Get(ctx, "g1", c.ID)
		require.NoError(t, err)
		return len(fired.Dispatches) == 1
	}, 60*time.Second, 10*time.Millisecond, "the leader woke up for it")
	var created time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT created_at FROM dispatches WHERE campaign_id = $1`, c.ID).Scan(&created))
	t.Logf("fired %v after its time", created.Sub(at))
}

// TestALeaderCutOffHandsOver ends the leader's session on the server, as a
// lost connection would: leadership is taken again, on a new session, by one
// replica only.
func TestALeaderCutOffHandsOver(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := campaigns.NewStore(pool, 0)
	cfg := scheduler.Config{DB: pool, Campaigns: store, Dispatches: dispatch.NewStore(pool), Lists: segments.NewStore(pool),
		Log: log, Channel: campaigns.ScheduleChannel}
	a, b := scheduler.New(cfg), scheduler.New(cfg)
	a.Start(ctx)
	defer a.Stop()
	require.Eventually(t, a.Leader, 60*time.Second, 10*time.Millisecond)
	b.Start(ctx)
	defer b.Stop()

	holder := func() (pid int) {
		err := pool.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted`).Scan(&pid)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0
		}
		require.NoError(t, err)
		return pid
	}
	old := holder()
	var cut bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, old).Scan(&cut))
	require.True(t, cut)
	require.Eventually(t, func() bool {
		pid := holder()
		return pid != 0 && pid != old && a.Leader() != b.Leader()
	}, 60*time.Second, 10*time.Millisecond, "a new session leads, and one replica")
}
