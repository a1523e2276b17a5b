package kickouts

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPublishedMarksAreStoredByStop: kick-outs created side by side answer
// published at once, read as published on this replica, and once Stop
// returned every one is marked published in the database (their marks
// written together, after the answers).
func TestPublishedMarksAreStoredByStop(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.svc.Start(f.ctx)
	reason := "maintenance"
	const n = 50
	var wg sync.WaitGroup
	ids := make(chan Status, n)
	for range n {
		wg.Go(func() {
			st, err := f.create(Input{Players: []string{"p1"}, Reason: &reason})
			require.NoError(t, err)
			require.Equal(t, StatePublished, st.State)
			again, err := f.svc.Status(f.ctx, "g1", st.ID)
			require.NoError(t, err)
			require.Equal(t, StatePublished, again.State)
			ids <- st
		})
	}
	wg.Wait()
	close(ids)
	f.svc.Stop()
	for st := range ids {
		var marked bool
		require.NoError(t, f.svc.cfg.DB.QueryRow(f.ctx, `SELECT published_at = $2 FROM kickouts WHERE id = $1`,
			st.ID, *st.PublishedAt).Scan(&marked))
		require.True(t, marked, "kick-out %s is marked published at the time it answered", st.ID)
	}
}
