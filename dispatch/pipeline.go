package dispatch

import (
	"context"
	"fmt"
	"sync"
)

// batchesInFlight is how many batches of one dispatch are published at once.
// With one, the broker's window empties at the end of every batch while the
// worker reads the next topics and writes the checkpoint; with two, the next
// batch is already being sent meanwhile, and a fan-out runs at the broker's
// pace. A dispatch's publishes past its checkpoint are therefore up to this many
// batches: a clear, and a restore of a dispatch that was still publishing,
// reach that far past it (see beyondCheckpoint).
const batchesInFlight = 2

// walkBatch is one batch of a pipeline: its messages and the walk position
// after them.
type walkBatch struct {
	msgs []Message
	next position
}

// produceFunc returns the next batch of a walk; no messages means the walk is
// over. It is called from one goroutine, in walk order.
type produceFunc func(ctx context.Context) (walkBatch, error)

// commitFunc records an acknowledged batch (a checkpoint); it is called in walk
// order, never for a batch after one that failed. stop true asks for no further
// batch to be started: those already in flight finish and are committed too.
type commitFunc func(ctx context.Context, b walkBatch, res Result) (stop bool, err error)

// pipeline publishes the batches produce returns, up to batchesInFlight at once
// while the next one is read ahead, and commits each once the broker
// acknowledged it, in walk order. It returns nil when the walk is over or a
// commit asked to stop and the batches in flight are committed; otherwise the
// first error (what names the work, for the message), after every batch still
// in flight has ended. A batch that failed, and any after it, is not
// committed: a resumed dispatch publishes it again.
func (w *Worker) pipeline(ctx context.Context, what string, produce produceFunc, commit commitFunc) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()

	// The next batch is read while the current ones are published.
	batches := make(chan walkBatch)
	var produceErr error // read once batches is closed
	wg.Go(func() {
		defer close(batches)
		for {
			b, err := produce(ctx)
			if err != nil {
				produceErr = err
				return
			}
			if len(b.msgs) == 0 {
				return
			}
			select {
			case batches <- b:
			case <-ctx.Done():
				return
			}
		}
	})

	type outcome struct {
		res Result
		err error
	}
	type flight struct {
		batch walkBatch
		done  chan outcome
	}
	var inFlight []flight // in walk order
	// fail cancels what is still in flight and waits for it, so that no
	// publish of this dispatch outlives the call.
	fail := func(err error) error {
		cancel()
		for _, f := range inFlight {
			<-f.done
		}
		return err
	}
	source, stopping := batches, false
	for {
		var next <-chan walkBatch
		if !stopping && len(inFlight) < batchesInFlight {
			next = source
		}
		var head chan outcome
		if len(inFlight) > 0 {
			head = inFlight[0].done
		}
		if next == nil && head == nil {
			return nil
		}
		select {
		case b, ok := <-next:
			if !ok {
				if produceErr != nil {
					return fail(produceErr)
				}
				source = nil // the walk is over: commit what is in flight
				continue
			}
			f := flight{batch: b, done: make(chan outcome, 1)}
			wg.Go(func() {
				res, err := w.cfg.Publisher.PublishAll(ctx, b.msgs)
				f.done <- outcome{res, err}
			})
			inFlight = append(inFlight, f)
		case o := <-head:
			f := inFlight[0]
			inFlight = inFlight[1:]
			if o.err != nil {
				return fail(fmt.Errorf("%s: %w", what, o.err))
			}
			stop, err := commit(ctx, f.batch, o.res)
			if err != nil {
				return fail(err)
			}
			stopping = stopping || stop
		}
	}
}

// beyondCheckpoint returns the walk position batchesInFlight batches after p:
// as far as a dispatch whose checkpoint is p may have published.
func (w *Worker) beyondCheckpoint(ctx context.Context, wk *walker, p position) (position, error) {
	_, past, err := wk.next(ctx, p, batchesInFlight*w.cfg.Batch, nil)
	return past, err
}
