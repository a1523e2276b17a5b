package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/heraldpush/herald/internal/startstop"
	"github.com/heraldpush/herald/protocol"
)

// WorkerConfig configures the fan-out workers of one replica.
type WorkerConfig struct {
	Publisher Publisher
	Prefix    string // the topic prefix
	Log       *slog.Logger
	Replica   string        // names this replica in leases; unique per process
	Workers   int           // dispatches worked on at once (default DefaultWorkers)
	Handoffs  int           // small sends handed off by recordings run at once, beside Workers (default DefaultHandoffs)
	Batch     int           // topics published between checkpoints (default 1000)
	Lease     time.Duration // how long a dead replica keeps a dispatch (default 15 s)
	Poll      time.Duration // how often idle workers look for work (default 200 ms)
	// OnCleared, unless nil, runs in the transaction that marks the last
	// uncleared dispatch of a campaign cleared (campaigns.Store.DispatchCleared
	// marks the campaign expired).
	OnCleared Cleared
}

// Worker runs dispatches: it claims them with SKIP LOCKED under a lease, publishes
// each target's envelope, checkpoints after every acknowledged batch, restores
// the retained messages of live dispatches after the broker lost them (see
// Guard), and clears the retained topics at expiry or recall. Any replica can
// resume any dispatch.
type Worker struct {
	cfg      WorkerConfig
	store    *Store
	finisher *finisher
	life     startstop.Service

	restored atomic.Int64 // topics re-published by restores, for metrics

	wakeMu sync.Mutex
	wake   chan struct{} // closed and replaced on each notification (see listen)

	// Hand-offs (handoff.go): a token per slot reserved or running in
	// handoffs; adoptCtx is the workers' context while they accept them.
	handoffs chan struct{}
	adoptMu  sync.Mutex
	adoptCtx context.Context
	adopted  sync.WaitGroup
}

// DefaultWorkers is how many dispatches one replica works on at once unless
// configured otherwise. A small send (one batch) holds no database connection
// of its own (claims and last checkpoints are shared statements) and mostly
// waits for the broker's acknowledgement, so many at once is what lets
// thousands due the same minute go out within seconds: 256 sent 4,000 in
// 1.1-2.3 s where 64 took 3.1-7.9 s (the cron benchmark, same runs). A big
// send holds a connection only for its batch's read and checkpoint.
const DefaultWorkers = 256

// NewWorker returns workers over the store's dispatches; Start runs them.
func (s *Store) NewWorker(cfg WorkerConfig) *Worker {
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Handoffs <= 0 {
		cfg.Handoffs = DefaultHandoffs
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
	w := &Worker{cfg: cfg, store: s, wake: make(chan struct{}), handoffs: make(chan struct{}, cfg.Handoffs)}
	w.finisher = newFinisher(s, w.lease())
	return w
}

// Start starts the workers and returns at once. Only the first call starts
// anything.
func (w *Worker) Start(ctx context.Context) {
	w.life.Start(ctx, w.work)
}

// Stop stops the workers and waits for them, their lease renewals included. A
// dispatch cut off mid-batch gives its lease back, so that another replica
// resumes it from its last checkpoint.
func (w *Worker) Stop() {
	w.life.Stop()
}

func (w *Worker) lease() lease {
	return lease{replica: w.cfg.Replica, length: w.cfg.Lease}
}

// runLogged runs j, logging why it stopped unless ctx ended.
func (w *Worker) runLogged(ctx context.Context, j *job) {
	if err := w.run(ctx, j); err != nil && ctx.Err() == nil {
		w.cfg.Log.ErrorContext(ctx, "run dispatch", "dispatch", j.id, "err", err)
	}
}

// run works on a claimed dispatch until it is published (or cleared), the lease
// is lost, or ctx ends. The lease is renewed meanwhile and given back at the
// end, once renewing has stopped.
func (w *Worker) run(ctx context.Context, j *job) error {
	ctx, cancel := context.WithCancel(ctx)
	var heartbeat sync.WaitGroup
	heartbeat.Go(func() { w.heartbeat(ctx, []*job{j}, j.finishing.Load, cancel) })
	defer func() {
		cancel()
		heartbeat.Wait()
		if !j.released {
			w.release(j.id)
		}
	}()

	wk := &walker{db: w.store.db, prefix: w.cfg.Prefix, game: j.template.Game, kind: j.template.Kind,
		msg: j.template.Msg, targets: j.targets, list: j.list}
	log := w.cfg.Log.With("dispatch", j.id, "campaign", j.campaign)
	if j.reason == nil && j.state == StatePublishing {
		if err := w.publish(ctx, j, wk, log); err != nil {
			return err
		}
	}
	if j.reason == nil && j.restore != nil {
		if err := w.restore(ctx, j, wk, log); err != nil {
			return err
		}
	}
	if j.reason != nil {
		return w.clear(ctx, j, wk, log)
	}
	return nil
}

// publish walks the targets from the checkpoint, a batch at a time (several in
// flight, see pipeline), checkpointing each acknowledged batch; the last
// batch's checkpoint is finish, which marks the dispatch published in one
// statement with other workers' dispatches.
func (w *Worker) publish(ctx context.Context, j *job, wk *walker, log *slog.Logger) error {
	payloads := map[int][]byte{} // per target: envelopes differ only in the filter
	from := j.publish
	err := w.pipeline(ctx, "publish batch", func(ctx context.Context) (walkBatch, error) {
		steps, next, err := wk.next(ctx, from, w.cfg.Batch, nil)
		if err != nil || len(steps) == 0 {
			return walkBatch{}, err
		}
		msgs, err := w.messages(j, steps, payloads)
		from = next
		return walkBatch{msgs: msgs, next: next}, err
	}, func(ctx context.Context, b walkBatch, res Result) (bool, error) {
		if b.next.Target >= len(j.targets) { // the walk's last batch: its checkpoint is the finish
			return true, w.finish(ctx, j, b.next, res, log)
		}
		reason, err := w.store.checkpoint(ctx, j.id, w.lease(), b.next, res)
		if err != nil {
			return false, err
		}
		j.publish = b.next
		if reason != nil {
			j.reason = reason
		}
		return j.reason != nil, nil
	})
	if err != nil || j.finishing.Load() {
		return err
	}
	if j.reason != nil {
		log.InfoContext(ctx, "dispatch stops publishing to clear", "reason", *j.reason)
		return nil
	}
	return w.finish(ctx, j, j.publish, Result{}, log)
}

// messages returns the envelope of each step. payloads keeps one encoded
// envelope per target: envelopes differ only in the filter.
func (w *Worker) messages(j *job, steps []step, payloads map[int][]byte) ([]Message, error) {
	msgs := make([]Message, len(steps))
	for i, st := range steps {
		payload, ok := payloads[st.target]
		if !ok {
			e := j.template.Envelope(j.id, j.sentAt, j.targets[st.target].Filter)
			var err error
			if payload, err = protocol.EncodeEnvelope(e, 1<<30); err != nil { // the size was checked when it was recorded
				return nil, fmt.Errorf("encode envelope: %w", err)
			}
			payloads[st.target] = payload
		}
		msgs[i] = Message{Topic: st.topic, Payload: payload, Retain: j.template.Retain}
	}
	return msgs, nil
}

// clear publishes an empty retained payload to every topic the dispatch published
// to, then marks it expired or recalled. That covers what a restore re-published
// too: a restore only re-publishes topics the dispatch had published. A
// dispatch whose messages were not retained left nothing to remove.
func (w *Worker) clear(ctx context.Context, j *job, wk *walker, log *slog.Logger) error {
	until := j.publish
	if j.state != StatePublished {
		// A replica that died mid-publish may have published past the last
		// checkpoint: clear as far as it may have reached too (clearing a topic
		// that holds nothing is harmless).
		past, err := w.beyondCheckpoint(ctx, wk, j.publish)
		if err != nil {
			return err
		}
		until = past
	}
	if j.template.Retain {
		from := j.clear
		err := w.pipeline(ctx, "clear batch", func(ctx context.Context) (walkBatch, error) {
			steps, next, err := wk.next(ctx, from, w.cfg.Batch, &until)
			if err != nil || len(steps) == 0 {
				return walkBatch{}, err
			}
			msgs := make([]Message, len(steps))
			for i, st := range steps {
				msgs[i] = Message{Topic: st.topic, Retain: true}
			}
			from = next
			return walkBatch{msgs: msgs, next: next}, nil
		}, func(ctx context.Context, b walkBatch, _ Result) (bool, error) {
			if err := w.store.checkpointClear(ctx, j.id, w.lease(), b.next, len(b.msgs)); err != nil {
				return false, err
			}
			j.clear = b.next
			return false, nil
		})
		if err != nil {
			return err
		}
	}
	state := StateExpired
	switch *j.reason {
	case ReasonRecall:
		state = StateRecalled
	case ReasonReplace:
		state = StateReplaced
	}
	if err := w.store.markCleared(ctx, j, w.cfg.Replica, state, w.cfg.OnCleared); err != nil {
		return err
	}
	log.InfoContext(ctx, "dispatch cleared", "state", state)
	return nil
}

// heartbeat renews the leases of jobs every third of a lease while they are
// worked on (a batch may wait a long time for a broker that is down). If
// another replica took one over, it stops the work, unless ending says the
// work is finishing: its last checkpoint gives the leases back itself.
func (w *Worker) heartbeat(ctx context.Context, jobs []*job, ending func() bool, stop func()) {
	ids := make([]uuid.UUID, len(jobs))
	for i, j := range jobs {
		ids[i] = j.id
	}
	t := time.NewTicker(w.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := w.store.renew(ctx, w.lease(), ids...)
		if err != nil || n == len(ids) {
			continue
		}
		if !ending() {
			w.cfg.Log.WarnContext(ctx, "dispatch lease lost", "dispatches", ids, "still_ours", n)
			stop()
		}
		return
	}
}

// release gives the lease back (Store.release), within 5 s of its own: it runs
// after the work's context ended.
func (w *Worker) release(id uuid.UUID) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.store.release(ctx, w.cfg.Replica, id); err != nil {
		w.cfg.Log.Warn("release dispatch lease", "dispatch", id, "err", err)
	}
}
