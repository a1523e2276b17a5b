package pgtest_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/pgtest"
)

func ping(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}

// TestClusterStopsFreezesAndComesBack drives a private cluster through the
// faults the availability tests need, and checks that it leaves no process.
func TestClusterStopsFreezesAndComesBack(t *testing.T) {
	c := pgtest.Start(t)
	require.NoError(t, ping(c.URL, 10*time.Second))

	// An open session stops answering too, not only new connections.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL)
	require.NoError(t, err)
	c.Freeze()
	require.Error(t, ping(c.URL, 300*time.Millisecond), "a frozen server answers nothing")
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = conn.Exec(short, "SELECT 1")
	cancel()
	require.Error(t, err)
	c.Thaw()
	require.NoError(t, ping(c.URL, 10*time.Second), "a thawed server answers again")

	pid := c.Pid()
	c.Stop()
	require.Error(t, ping(c.URL, 2*time.Second))
	require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "the postmaster is gone")
	c.Start()
	require.NoError(t, ping(c.URL, 10*time.Second), "it starts again on the same port, with its data")
}
