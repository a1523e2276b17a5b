package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/postgres"
)

// NotifyChannel is the Postgres channel a transaction that gives the workers
// something to do notifies (a send recorded; a recall, an expiry or a restore
// asked for):
// the workers of every replica LISTEN on it and look for work at once, rather
// than at their next poll, which was most of a broadcast's delay.
const NotifyChannel = "herald_dispatch"

// notifyWorkers wakes the workers of every replica once tx commits.
func notifyWorkers(ctx context.Context, db postgres.DBTX) error {
	if _, err := db.Exec(ctx, `SELECT pg_notify($1, '')`, NotifyChannel); err != nil {
		return fmt.Errorf("notify the dispatch workers: %w", err)
	}
	return nil
}

// woken returns a channel that is closed the next time a notification on
// NotifyChannel arrives. A worker takes it before it looks for work, so that a
// notification that arrives meanwhile is not missed.
func (w *Worker) woken() <-chan struct{} {
	w.wakeMu.Lock()
	defer w.wakeMu.Unlock()
	return w.wake
}

// wakeAll wakes every idle worker.
func (w *Worker) wakeAll() {
	w.wakeMu.Lock()
	defer w.wakeMu.Unlock()
	close(w.wake)
	w.wake = make(chan struct{})
}

// listen LISTENs on NotifyChannel and wakes the workers until ctx ends; after
// a failure it tries again a second later (the workers still poll meanwhile).
func (w *Worker) listen(ctx context.Context) {
	for {
		err := w.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if postgres.Unavailable(err) {
			w.cfg.Log.WarnContext(ctx, "listen for dispatches: database unavailable; retrying", "err", err)
		} else {
			w.cfg.Log.ErrorContext(ctx, "listen for dispatches; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// listenOnce opens a connection of its own (it lives as long as the workers)
// with the pool's settings, LISTENs, and wakes the workers on each
// notification until the connection fails or ctx ends.
func (w *Worker) listenOnce(ctx context.Context) error {
	cfg := w.store.db.Config().ConnConfig.Copy()
	connectCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout+5*time.Second)
	conn, err := pgx.ConnectConfig(connectCtx, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = conn.Close(closeCtx)
		cancel()
	}()
	listenCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout+5*time.Second)
	_, err = conn.Exec(listenCtx, `LISTEN `+pgx.Identifier{NotifyChannel}.Sanitize())
	cancel()
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Whatever was recorded while nobody listened is found by a look now.
	w.wakeAll()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("wait for a notification: %w", err)
		}
		w.wakeAll()
	}
}
