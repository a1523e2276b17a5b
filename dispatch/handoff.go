package dispatch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/heraldpush/herald/segments"
)

// A small send recorded on a replica whose workers run is handed to them: it
// is leased to them by the statement that records it (publishing from then
// on) and started the moment the recording commits. It skips the claim (a
// NOTIFY, a statement and a wait for a free worker), and the small sends of
// one recording are published together, a batch of topics per call, and
// finished in one statement (runGroup): ten thousand cron fires due the same
// minute went out 1-3 s late through claims one send per worker, under 1 s
// handed off (the cron benchmark). Big sends (a member list, or more topics
// than a batch) hold a database connection for each batch, so they stay
// pending for whichever replica's worker is free.

// DefaultHandoffs is how many handed-off sends one replica has under way at
// once unless configured otherwise (WorkerConfig.Handoffs): a recording
// leases no more than are free and leaves the rest pending for a claim. The
// scheduler records fires a thousand to a transaction, four transactions at
// a time, and a slot is held until its send's group is finished: with 4,096
// slots some of 10,000 fires due together waited for claims (sent p99 0.88 s,
// against 0.65 s with 16,384; the cron benchmark, same machine). A slot is
// the memory of one small send (its plan and envelope, a few KiB at most)
// while it waits for the broker; it holds no database connection.
const DefaultHandoffs = 16384

// small reports whether a send of plan is one the workers may be handed: no
// member list to read, one batch of topics.
func (w *Worker) small(plan segments.Plan) bool {
	if len(plan.Targets) == 0 || len(plan.Targets) > w.cfg.Batch {
		return false
	}
	for _, t := range plan.Targets {
		if t.Members {
			return false
		}
	}
	return true
}

// reserve takes up to n hand-off slots without waiting and returns how many
// it took: none while the workers are not running.
func (w *Worker) reserve(n int) int {
	w.adoptMu.Lock()
	defer w.adoptMu.Unlock()
	if w.adoptCtx == nil || w.adoptCtx.Err() != nil {
		return 0 // stopped, or stopping: a send started now would be cut off and published again
	}
	got := 0
	for got < n {
		select {
		case w.handoffs <- struct{}{}:
			got++
		default:
			return got
		}
	}
	return got
}

// unreserve gives n hand-off slots back; none without workers.
func (w *Worker) unreserve(n int) {
	if w == nil {
		return
	}
	for range n {
		<-w.handoffs
	}
}

// Handoff is what a recording leased to this replica's workers (RecordAll),
// to Settle once the recording transaction ended.
type Handoff struct {
	w    *Worker
	jobs []*job
}

// start publishes the handed-off sends, once the recording committed. If the
// workers stopped meanwhile, their leases are given back for any replica to
// claim.
func (h *Handoff) start() {
	if h == nil || len(h.jobs) == 0 {
		return
	}
	w, jobs := h.w, h.jobs
	h.jobs = nil
	if !w.adopt(jobs) {
		w.unreserve(len(jobs))
		w.releaseAll(jobs)
	}
}

// adopt runs jobs in groups under the workers' context, and reports false
// when the workers are stopped or stopping.
func (w *Worker) adopt(jobs []*job) bool {
	w.adoptMu.Lock()
	defer w.adoptMu.Unlock()
	ctx := w.adoptCtx
	if ctx == nil || ctx.Err() != nil {
		return false
	}
	for _, group := range w.groups(jobs) {
		w.adopted.Go(func() {
			defer w.unreserve(len(group))
			w.runGroup(ctx, group)
		})
	}
	return true
}

// groups cuts jobs into groups of at most a batch of topics each (at least
// one send): the sends of a group are published in one call.
func (w *Worker) groups(jobs []*job) [][]*job {
	var out [][]*job
	start, topics := 0, 0
	for i, j := range jobs {
		if i > start && topics+len(j.targets) > w.cfg.Batch {
			out = append(out, jobs[start:i])
			start, topics = i, 0
		}
		topics += len(j.targets)
	}
	return append(out, jobs[start:])
}

// runGroup publishes the topics of a group of small sends in one call and
// finishes them in one statement: what one send of one topic would cost
// apiece (goroutines, a call, a statement) is paid once for up to a batch of
// them. Each send's counters are its own messages' (Result.of). A send asked
// meanwhile to be cleared or restored goes on alone (run). If the publish
// fails (the workers stop, a lease was lost), the leases are given back and
// the sends are published again from the start by whichever replica claims
// them.
func (w *Worker) runGroup(parent context.Context, group []*job) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	var msgs []Message
	ends := make([]int, len(group)) // group[i]'s messages end at ends[i]
	payloads := map[int][]byte{}
	for i, j := range group {
		wk := &walker{prefix: w.cfg.Prefix, game: j.template.Game, kind: j.template.Kind, msg: j.template.Msg, targets: j.targets}
		steps, _, err := wk.next(ctx, position{}, len(j.targets), nil) // topics only: no database read
		if err == nil {
			clear(payloads)
			var m []Message
			m, err = w.messages(j, steps, payloads)
			msgs = append(msgs, m...)
		}
		if err != nil {
			w.cfg.Log.ErrorContext(ctx, "build the messages of a handed-off send", "dispatch", j.id, "err", err)
			w.releaseAll(group)
			return
		}
		ends[i] = len(msgs)
	}

	// The leases are renewed until the sends are finished (the finish may
	// wait for a statement of other workers' finishes): from then on a lease
	// given back is no loss.
	var renewing sync.WaitGroup
	var ending atomic.Bool
	renewCtx, stopRenewing := context.WithCancel(ctx)
	renewing.Go(func() { w.heartbeat(renewCtx, group, ending.Load, func() { cancel(errLeaseLost) }) })
	stopRenewal := func() {
		stopRenewing()
		renewing.Wait()
	}
	res, err := w.cfg.Publisher.PublishAll(ctx, msgs)
	if err != nil {
		stopRenewal()
		if parent.Err() == nil {
			w.cfg.Log.WarnContext(ctx, "publish handed-off sends; leaving them to be claimed", "sends", len(group), "err", err)
		}
		w.releaseAll(group)
		return
	}

	fs := make([]finishing, len(group))
	for i, j := range group {
		from := 0
		if i > 0 {
			from = ends[i-1]
		}
		fs[i] = finishing{id: j.id, next: position{Target: len(j.targets)}, res: res.of(from, ends[i])}
	}
	ending.Store(true)
	done, err := w.finisher.finish(ctx, fs...)
	stopRenewal()
	if err != nil {
		if ctx.Err() == nil {
			w.cfg.Log.ErrorContext(ctx, "finish handed-off sends", "sends", len(group), "err", err)
		}
		w.releaseAll(group) // published: a claim publishes them again (at least once)
		return
	}
	var more sync.WaitGroup
	defer more.Wait()
	for i, j := range group {
		fin, ok := done[j.id]
		if !ok {
			w.cfg.Log.WarnContext(ctx, "dispatch lease lost", "dispatch", j.id)
			continue
		}
		j.finished(fs[i].next, fin)
		if j.reason == nil && j.restore == nil {
			w.cfg.Log.DebugContext(ctx, "dispatch published", "dispatch", j.id, "campaign", j.campaign)
			continue
		}
		more.Go(func() { w.runLogged(ctx, j) }) // a clear or a restore: the lease is still its own
	}
	w.cfg.Log.InfoContext(ctx, "handed-off sends published", "sends", len(group), "topics", len(msgs))
}

// drop gives back the slots of a recording that did not commit: its leases
// went with it. (A commit that failed after all reached Postgres leaves its
// sends leased to nobody who works on them: their lease runs out and any
// replica resumes them.)
func (h *Handoff) drop() {
	if h == nil || len(h.jobs) == 0 {
		return
	}
	h.w.unreserve(len(h.jobs))
	h.jobs = nil
}

// Settle starts the handed-off sends when txErr, the outcome of the recording
// transaction, is nil, and drops them otherwise. nil holds nothing.
func (h *Handoff) Settle(txErr error) {
	if txErr != nil {
		h.drop()
		return
	}
	h.start()
}

// releaseAll gives the leases of jobs back, within 5 s.
func (w *Worker) releaseAll(jobs []*job) {
	ids := make([]uuid.UUID, len(jobs))
	for i, j := range jobs {
		ids[i] = j.id
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.store.release(ctx, w.cfg.Replica, ids...); err != nil {
		w.cfg.Log.Warn("release the leases of handed-off sends", "sends", len(ids), "err", err)
	}
}

// accept lets recordings hand sends to the workers, run under ctx, until
// refuse.
func (w *Worker) accept(ctx context.Context) {
	w.adoptMu.Lock()
	defer w.adoptMu.Unlock()
	w.adoptCtx = ctx
}

// refuse stops the hand-offs and waits for the sends handed off before.
func (w *Worker) refuse() {
	w.adoptMu.Lock()
	w.adoptCtx = nil
	w.adoptMu.Unlock()
	w.adopted.Wait()
}
