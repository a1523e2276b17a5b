package dispatch

import (
	"context"
	"log/slog"

	"github.com/google/uuid"
)

// maxFinish is how many dispatches a finish statement gathers before it
// takes no further request; a request is taken whole (a group of handed-off
// sends, up to a batch), so a statement records at most about twice this.
const maxFinish = 1000

// finisher writes the last checkpoints of the sends this replica's workers
// finish (Store.finish), as many in one statement as came while the previous
// one ran: when thousands of small sends are due the same minute, each
// finishes after one batch, and a round trip apiece would hold them all up.
type finisher struct {
	store *Store
	lease lease
	reqs  chan finishRequest
}

// finishRequest asks for fs to be finished; the reply's done holds what
// became of those still this replica's.
type finishRequest struct {
	fs    []finishing
	reply chan finishReply // buffered: the finisher never waits for the worker
}

type finishReply struct {
	done map[uuid.UUID]finished
	err  error
}

func newFinisher(s *Store, l lease) *finisher {
	return &finisher{store: s, lease: l, reqs: make(chan finishRequest)}
}

// run writes what is asked of it until ctx ends, each statement within a
// lease (a write slower than that finds the lease gone anyway).
func (f *finisher) run(ctx context.Context) {
	for {
		var batch []finishRequest
		var fs []finishing
		select {
		case <-ctx.Done():
			return
		case r := <-f.reqs:
			batch, fs = append(batch, r), append(fs, r.fs...)
		}
	more:
		for len(fs) < maxFinish {
			select {
			case r := <-f.reqs:
				batch, fs = append(batch, r), append(fs, r.fs...)
			default:
				break more
			}
		}
		step, cancel := context.WithTimeout(ctx, f.lease.length)
		done, err := f.store.finish(step, f.lease, fs)
		cancel()
		for _, r := range batch {
			r.reply <- finishReply{done: done, err: err}
		}
	}
}

// finish records the last batches of fs, with those of the other workers
// finishing meanwhile (Store.finish), and returns what became of those still
// this replica's.
func (f *finisher) finish(ctx context.Context, fs ...finishing) (map[uuid.UUID]finished, error) {
	r := finishRequest{fs: fs, reply: make(chan finishReply, 1)}
	select {
	case f.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case rep := <-r.reply:
		return rep.done, rep.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// finish ends j's publish: its walk reached next, res being what the broker
// made of the last batch. j learns what was asked of it meanwhile (a clear, a
// restore); with nothing asked, its lease was given back.
func (w *Worker) finish(ctx context.Context, j *job, next position, res Result, log *slog.Logger) error {
	j.finishing.Store(true) // the lease may be given back now: the heartbeat must not take that for a loss
	done, err := w.finisher.finish(ctx, finishing{id: j.id, next: next, res: res})
	if err != nil {
		return err
	}
	fin, ok := done[j.id]
	if !ok {
		return errLeaseLost
	}
	j.finished(next, fin)
	if j.reason != nil {
		log.InfoContext(ctx, "dispatch stops publishing to clear", "reason", *j.reason)
		return nil
	}
	log.InfoContext(ctx, "dispatch published")
	return nil
}

// finished records in j that its publish ended at next, as fin says: published
// unless a clear was asked for meanwhile; with a clear or a restore to do,
// the lease is still j's.
func (j *job) finished(next position, fin finished) {
	j.publish, j.reason, j.restore, j.released = next, fin.reason, fin.restore, fin.released
	if j.reason == nil {
		j.state = StatePublished
	}
}
