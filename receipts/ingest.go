package receipts

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/heraldpush/herald/postgres"
	"github.com/heraldpush/herald/protocol"
)

// Defaults of Config.
const (
	DefaultBuffer      = 10_000
	DefaultBatch       = 5_000
	DefaultFlushEvery  = 100 * time.Millisecond
	DefaultStopTimeout = 15 * time.Second
	writeTimeout       = 30 * time.Second
	// writeAttempts is how often a batch that fails for another reason than
	// an unavailable database is tried before it is given up.
	writeAttempts = 3
	// writers write batches side by side, each on a connection of its own, so
	// that Postgres inserts one batch while the next is being copied in: with
	// one, ingestion lagged a bare COPY + INSERT of the same rows by about a
	// quarter on two busy cores (the receipts benchmark, before bench/). They
	// share the buffer; a client's receipts reach them in order, so two
	// writers never wait on each other's rows in opposite orders (a deadlock
	// would only be retried).
	writers    = 2
	maxBackoff = 5 * time.Second
)

// Source is the broker side of ingestion (mqttout.Subscriber).
type Source interface {
	// Start hands each message of the receipts subscription to handle, one at
	// a time: a handle that blocks pushes back on the broker.
	Start(handle func(topic string, payload []byte))
	// Stop ends the subscription once everything the broker routed to this
	// replica was handed to handle; handle is not called after it returns,
	// unless ctx ended first.
	Stop(ctx context.Context) error
}

// Config configures an Ingester.
type Config struct {
	// Prefix is Herald's topic prefix: receipts come on {Prefix}/{game}/receipts/{player}.
	Prefix string
	// Source delivers the receipts; nil leaves Handle as the only way in.
	Source Source
	// Buffer is how many receipts wait between the broker and Postgres
	// (DefaultBuffer): when it is full, Handle blocks, and so the broker
	// connection, until a write makes room. With the two batches being
	// written, it bounds the memory ingestion uses and what a crash loses.
	Buffer int
	// Batch is the most receipts one write takes (DefaultBatch, at most Buffer).
	Batch int
	// FlushEvery is the longest a writer waits for more receipts while the
	// other writer is busy writing (DefaultFlushEvery); a writer whose fellow
	// is idle, or has just finished, writes what is waiting at once.
	FlushEvery time.Duration
	// StopTimeout bounds Stop: draining the broker and writing what is left
	// (DefaultStopTimeout).
	StopTimeout time.Duration
	Log         *slog.Logger
	Now         func() time.Time // Herald's clock (time.Now)
	// OnFlush, if set, is told how long each successful write took and how
	// many receipts it took.
	OnFlush func(took time.Duration, receipts int)
	// OnDelivered, if set, is told of each delivered receipt as soon as it is
	// read, before it is written: a kick-out waiting on this replica answers
	// without waiting for the write (other replicas learn of it through
	// NotifyChannel once it is stored). The game and player come from the
	// topic; send is the receipt's id, not yet checked against the sends. It
	// must not block: it runs on the broker connection's goroutine.
	OnDelivered func(game, player string, send uuid.UUID, at time.Time)
}

// Counters are cumulative over the life of an Ingester. Every receipt
// received ends in exactly one of the other counters, or is still Buffered.
type Counters struct {
	Received    int64 // messages on the receipts topics
	Stored      int64 // new receipts written
	Duplicates  int64 // receipts already stored (same send, player and event)
	Malformed   int64 // a topic or payload that is no receipt
	UnknownSend int64 // an id that is no send
	OtherGame   int64 // another game's send
	Expired     int64 // a send past retention
	Failed      int64 // given up: a write that kept failing, or Stop out of time
	Buffered    int64 // waiting to be written now (a gauge)
}

// Ingester takes receipts from the broker and writes them to the Store in
// batches, with two writer goroutines behind a fixed-size buffer.
type Ingester struct {
	store *Store
	cfg   Config
	buf   chan row

	stopping chan struct{}   // closed by Stop: drain and write what is left
	stopCtx  context.Context // Stop's deadline, set before stopping is closed
	done     chan struct{}   // closed once the writers are done
	started  atomic.Bool

	received, stored, duplicates, malformed atomic.Int64
	unknownSend, otherGame, expired, failed atomic.Int64
	inBatch                                 atomic.Int64
	writing                                 atomic.Int32  // writers writing now
	wrote                                   chan struct{} // a writer finished a write
}

// NewIngester returns an Ingester writing to s; Start starts it.
func (s *Store) NewIngester(cfg Config) *Ingester {
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	cfg.Batch = min(cfg.Batch, cfg.Buffer)
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = DefaultFlushEvery
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Ingester{
		store: s, cfg: cfg, buf: make(chan row, cfg.Buffer),
		stopping: make(chan struct{}), done: make(chan struct{}),
		wrote: make(chan struct{}, 1),
	}
}

// Start starts the writers, then the Source, and returns at once. Writes use
// ctx, which should outlive requests (Stop ends them).
func (in *Ingester) Start(ctx context.Context) {
	if !in.started.CompareAndSwap(false, true) {
		return
	}
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() { in.run(ctx) })
	}
	go func() {
		wg.Wait()
		close(in.done)
	}()
	if in.cfg.Source != nil {
		in.cfg.Source.Start(in.Handle)
	}
}

// Stop stops the Source, letting it hand over what the broker already routed
// to this replica, then writes everything received, within StopTimeout, and
// waits for the writers. What they could not write in time is counted
// Failed and logged.
func (in *Ingester) Stop() {
	if !in.started.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), in.cfg.StopTimeout)
	defer cancel()
	if in.cfg.Source != nil {
		if err := in.cfg.Source.Stop(ctx); err != nil {
			in.cfg.Log.Warn("receipts subscription did not stop cleanly; what the broker had routed here and not sent may be lost", "err", err)
		}
	}
	in.stopCtx = ctx
	close(in.stopping)
	<-in.done
	c := in.Counters()
	in.cfg.Log.Info("receipts ingestion stopped", "received", c.Received, "stored", c.Stored,
		"duplicates", c.Duplicates, "failed", c.Failed)
}

// Counters returns the cumulative counters.
func (in *Ingester) Counters() Counters {
	return Counters{
		Received: in.received.Load(), Stored: in.stored.Load(), Duplicates: in.duplicates.Load(),
		Malformed: in.malformed.Load(), UnknownSend: in.unknownSend.Load(), OtherGame: in.otherGame.Load(),
		Expired: in.expired.Load(), Failed: in.failed.Load(),
		Buffered: int64(len(in.buf)) + in.inBatch.Load(),
	}
}

// Handle takes one message of the receipts subscription. The game and the
// player come from the topic, never from the payload. A malformed message is
// counted and dropped; a receipt waits in the buffer, and while the buffer is
// full Handle blocks until a writer makes room (back-pressure).
func (in *Ingester) Handle(topic string, payload []byte) {
	in.received.Add(1)
	r, ok := in.parse(topic, payload)
	if !ok {
		in.malformed.Add(1)
		return
	}
	if _, isSend := sendDay(r.send); !isSend {
		in.unknownSend.Add(1)
		return
	}
	select {
	case <-in.done: // stopped: nobody would write it
		in.failed.Add(1)
		return
	default:
	}
	if in.cfg.OnDelivered != nil && r.event == protocol.EventDelivered {
		in.cfg.OnDelivered(r.game, r.player, r.send, r.receivedAt)
	}
	select {
	case in.buf <- r:
	case <-in.done:
		in.failed.Add(1)
	}
}

// parse reads {prefix}/{game}/receipts/{player} and the payload.
func (in *Ingester) parse(topic string, payload []byte) (row, bool) {
	rest, ok := strings.CutPrefix(topic, in.cfg.Prefix+"/")
	if !ok {
		return row{}, false
	}
	game, rest, _ := strings.Cut(rest, "/")
	player, ok := strings.CutPrefix(rest, "receipts/")
	if !ok || protocol.CheckID(game) != nil || protocol.CheckID(player) != nil {
		in.cfg.Log.Debug("receipt on a malformed topic", "topic", topic)
		return row{}, false
	}
	rc, err := protocol.ParseReceipt(payload)
	if err != nil {
		in.cfg.Log.Debug("malformed receipt", "topic", topic, "err", err)
		return row{}, false
	}
	id, err := uuid.Parse(rc.ID)
	if err != nil {
		id = uuid.Nil // no send: counted as unknown
	}
	return row{send: id, game: game, player: player, event: rc.Event, clientAt: rc.At, receivedAt: in.cfg.Now()}, true
}

// run is a writer. It takes a receipt and what else is waiting, up to Batch,
// and writes them at once if the other writer is idle: a lone receipt (a
// kick-out's confirmation) is stored within one write, not after FlushEvery.
// While the other writer is writing, it fills its batch until that write ends
// (FlushEvery at most), so the writers take turns and each write takes what
// came during the last: the busier the database, the bigger the batches. On
// Stop it writes what is left.
func (in *Ingester) run(ctx context.Context) {
	batch := make([]row, 0, in.cfg.Batch)
	for {
		select {
		case r := <-in.buf:
			batch = append(batch, r)
		case <-in.stopping:
			in.drain(ctx, batch)
			return
		}
		batch = in.take(batch)
		if len(batch) < in.cfg.Batch && in.writing.Load() > 0 {
			batch = in.fill(batch)
		}
		in.writing.Add(1)
		in.flush(ctx, batch)
		in.writing.Add(-1)
		select {
		case in.wrote <- struct{}{}: // a fellow filling its batch writes it now
		default:
		}
		batch = batch[:0]
	}
}

// fill adds receipts to batch as they come, up to Batch, until the other
// writer's write ends, FlushEvery passes or Stop.
func (in *Ingester) fill(batch []row) []row {
	timer := time.NewTimer(in.cfg.FlushEvery)
	defer timer.Stop()
	for len(batch) < in.cfg.Batch {
		select {
		case r := <-in.buf:
			batch = append(batch, r)
		case <-in.wrote:
			return batch
		case <-timer.C:
			return batch
		case <-in.stopping:
			return batch
		}
	}
	return batch
}

// drain writes batch and everything still buffered, once Stop was called.
func (in *Ingester) drain(ctx context.Context, batch []row) {
	for {
		batch = in.take(batch)
		if len(batch) == 0 {
			return
		}
		in.flush(ctx, batch)
		batch = batch[:0]
	}
}

// take adds what is buffered to batch, up to Batch, without waiting.
func (in *Ingester) take(batch []row) []row {
	for len(batch) < in.cfg.Batch {
		select {
		case r := <-in.buf:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// flush writes one batch, trying again while the database is unavailable (the
// buffer fills meanwhile and pushes back on the broker) and a few times after
// other errors. It gives up on the batch, counting it Failed, after those
// tries or once Stop's time is up.
func (in *Ingester) flush(ctx context.Context, batch []row) {
	in.inBatch.Add(int64(len(batch)))
	defer in.inBatch.Add(-int64(len(batch)))
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		stopCtx := in.stopContext()
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		stopWrite := context.AfterFunc(stopCtx, cancel)
		start := time.Now()
		w, err := in.store.write(wctx, batch, in.cfg.Now())
		stopWrite()
		cancel()
		if err == nil {
			in.count(w)
			if in.cfg.OnFlush != nil {
				in.cfg.OnFlush(time.Since(start), len(batch))
			}
			return
		}
		switch {
		case stopCtx.Err() != nil || ctx.Err() != nil:
			in.failed.Add(int64(len(batch)))
			in.cfg.Log.Error("receipts lost: out of time to write them at shutdown", "receipts", len(batch), "err", err)
			return
		case !postgres.Unavailable(err) && attempt >= writeAttempts:
			in.failed.Add(int64(len(batch)))
			in.cfg.Log.Error("receipts lost: the write kept failing", "receipts", len(batch), "attempts", attempt, "err", err)
			return
		}
		in.cfg.Log.Warn("writing receipts failed; trying again", "receipts", len(batch), "attempt", attempt,
			"retry_in", backoff.String(), "err", err)
		select {
		case <-time.After(backoff):
		case <-stopCtx.Done():
		case <-ctx.Done():
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// stopContext is Stop's deadline once Stop was called, and a context that
// never ends before.
func (in *Ingester) stopContext() context.Context {
	select {
	case <-in.stopping:
		return in.stopCtx
	default:
		return context.Background()
	}
}

func (in *Ingester) count(w written) {
	in.stored.Add(int64(w.stored))
	in.duplicates.Add(int64(w.duplicates))
	in.unknownSend.Add(int64(w.unknownSend))
	in.otherGame.Add(int64(w.otherGame))
	in.expired.Add(int64(w.expired))
}
