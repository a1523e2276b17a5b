package dispatch

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldpush/herald/segments"
)

// Store keeps dispatches in Postgres: what the scheduler asks of them (expiry,
// the member lists they still need) and, unexported, each step of a worker's
// work on one (claim, checkpoint, renew, release, finish the publish,
// checkpoint a clear, mark cleared, and the same for restores).
type Store struct {
	db *pgxpool.Pool
}

// NewStore returns a Store over db.
func NewStore(db *pgxpool.Pool) *Store {
	return &Store{db: db}
}

// ExpireDue marks every dispatch whose expires_at is at or before now for
// clearing; the workers then remove its retained messages. It returns how many
// it marked.
func (s *Store) ExpireDue(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.db.Exec(ctx, `
		UPDATE dispatches SET clear_reason = $2, updated_at = now()
		WHERE expires_at <= $1 AND clear_reason IS NULL AND cleared_at IS NULL`, now, ReasonExpire)
	if err != nil {
		return 0, fmt.Errorf("expire dispatches: %w", err)
	}
	if tag.RowsAffected() > 0 {
		if err := notifyWorkers(ctx, s.db); err != nil {
			return 0, err
		}
	}
	return tag.RowsAffected(), nil
}

// NextExpiry returns the earliest expires_at of a dispatch still to be
// cleared, zero when there is none: the scheduler leader sleeps until then.
func (s *Store) NextExpiry(ctx context.Context) (time.Time, error) {
	var next *time.Time
	if err := s.db.QueryRow(ctx, `
		SELECT min(expires_at) FROM dispatches WHERE clear_reason IS NULL AND cleared_at IS NULL`).Scan(&next); err != nil {
		return time.Time{}, fmt.Errorf("find the next expiry: %w", err)
	}
	if next == nil {
		return time.Time{}, nil
	}
	return *next, nil
}

// ListsInUse returns those of lists that a dispatch not cleared yet still
// needs, to stream it or to clear its players' topics (segments.InUse).
func (s *Store) ListsInUse(ctx context.Context, lists []int64) ([]int64, error) {
	rows, _ := s.db.Query(ctx, `
		SELECT DISTINCT member_list_id FROM dispatches
		WHERE member_list_id = ANY($1) AND cleared_at IS NULL`, lists)
	inUse, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("find member lists in use: %w", err)
	}
	return inUse, nil
}

// lease names the replica that works on a dispatch and how long its claim
// lasts without renewal.
type lease struct {
	replica string
	length  time.Duration
}

// interval is the lease's length for SQL.
func (l lease) interval() string { return l.length.String() }

// job is a claimed dispatch: the frozen send and where its work stands.
type job struct {
	id       uuid.UUID
	campaign uuid.UUID
	template Template
	sentAt   time.Time
	targets  []segments.Target
	list     *int64
	publish  position // next to publish
	clear    position // next to clear
	reason   *Reason  // why it is being cleared; nil while publishing
	state    State
	restore  *restoreRequest // the restore due; nil if none
	// finishing is set once the publish's last checkpoint, which may give the
	// lease back, is under way; released once it did.
	finishing atomic.Bool
	released  bool
}

// claim takes up to n of the oldest dispatches that need work (to publish,
// clear or restore) and no live replica holds, under l, in one statement: a
// replica with n workers free takes as many at once rather than paying a round
// trip each, which is what lets thousands of small sends due the same minute
// start within a second. Pending ones become publishing and get their sent_at.
// It returns none when there is no such dispatch. (= ANY(ARRAY(...)) rather
// than IN: with IN, Postgres may join the claimed ids to a scan of the whole
// table.)
func (s *Store) claim(ctx context.Context, l lease, n int) ([]*job, error) {
	rows, _ := s.db.Query(ctx, `
		UPDATE dispatches SET leased_by = $1, lease_until = now() + $2::interval,
			state = CASE WHEN state = 'pending' AND clear_reason IS NULL THEN 'publishing' ELSE state END,
			sent_at = CASE WHEN sent_at IS NULL AND clear_reason IS NULL THEN now() ELSE sent_at END,
			updated_at = now()
		WHERE id = ANY(ARRAY(
			SELECT id FROM dispatches d
			WHERE (state IN ('pending', 'publishing') OR (clear_reason IS NOT NULL AND cleared_at IS NULL)
					OR (restore_requested_at IS NOT NULL AND cleared_at IS NULL))
				AND (lease_until IS NULL OR lease_until < now())
				-- A send starts only once the earlier sends of its campaign (in its
				-- zone) are cleared: it takes their retained topics (see Replace).
				AND NOT (state = 'pending' AND clear_reason IS NULL AND EXISTS (
					SELECT 1 FROM dispatches p
					WHERE p.campaign_id = d.campaign_id AND p.zone = d.zone AND p.fire_at < d.fire_at AND p.cleared_at IS NULL))
			ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED))
		RETURNING id, campaign_id, state, coalesce(sent_at, now()), targets, member_list_id,
			next_target, after_player, clear_target, clear_after, clear_reason,
			kind, game_id, msg, content, priority, starts_at, expires_at, retain, `+restoreColumns,
		l.replica, l.interval(), n)
	var jobs []*job
	for rows.Next() {
		var j job
		var restore restoreRow
		t := &j.template
		if err := rows.Scan(append([]any{&j.id, &j.campaign, &j.state, &j.sentAt, &j.targets, &j.list,
			&j.publish.Target, &j.publish.After, &j.clear.Target, &j.clear.After, &j.reason,
			&t.Kind, &t.Game, &t.Msg, &t.Content, &t.Priority, &t.StartsAt, &t.ExpiresAt, &t.Retain},
			restore.dest()...)...); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim: %w", err)
		}
		j.restore = restore.request()
		jobs = append(jobs, &j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	return jobs, nil
}

// renew extends the leases of dispatches ids and returns how many are still
// l's: one missing was taken over by another replica (or given back).
func (s *Store) renew(ctx context.Context, l lease, ids ...uuid.UUID) (int, error) {
	tag, err := s.db.Exec(ctx, `
		UPDATE dispatches SET lease_until = now() + $3::interval WHERE id = ANY($1) AND leased_by = $2`,
		ids, l.replica, l.interval())
	if err != nil {
		return 0, fmt.Errorf("renew the leases of %d dispatches: %w", len(ids), err)
	}
	return int(tag.RowsAffected()), nil
}

// release gives the leases of dispatches ids back, so that each, if
// unfinished, is resumed at once by whichever worker claims it next.
func (s *Store) release(ctx context.Context, replica string, ids ...uuid.UUID) error {
	if _, err := s.db.Exec(ctx, `
		UPDATE dispatches SET leased_by = NULL, lease_until = NULL WHERE id = ANY($1) AND leased_by = $2`,
		ids, replica); err != nil {
		return fmt.Errorf("release the lease of %d dispatches: %w", len(ids), err)
	}
	return nil
}

// checkpoint records a published batch: the walk goes on at next, res is added
// to the counters (the first and last acks are the earliest and latest seen:
// with two batches in flight, a later batch's acks may come before an
// earlier one's), and the lease is renewed. It returns the clear reason if a
// clear was asked for meanwhile.
func (s *Store) checkpoint(ctx context.Context, id uuid.UUID, l lease, next position, res Result) (*Reason, error) {
	var first, last *time.Time
	if !res.FirstAck.IsZero() {
		first, last = &res.FirstAck, &res.LastAck
	}
	var reason *Reason
	err := s.db.QueryRow(ctx, `
		UPDATE dispatches SET next_target = $3, after_player = $4, acked = acked + $5, retried = retried + $6,
			failed = failed + $7, first_ack_at = least(first_ack_at, $8), last_ack_at = greatest(last_ack_at, $9),
			lease_until = now() + $10::interval, updated_at = now()
		WHERE id = $1 AND leased_by = $2
		RETURNING clear_reason`,
		id, l.replica, next.Target, next.After, res.Acked, res.Retried, res.Failed, first, last,
		l.interval()).Scan(&reason)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return reason, nil
}

// finishing is the last checkpoint of a dispatch's publish: its walk ended at
// next, and res is what the broker made of its last batch.
type finishing struct {
	id   uuid.UUID
	next position
	res  Result
}

// finished is what finish found of one dispatch: the clear (recall, expiry) or
// restore asked for meanwhile, if any, for which the worker keeps its lease;
// released when there was neither and the lease was given back.
type finished struct {
	reason   *Reason
	restore  *restoreRequest
	released bool
}

// finish records the last batch of each of fs as checkpoint does and marks it
// published, all in one statement: a replica finishing many small sends pays
// one round trip for them all rather than three each (checkpoint, mark
// published, release). A dispatch asked to be cleared meanwhile stays
// publishing (the clear then reaches one batch further, as after a crash); one
// with nothing else to do gives its lease back. A dispatch no longer l's is
// missing from the result.
func (s *Store) finish(ctx context.Context, l lease, fs []finishing) (map[uuid.UUID]finished, error) {
	n := len(fs)
	ids, targets, afters := make([]uuid.UUID, n), make([]int32, n), make([]string, n)
	acked, retried, failed := make([]int64, n), make([]int64, n), make([]int64, n)
	firsts, lasts := make([]*time.Time, n), make([]*time.Time, n)
	for i, f := range fs {
		ids[i], targets[i], afters[i] = f.id, int32(f.next.Target), f.next.After
		acked[i], retried[i], failed[i] = int64(f.res.Acked), int64(f.res.Retried), int64(f.res.Failed)
		if !f.res.FirstAck.IsZero() {
			firsts[i], lasts[i] = &fs[i].res.FirstAck, &fs[i].res.LastAck
		}
	}
	rows, _ := s.db.Query(ctx, `
		UPDATE dispatches d SET next_target = v.target, after_player = v.after, acked = d.acked + v.acked,
			retried = d.retried + v.retried, failed = d.failed + v.failed,
			first_ack_at = least(d.first_ack_at, v.first), last_ack_at = greatest(d.last_ack_at, v.last),
			state = CASE WHEN d.clear_reason IS NULL AND d.state = 'publishing' THEN 'published' ELSE d.state END,
			leased_by = CASE WHEN d.clear_reason IS NULL AND d.restore_requested_at IS NULL THEN NULL ELSE d.leased_by END,
			lease_until = CASE WHEN d.clear_reason IS NULL AND d.restore_requested_at IS NULL THEN NULL
				ELSE now() + $2::interval END,
			updated_at = now()
		FROM unnest($3::uuid[], $4::int4[], $5::text[], $6::int8[], $7::int8[], $8::int8[], $9::timestamptz[],
			$10::timestamptz[]) AS v(id, target, after, acked, retried, failed, first, last)
		WHERE d.id = v.id AND d.leased_by = $1
		RETURNING d.id, d.clear_reason, d.leased_by IS NULL, `+restoreColumns,
		l.replica, l.interval(), ids, targets, afters, acked, retried, failed, firsts, lasts)
	out := make(map[uuid.UUID]finished, n)
	var id uuid.UUID
	var f finished
	var r restoreRow
	_, err := pgx.ForEachRow(rows, append([]any{&id, &f.reason, &f.released}, r.dest()...), func() error {
		g := finished{restore: r.request(), released: f.released}
		if f.reason != nil {
			reason := *f.reason // the scan may reuse what f.reason points to
			g.reason = &reason
		}
		out[id] = g
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("finish %d dispatches: %w", n, err)
	}
	return out, nil
}

// checkpointClear records a cleared batch of n topics: the clearing goes on at
// next, and the lease is renewed.
func (s *Store) checkpointClear(ctx context.Context, id uuid.UUID, l lease, next position, n int) error {
	if _, err := s.db.Exec(ctx, `
		UPDATE dispatches SET clear_target = $3, clear_after = $4, cleared = cleared + $5,
			lease_until = now() + $6::interval, updated_at = now()
		WHERE id = $1 AND leased_by = $2`,
		id, l.replica, next.Target, next.After, n, l.interval()); err != nil {
		return fmt.Errorf("checkpoint clearing: %w", err)
	}
	return nil
}

// Cleared is told, in the transaction that marks a dispatch cleared, that the
// last dispatch of campaign not cleared yet was (campaigns.Store.DispatchCleared).
type Cleared func(ctx context.Context, tx pgx.Tx, campaign uuid.UUID) error

// markCleared records that every topic of j was cleared: it ends as state. If
// no dispatch of its campaign is left to clear, onCleared (unless nil) runs in
// the same transaction.
func (s *Store) markCleared(ctx context.Context, j *job, replica string, state State, onCleared Cleared) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			UPDATE dispatches SET state = $3, cleared_at = now(), restore_requested_at = NULL, updated_at = now()
			WHERE id = $1 AND leased_by = $2`, j.id, replica, state); err != nil {
			return fmt.Errorf("mark %s: %w", state, err)
		}
		if onCleared == nil {
			return nil
		}
		var last bool
		if err := tx.QueryRow(ctx, `
			SELECT NOT EXISTS (SELECT 1 FROM dispatches WHERE campaign_id = $1 AND cleared_at IS NULL)`,
			j.campaign).Scan(&last); err != nil {
			return fmt.Errorf("find uncleared dispatches of %s: %w", j.campaign, err)
		}
		if !last {
			return nil
		}
		return onCleared(ctx, tx, j.campaign)
	})
}
