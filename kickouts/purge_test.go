package kickouts

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/clocktest"
)

// TestPurgeDeletesKickoutsPastTheRetention: the janitor keeps a kick-out as
// long as its receipts, no longer.
func TestPurgeDeletesKickoutsPastTheRetention(t *testing.T) {
	t.Parallel()
	clock := clocktest.New(time.Now())
	f := newFixture(t, func(c *Config) { c.Now = clock.Now })
	reason := "ban"
	st, err := f.create(Input{Players: []string{"p1"}, Reason: &reason})
	require.NoError(t, err)

	clock.Add(time.Hour - time.Second)
	n, err := f.svc.Purge(f.ctx, time.Hour, 100)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = f.svc.Status(f.ctx, "g1", st.ID)
	require.NoError(t, err)

	clock.Add(2 * time.Second)
	n, err = f.svc.Purge(f.ctx, time.Hour, 100)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	_, err = f.svc.Status(f.ctx, "g1", st.ID)
	require.ErrorIs(t, err, ErrNotFound)
}
