package scheduler_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/scheduler"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(dbtest.WithTemplate(m), goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"))
}

// TestOneLeaderAndHandover runs two schedulers on one database: exactly one
// leads, and when it stops the other takes over.
func TestOneLeaderAndHandover(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := campaigns.NewStore(pool, 0)
	a := scheduler.New(scheduler.Config{DB: pool, Campaigns: store, Log: log, Tick: 20 * time.Millisecond})
	b := scheduler.New(scheduler.Config{DB: pool, Campaigns: store, Log: log, Tick: 20 * time.Millisecond})
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
