package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// errLeaseLost stops work on a dispatch that another replica took over.
var errLeaseLost = errors.New("dispatch lease lost")

// restoreRequest is a restore of a dispatch's retained messages, asked for
// because the broker lost them (Guard): from pos up to until (nil: the end of
// the walk), checkpointed separately from the publish.
type restoreRequest struct {
	seq   int64 // dispatches.restores when it was asked for: a newer request changes it
	pos   position
	until *position
}

// restoreColumns are the columns restoreRow.dest scans.
const restoreColumns = `restores, restore_requested_at IS NOT NULL, restore_target, restore_after,
	restore_until_target, restore_until_after`

// restoreRow is how a dispatch row holds a restore request.
type restoreRow struct {
	seq         int64
	requested   bool
	target      int
	after       string
	untilTarget *int
	untilAfter  *string
}

func (r *restoreRow) dest() []any {
	return []any{&r.seq, &r.requested, &r.target, &r.after, &r.untilTarget, &r.untilAfter}
}

// request returns the restore the row asks for, or nil.
func (r *restoreRow) request() *restoreRequest {
	if !r.requested {
		return nil
	}
	req := &restoreRequest{seq: r.seq, pos: position{Target: r.target, After: r.after}}
	if r.untilTarget != nil && r.untilAfter != nil {
		req.until = &position{Target: *r.untilTarget, After: *r.untilAfter}
	}
	return req
}

// reload reads what was asked of dispatch id while replica worked on it: a
// clear (at expiry or recall) and a restore. It returns errLeaseLost if the
// dispatch is no longer replica's.
func (s *Store) reload(ctx context.Context, id uuid.UUID, replica string) (*Reason, *restoreRequest, error) {
	var reason *Reason
	var r restoreRow
	err := s.db.QueryRow(ctx, `SELECT clear_reason, `+restoreColumns+`
		FROM dispatches WHERE id = $1 AND leased_by = $2`, id, replica).
		Scan(append([]any{&reason}, r.dest()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, errLeaseLost
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reload dispatch: %w", err)
	}
	return reason, r.request(), nil
}

// checkpointRestore records a re-published batch of n topics of restore seq:
// the restore goes on at next, and the lease is renewed. It returns the clear
// reason if a clear was asked for meanwhile, and ok false if seq is no longer
// the current request or the lease is gone.
func (s *Store) checkpointRestore(ctx context.Context, id uuid.UUID, l lease, seq int64, next position, n int) (reason *Reason, ok bool, err error) {
	err = s.db.QueryRow(ctx, `
		UPDATE dispatches SET restore_target = $4, restore_after = $5, restored = restored + $6,
			lease_until = now() + $7::interval, updated_at = now()
		WHERE id = $1 AND leased_by = $2 AND restores = $3
		RETURNING clear_reason`,
		id, l.replica, seq, next.Target, next.After, n, l.interval()).Scan(&reason)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("checkpoint restore: %w", err)
	}
	return reason, true, nil
}

// markRestored records that restore seq of dispatch id is done and returns how
// many topics it re-published, or ok false if seq is no longer the current
// request or the lease is gone.
func (s *Store) markRestored(ctx context.Context, id uuid.UUID, replica string, seq int64) (restored int64, ok bool, err error) {
	err = s.db.QueryRow(ctx, `
		UPDATE dispatches SET restore_requested_at = NULL, restored_at = now(), updated_at = now()
		WHERE id = $1 AND leased_by = $2 AND restores = $3
		RETURNING restored`, id, replica, seq).Scan(&restored)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("mark restored: %w", err)
	}
	return restored, true, nil
}

// restore re-publishes the retained envelopes of a dispatch that published (or
// was publishing, up to the batches then in flight) when the broker lost them,
// from the restore checkpoint to the request's end, a batch at a time,
// checkpointing after each acknowledged batch like the publish does (a
// replica that dies mid-restore is resumed by another). A newer request (the
// broker lost them again meanwhile) starts over from its own checkpoint; a
// clear request (recall, expiry) stops it, and the clear that follows covers
// what it re-published.
func (w *Worker) restore(ctx context.Context, j *job, wk *walker, log *slog.Logger) error {
	payloads := map[int][]byte{}
	var until *position // where the current request stops; nil: the end of the walk
	var seq int64 = -1  // the request until belongs to
	for j.reason == nil && j.restore != nil {
		r := j.restore
		if r.seq != seq {
			seq, until = r.seq, nil
			if r.until != nil {
				// The request holds the publish checkpoint at the time the loss was
				// noticed; the batches then in flight may have been acknowledged by
				// the broker before it went away: restore as far as they reached.
				past, err := w.beyondCheckpoint(ctx, wk, *r.until)
				if err != nil {
					return err
				}
				until = &past
			}
			log.InfoContext(ctx, "dispatch restore started", "restores", r.seq)
		}
		steps, next, err := wk.next(ctx, r.pos, w.cfg.Batch, until)
		if err != nil {
			return err
		}
		if len(steps) == 0 {
			restored, ok, err := w.store.markRestored(ctx, j.id, w.cfg.Replica, r.seq)
			if err != nil {
				return err
			}
			if !ok { // a newer request, or the lease is gone
				if err := w.reload(ctx, j); err != nil {
					return err
				}
				continue
			}
			log.InfoContext(ctx, "dispatch restored", "topics", restored)
			j.restore = nil
			return nil
		}
		msgs, err := w.messages(j, steps, payloads)
		if err != nil {
			return err
		}
		if _, err := w.cfg.Publisher.PublishAll(ctx, msgs); err != nil {
			return fmt.Errorf("restore batch: %w", err)
		}
		w.restored.Add(int64(len(msgs)))
		reason, ok, err := w.store.checkpointRestore(ctx, j.id, w.lease(), r.seq, next, len(msgs))
		if err != nil {
			return err
		}
		if !ok {
			if err := w.reload(ctx, j); err != nil {
				return err
			}
			continue
		}
		j.reason = reason
		r.pos = next
	}
	if j.reason != nil {
		log.InfoContext(ctx, "dispatch stops restoring to clear", "reason", *j.reason)
	}
	return nil
}

// reload reads what was asked of j while it ran (Store.reload).
func (w *Worker) reload(ctx context.Context, j *job) error {
	reason, restore, err := w.store.reload(ctx, j.id, w.cfg.Replica)
	if err != nil {
		return err
	}
	j.reason, j.restore = reason, restore
	return nil
}

// Restored returns how many topics restores re-published on this replica.
func (w *Worker) Restored() int64 {
	return w.restored.Load()
}
