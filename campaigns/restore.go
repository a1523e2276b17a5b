package campaigns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

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

// reload reads what was asked of the dispatch while the job ran: a clear (at
// expiry or recall) and a restore. It returns errLeaseLost if the job is no
// longer this replica's.
func (w *Worker) reload(ctx context.Context, j *job) error {
	var r restoreRow
	err := w.store.db.QueryRow(ctx, `SELECT clear_reason, `+restoreColumns+`
		FROM dispatches WHERE id = $1 AND leased_by = $2`, j.id, w.cfg.Replica).
		Scan(append([]any{&j.reason}, r.dest()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return errLeaseLost
	}
	if err != nil {
		return fmt.Errorf("reload dispatch: %w", err)
	}
	j.restore = r.request()
	return nil
}

// restore re-publishes the retained envelopes of a published dispatch that the
// broker lost, from the restore checkpoint to the request's end, a batch at a
// time, checkpointing after each acknowledged batch like the publish does (a
// replica that dies mid-restore is resumed by another). A newer request (the
// broker lost them again meanwhile) starts over from its own checkpoint; a
// clear request (recall, expiry) stops it, and the clear that follows covers
// what it re-published.
func (w *Worker) restore(ctx context.Context, j *job, log *slog.Logger) error {
	payloads := map[int][]byte{}
	var until *position // where the current request stops; nil: the end of the walk
	var seq int64 = -1  // the request until belongs to
	for j.reason == nil && j.restore != nil {
		r := j.restore
		if r.seq != seq {
			seq, until = r.seq, nil
			if r.until != nil {
				// The request holds the publish checkpoint at the time the loss was
				// noticed; the batch then in flight may have been acknowledged by
				// the broker before it went away: restore one batch further.
				_, past, err := j.walker.next(ctx, *r.until, w.cfg.Batch, nil)
				if err != nil {
					return err
				}
				until = &past
			}
			log.InfoContext(ctx, "dispatch restore started", "restores", r.seq)
		}
		steps, next, err := j.walker.next(ctx, r.pos, w.cfg.Batch, until)
		if err != nil {
			return err
		}
		if len(steps) == 0 {
			var restored int64
			err := w.store.db.QueryRow(ctx, `
				UPDATE dispatches SET restore_requested_at = NULL, restored_at = now(), updated_at = now()
				WHERE id = $1 AND leased_by = $2 AND restores = $3
				RETURNING restored`, j.id, w.cfg.Replica, r.seq).Scan(&restored)
			if errors.Is(err, pgx.ErrNoRows) { // a newer request, or the lease is gone
				if err := w.reload(ctx, j); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("mark restored: %w", err)
			}
			log.InfoContext(ctx, "dispatch restored", "topics", restored)
			j.restore = nil
			return nil
		}
		msgs, err := j.messages(steps, payloads)
		if err != nil {
			return err
		}
		if _, err := w.cfg.Publisher.PublishAll(ctx, msgs); err != nil {
			return fmt.Errorf("restore batch: %w", err)
		}
		w.restored.Add(int64(len(msgs)))
		err = w.store.db.QueryRow(ctx, `
			UPDATE dispatches SET restore_target = $4, restore_after = $5, restored = restored + $6,
				lease_until = now() + $7::interval, updated_at = now()
			WHERE id = $1 AND leased_by = $2 AND restores = $3
			RETURNING clear_reason`,
			j.id, w.cfg.Replica, r.seq, next.Target, next.After, len(msgs), w.cfg.Lease.String()).Scan(&j.reason)
		if errors.Is(err, pgx.ErrNoRows) {
			if err := w.reload(ctx, j); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("checkpoint restore: %w", err)
		}
		r.pos = next
	}
	if j.reason != nil {
		log.InfoContext(ctx, "dispatch stops restoring to clear", "reason", *j.reason)
	}
	return nil
}

// Restored returns how many topics restores re-published on this replica.
func (w *Worker) Restored() int64 {
	return w.restored.Load()
}
