package dispatch_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/internal/brokertest"
)

// TestWorkersWakeForNewWork: workers that look for work only once an hour
// still start a send and an expiry at once, since the transactions that ask
// for them notify every replica's workers.
func TestWorkersWakeForNewWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	broker := brokertest.Start(t)
	e.startWorker(broker.URL, dispatch.WorkerConfig{Poll: time.Hour})

	first := e.notice(`{"rule":{"everyone":true}}`, "")
	require.Eventually(t, func() bool { return e.dispatchOf(first.ID).State == dispatch.StatePublished },
		patience, 10*time.Millisecond)
	// Both workers found nothing more and sleep for the hour.
	second := e.notice(`{"rule":{"everyone":true}}`, "")
	require.Eventually(t, func() bool { return e.dispatchOf(second.ID).State == dispatch.StatePublished },
		patience, 10*time.Millisecond, "a send recorded while the workers sleep starts at once")

	_, err := e.dispatches.ExpireDue(e.ctx, time.Now().Add(10*365*24*time.Hour))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return e.dispatchOf(first.ID).State == dispatch.StateExpired && e.dispatchOf(second.ID).State == dispatch.StateExpired
	}, patience, 10*time.Millisecond, "an expiry starts at once")
}
