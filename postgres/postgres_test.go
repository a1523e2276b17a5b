package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/internal/pgtest"
	"github.com/heraldpush/herald/postgres"
)

func TestUnavailableTellsOutagesFromOtherErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{context.Canceled, false}, // the caller left: nobody waits for an answer
		{fmt.Errorf("load: %w", context.DeadlineExceeded), true},
		{&pgconn.PgError{Code: "23505"}, false},                   // unique violation: the caller's problem
		{&pgconn.PgError{Code: "22P02"}, false},                   // invalid input
		{&pgconn.PgError{Code: "08006"}, true},                    // connection failure
		{&pgconn.PgError{Code: "57P01"}, true},                    // admin shutdown
		{&pgconn.PgError{Code: "57P03"}, true},                    // cannot connect now (starting up)
		{&pgconn.PgError{Code: "55P03"}, true},                    // lock_timeout
		{&pgconn.PgError{Code: "57014"}, true},                    // statement timeout
		{fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), false}, // not from pgconn
		{errors.New("something else"), false},
	} {
		require.Equal(t, c.want, postgres.Unavailable(c.err), "%v", c.err)
	}
}

// TestPoolAnswersFastWhileDownAndRecovers runs queries through Open's pool
// against a private server that is stopped, then frozen: each fails within its
// deadline with an error Unavailable recognizes, and the
// pool works again, with no help, once the server is back.
func TestPoolAnswersFastWhileDownAndRecovers(t *testing.T) {
	c := pgtest.Start(t)
	pool, err := postgres.Open(context.Background(), c.URL, postgres.Options{Timeout: time.Second})
	require.NoError(t, err)
	defer pool.Close()
	query := func(timeout time.Duration) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		_, err := pool.Exec(ctx, "SELECT 1")
		return time.Since(start), err
	}
	recovered := func() {
		t.Helper()
		require.Eventually(t, func() bool { _, err := query(time.Second); return err == nil }, 30*time.Second, 50*time.Millisecond)
	}
	_, err = query(5 * time.Second)
	require.NoError(t, err)

	for _, fault := range []struct {
		name        string
		break_, fix func()
	}{
		{"stopped", c.Stop, c.Start},
		{"frozen", c.Freeze, c.Thaw},
	} {
		fault.break_()
		for range 3 {
			took, err := query(time.Second)
			require.Error(t, err, fault.name)
			require.True(t, postgres.Unavailable(err), "%s: %v", fault.name, err)
			require.Less(t, took, 15*time.Second, "%s: bounded, not a hang", fault.name)
			t.Logf("%s: failed after %s: %v", fault.name, took.Round(time.Millisecond), err)
		}
		fault.fix()
		recovered()
	}
}

// TestCanceledQueryReleasesItsLocks: a statement whose context ends while it
// waits for a lock is canceled on the server too (pgx sends a cancel request
// when it cuts the connection), so it holds nothing and queues for nothing.
func TestCanceledQueryReleasesItsLocks(t *testing.T) {
	t.Parallel()
	url := dbtest.New(t)
	pool, err := postgres.Open(context.Background(), url, postgres.Options{})
	require.NoError(t, err)
	defer pool.Close()
	ctx := context.Background()
	_, err = pool.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
	require.NoError(t, err)

	holder, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = holder.Exec(ctx, "SELECT 1 FROM t FOR UPDATE")
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = pool.Exec(short, "UPDATE t SET id = 2")
	cancel()
	require.True(t, postgres.Unavailable(err), "%v", err)

	// The holder still has the lock: only a server-side cancel ends the wait.
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, pool.QueryRow(ctx, `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		rows, _ := pool.Query(ctx, `SELECT pid, coalesce(wait_event_type,''), state, query FROM pg_stat_activity WHERE datname = current_database()`)
		for rows.Next() {
			var pid int
			var a, b, c string
			_ = rows.Scan(&pid, &a, &b, &c)
			t.Logf("%d %q %q %q", pid, a, b, c)
		}
		rows.Close()
		t.Logf("waiting %d err %v", waiting, err)
		return waiting == 0
	}, 10*time.Second, 20*time.Millisecond, "the canceled update still waits on the server")
	require.NoError(t, holder.Rollback(ctx))
}
