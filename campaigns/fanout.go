package campaigns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/mqttout"
	"github.com/heraldpush/herald/postgres"
	"github.com/heraldpush/herald/segments"
)

// Publisher is what the fan-out needs of the broker: QoS 1 publishes that return
// once the broker acknowledged every one (mqttout.Conn).
type Publisher interface {
	PublishAll(ctx context.Context, msgs []mqttout.Message) (mqttout.Result, error)
}

// WorkerConfig configures the fan-out workers of one replica.
type WorkerConfig struct {
	Publisher Publisher
	Prefix    string // the topic prefix
	Log       *slog.Logger
	Replica   string        // names this replica in leases; unique per process
	Workers   int           // dispatches worked on at once (default 2)
	Batch     int           // topics published between checkpoints (default 1000)
	Lease     time.Duration // how long a dead replica keeps a dispatch (default 15 s)
	Poll      time.Duration // how often idle workers look for work (default 200 ms)
}

// Worker runs dispatches: it claims them with SKIP LOCKED under a lease, publishes
// each target's envelope, checkpoints after every acknowledged batch, restores
// the retained messages of live dispatches after the broker lost them (see
// Guard), and clears the retained topics at expiry or recall. Any replica can
// resume any dispatch.
type Worker struct {
	cfg    WorkerConfig
	store  *Store
	cancel context.CancelFunc
	wg     sync.WaitGroup

	restored atomic.Int64 // topics re-published by restores, for metrics
}

// NewWorker returns workers over the store's dispatches.
func (s *Store) NewWorker(cfg WorkerConfig) *Worker {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 15 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	if cfg.Replica == "" {
		cfg.Replica = uuid.NewString()
	}
	return &Worker{cfg: cfg, store: s}
}

// Start starts the workers and returns at once.
func (w *Worker) Start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	for range w.cfg.Workers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.loop(ctx)
		}()
	}
}

// Stop stops the workers and waits for them. A dispatch cut off mid-batch gives
// its lease back, so that another replica resumes it from its last checkpoint.
func (w *Worker) Stop() {
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
}

func (w *Worker) loop(ctx context.Context) {
	for ctx.Err() == nil {
		wait := w.cfg.Poll
		claimCtx, cancel := context.WithTimeout(ctx, w.cfg.Lease) // a claim slower than a lease is stale anyway
		job, err := w.claim(claimCtx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && postgres.Unavailable(err):
			// Postgres is down or frozen: say so at a gentler pace; the work
			// resumes from its checkpoints once it is back.
			w.cfg.Log.WarnContext(ctx, "claim dispatch: database unavailable", "err", err)
			wait = max(wait, time.Second)
		case err != nil && ctx.Err() == nil:
			w.cfg.Log.ErrorContext(ctx, "claim dispatch", "err", err)
		case job != nil:
			if err := w.run(ctx, job); err != nil && ctx.Err() == nil {
				w.cfg.Log.ErrorContext(ctx, "run dispatch", "dispatch", job.id, "err", err)
			}
			continue // look for more work at once
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// job is a claimed dispatch with what its walk needs.
type job struct {
	id       uuid.UUID
	campaign Campaign
	sentAt   time.Time
	walker   walker
	publish  position // next to publish
	clear    position // next to clear
	reason   *string  // why it is being cleared; nil while publishing
	state    DispatchState
	restore  *restoreRequest // the restore due; nil if none
}

// claim takes the oldest dispatch that needs work and no live replica holds.
func (w *Worker) claim(ctx context.Context) (*job, error) {
	var j job
	var targets []segments.Target
	var list *int64
	var campaignID uuid.UUID
	var expires time.Time
	var restore restoreRow
	err := w.store.db.QueryRow(ctx, `
		UPDATE dispatches SET leased_by = $1, lease_until = now() + $2::interval,
			state = CASE WHEN state = 'pending' AND clear_reason IS NULL THEN 'publishing' ELSE state END,
			sent_at = CASE WHEN sent_at IS NULL AND clear_reason IS NULL THEN now() ELSE sent_at END,
			updated_at = now()
		WHERE id = (
			SELECT id FROM dispatches d
			WHERE (state IN ('pending', 'publishing') OR (clear_reason IS NOT NULL AND cleared_at IS NULL)
					OR (restore_requested_at IS NOT NULL AND cleared_at IS NULL))
				AND (lease_until IS NULL OR lease_until < now())
				-- A send starts only once the earlier sends of its campaign (in its
				-- zone) are cleared: it takes their retained topics.
				AND NOT (state = 'pending' AND clear_reason IS NULL AND EXISTS (
					SELECT 1 FROM dispatches p
					WHERE p.campaign_id = d.campaign_id AND p.zone = d.zone AND p.fire_at < d.fire_at AND p.cleared_at IS NULL))
			ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING id, campaign_id, state, coalesce(sent_at, now()), expires_at, targets, member_list_id,
			next_target, after_player, clear_target, clear_after, clear_reason, `+restoreColumns,
		w.cfg.Replica, w.cfg.Lease.String()).Scan(append([]any{&j.id, &campaignID, &j.state, &j.sentAt, &expires, &targets, &list,
		&j.publish.Target, &j.publish.After, &j.clear.Target, &j.clear.After, &j.reason}, restore.dest()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	j.restore = restore.request()
	rows, _ := w.store.db.Query(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE id = $1`, campaignID)
	if j.campaign, err = pgx.CollectExactlyOneRow(rows, scanCampaign); err != nil {
		return nil, fmt.Errorf("load campaign %s of dispatch %s: %w", campaignID, j.id, err)
	}
	j.campaign.ExpiresAt = expires // each send of a recurring campaign has its own
	j.walker = walker{db: w.store.db, prefix: w.cfg.Prefix, game: j.campaign.GameID, kind: j.campaign.Kind,
		msg: campaignID.String(), targets: targets, list: list}
	return &j, nil
}

// run works on a claimed dispatch until it is published (or cleared), the lease
// is lost, or ctx ends.
func (w *Worker) run(ctx context.Context, j *job) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.heartbeat(ctx, j.id, cancel)
	defer w.release(j.id)

	log := w.cfg.Log.With("dispatch", j.id, "campaign", j.campaign.ID)
	if j.reason == nil && j.state == DispatchPublishing {
		if err := w.publish(ctx, j, log); err != nil {
			return err
		}
		if j.reason == nil { // a restore may have been asked for meanwhile
			if err := w.reload(ctx, j); err != nil {
				return err
			}
		}
	}
	if j.reason == nil && j.restore != nil {
		if err := w.restore(ctx, j, log); err != nil {
			return err
		}
	}
	if j.reason != nil {
		return w.clear(ctx, j, log)
	}
	return nil
}

// publish walks the targets from the checkpoint, a batch at a time.
func (w *Worker) publish(ctx context.Context, j *job, log *slog.Logger) error {
	payloads := map[int][]byte{} // per target: envelopes differ only in the filter
	for {
		steps, next, err := j.walker.next(ctx, j.publish, w.cfg.Batch, nil)
		if err != nil {
			return err
		}
		if len(steps) == 0 {
			_, err := w.store.db.Exec(ctx, `
				UPDATE dispatches SET state = 'published', updated_at = now()
				WHERE id = $1 AND leased_by = $2 AND state = 'publishing'`, j.id, w.cfg.Replica)
			if err != nil {
				return fmt.Errorf("mark published: %w", err)
			}
			j.state = DispatchPublished
			log.InfoContext(ctx, "dispatch published")
			return nil
		}
		msgs, err := j.messages(steps, payloads)
		if err != nil {
			return err
		}
		res, err := w.cfg.Publisher.PublishAll(ctx, msgs)
		if err != nil {
			return fmt.Errorf("publish batch: %w", err)
		}
		var first, last *time.Time
		if !res.FirstAck.IsZero() {
			first, last = &res.FirstAck, &res.LastAck
		}
		err = w.store.db.QueryRow(ctx, `
			UPDATE dispatches SET next_target = $3, after_player = $4, acked = acked + $5, retried = retried + $6,
				failed = failed + $7, first_ack_at = coalesce(first_ack_at, $8), last_ack_at = coalesce($9, last_ack_at),
				lease_until = now() + $10::interval, updated_at = now()
			WHERE id = $1 AND leased_by = $2
			RETURNING clear_reason`,
			j.id, w.cfg.Replica, next.Target, next.After, res.Acked, res.Retried, res.Failed, first, last,
			w.cfg.Lease.String()).Scan(&j.reason)
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		j.publish = next
		if j.reason != nil {
			log.InfoContext(ctx, "dispatch stops publishing to clear", "reason", *j.reason)
			return nil
		}
	}
}

// messages returns the retained envelope of each step. payloads keeps one
// encoded envelope per target: envelopes differ only in the filter.
func (j *job) messages(steps []step, payloads map[int][]byte) ([]mqttout.Message, error) {
	msgs := make([]mqttout.Message, len(steps))
	for i, st := range steps {
		payload, ok := payloads[st.target]
		if !ok {
			e := envelopeOf(j.campaign, j.id, j.sentAt, j.walker.targets[st.target].Filter)
			var err error
			if payload, err = Encode(e, 1<<30); err != nil { // the size was checked at creation
				return nil, fmt.Errorf("encode envelope: %w", err)
			}
			payloads[st.target] = payload
		}
		msgs[i] = mqttout.Message{Topic: st.topic, Payload: payload, Retain: true}
	}
	return msgs, nil
}

// clear publishes an empty retained payload to every topic the dispatch published
// to, then marks it expired or recalled. That covers what a restore re-published
// too: a restore only re-publishes topics the dispatch had published.
func (w *Worker) clear(ctx context.Context, j *job, log *slog.Logger) error {
	until := j.publish
	if j.state != DispatchPublished {
		// A replica that died mid-batch may have published a batch past the last
		// checkpoint: clear one batch further too (clearing a topic that holds
		// nothing is harmless).
		_, past, err := j.walker.next(ctx, j.publish, w.cfg.Batch, nil)
		if err != nil {
			return err
		}
		until = past
	}
	for {
		steps, next, err := j.walker.next(ctx, j.clear, w.cfg.Batch, &until)
		if err != nil {
			return err
		}
		if len(steps) == 0 {
			break
		}
		msgs := make([]mqttout.Message, len(steps))
		for i, st := range steps {
			msgs[i] = mqttout.Message{Topic: st.topic, Retain: true}
		}
		if _, err := w.cfg.Publisher.PublishAll(ctx, msgs); err != nil {
			return fmt.Errorf("clear batch: %w", err)
		}
		if _, err := w.store.db.Exec(ctx, `
			UPDATE dispatches SET clear_target = $3, clear_after = $4, cleared = cleared + $5,
				lease_until = now() + $6::interval, updated_at = now()
			WHERE id = $1 AND leased_by = $2`,
			j.id, w.cfg.Replica, next.Target, next.After, len(steps), w.cfg.Lease.String()); err != nil {
			return fmt.Errorf("checkpoint clearing: %w", err)
		}
		j.clear = next
	}
	state := DispatchExpired
	switch *j.reason {
	case "recall":
		state = DispatchRecalled
	case "replace":
		state = DispatchReplaced
	}
	return pgx.BeginFunc(ctx, w.store.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			UPDATE dispatches SET state = $3, cleared_at = now(), restore_requested_at = NULL, updated_at = now()
			WHERE id = $1 AND leased_by = $2`, j.id, w.cfg.Replica, state); err != nil {
			return fmt.Errorf("mark %s: %w", state, err)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE campaigns SET status = 'expired', updated_at = now()
			WHERE id = $1 AND status = 'live' AND NOT EXISTS (
				SELECT 1 FROM dispatches WHERE campaign_id = $1 AND cleared_at IS NULL)`, j.campaign.ID); err != nil {
			return fmt.Errorf("mark campaign expired: %w", err)
		}
		log.InfoContext(ctx, "dispatch cleared", "state", state)
		return nil
	})
}

// heartbeat renews the lease while the dispatch is worked on (a batch may wait a
// long time for a broker that is down); if another replica took the dispatch over,
// it stops the work.
func (w *Worker) heartbeat(ctx context.Context, id uuid.UUID, stop context.CancelFunc) {
	t := time.NewTicker(w.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tag, err := w.store.db.Exec(ctx, `
			UPDATE dispatches SET lease_until = now() + $3::interval WHERE id = $1 AND leased_by = $2`,
			id, w.cfg.Replica, w.cfg.Lease.String())
		if err == nil && tag.RowsAffected() == 0 {
			w.cfg.Log.WarnContext(ctx, "dispatch lease lost", "dispatch", id)
			stop()
			return
		}
	}
}

// release gives the lease back so that the dispatch, if unfinished, is resumed at
// once by whichever worker claims it next.
func (w *Worker) release(id uuid.UUID) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := w.store.db.Exec(ctx, `
		UPDATE dispatches SET leased_by = NULL, lease_until = NULL WHERE id = $1 AND leased_by = $2`,
		id, w.cfg.Replica); err != nil {
		w.cfg.Log.Warn("release dispatch lease", "dispatch", id, "err", err)
	}
}
