package kickouts

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWaitAnswersOnAReceiptReadByThisReplica: a waiting request whose own
// re-reads are an hour apart answers delivered as soon as this replica's
// ingestion reads the players' receipts, before any is stored; a receipt on
// another game's topic does not count.
func TestWaitAnswersOnAReceiptReadByThisReplica(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Recheck = time.Hour })
	f.start(t)
	st, done := f.kickAndWait(t, "p1", "p2")
	read := time.Now().UTC().Truncate(time.Millisecond)
	var w *watcher
	waitFor(t, "the request to watch the kick-out", func() bool {
		f.svc.hub.mu.Lock()
		defer f.svc.hub.mu.Unlock()
		for w = range f.svc.hub.waiters[st.ID] {
			return true
		}
		return false
	})
	f.svc.Delivered("g2", "p2", st.ID, read) // another game's topic
	f.svc.Delivered("g1", "p1", st.ID, read)
	require.Equal(t, map[string]time.Time{"p1": read}, w.delivered())
	select {
	case r := <-done:
		t.Fatalf("answered before p2 confirmed: %+v %v", r.st, r.err)
	default:
	}
	f.svc.Delivered("g1", "p2", st.ID, read.Add(time.Millisecond))
	select {
	case r := <-done:
		require.NoError(t, r.err)
		require.Equal(t, StateDelivered, r.st.State)
		require.NotNil(t, r.st.PublishedAt)
		require.Equal(t, 2, r.st.Counts.Delivered)
		require.Equal(t, read, *r.st.Players[0].DeliveredAt)
		require.Equal(t, read.Add(time.Millisecond), *r.st.Players[1].DeliveredAt)
		stored, err := f.svc.cfg.Receipts.CountDelivered(f.ctx, st.ID, []string{"p1", "p2"})
		require.NoError(t, err)
		require.Zero(t, stored, "answered from the receipts read, not stored ones")
	case <-time.After(patience):
		t.Fatal("the waiting request did not answer on the receipts read")
	}
}

// waitFor polls cond until it holds, failing the test after patience.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, patience, 5*time.Millisecond, what)
}

// waited is what a waiting request answered.
type waited struct {
	st  Status
	err error
}

// kickAndWait kicks players out of g1 and waits for the kick-out in the
// background, the longest wait, answering on done.
func (f *fixture) kickAndWait(t *testing.T, players ...string) (Status, <-chan waited) {
	t.Helper()
	reason := "login_elsewhere"
	st, err := f.create(Input{Players: players, Reason: &reason})
	require.NoError(t, err)
	done := make(chan waited, 1)
	go func() {
		st, err := f.svc.Wait(context.Background(), "g1", st.ID, MaxWait)
		done <- waited{st, err}
	}()
	return st, done
}
