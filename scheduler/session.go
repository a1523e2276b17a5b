package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// session is the leader's connection: it holds the leader lock, listens for
// schedule changes, and is pinged so that Postgres ends it when the leader
// goes silent.
type session struct {
	conn *pgx.Conn
	cfg  Config
}

// prepare makes Postgres end the session after LeaderTimeout of silence (a
// leader frozen or cut off from its database then loses the lock on the
// server's side too) and listens on the schedule channel.
func (s *session) prepare(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
	defer cancel()
	timeout := fmt.Sprintf("%dms", s.cfg.LeaderTimeout.Milliseconds())
	if _, err := s.conn.Exec(ctx, `SELECT set_config('idle_session_timeout', $1, false)`, timeout); err != nil {
		return fmt.Errorf("bound the leader session's silence (Postgres 14 or later): %w", err)
	}
	if s.cfg.Channel != "" {
		if _, err := s.conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.cfg.Channel}.Sanitize()); err != nil {
			return fmt.Errorf("listen on %s: %w", s.cfg.Channel, err)
		}
	}
	return nil
}

// ping checks, within StepTimeout, that the session still works.
func (s *session) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
	defer cancel()
	_, err := s.conn.Exec(ctx, `SELECT 1`)
	return err
}

// sleep waits for d or a notification on the schedule channel, whichever
// comes first, and at most a third of LeaderTimeout, so that the next ping
// comes in time. It returns an error only when the session failed.
func (s *session) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	d = min(d, s.cfg.LeaderTimeout/3)
	wait, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if s.cfg.Channel == "" {
		<-wait.Done()
		return ctx.Err()
	}
	// A wait that times out leaves the connection usable (pgconn closes it on
	// any other error): the next ping tells.
	_, err := s.conn.WaitForNotification(wait)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		return nil
	case err != nil:
		return err
	}
	// One round answers every change so far: drop the notifications already
	// received (a burst of thousands of creates must not make as many rounds).
	drained, cancelDrain := context.WithCancel(ctx)
	cancelDrain()
	for {
		if n, _ := s.conn.WaitForNotification(drained); n == nil {
			return nil
		}
	}
}
