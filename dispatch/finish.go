package dispatch

import (
	"context"
	"log/slog"
)

// maxFinish bounds the dispatches one finish statement records.
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

type finishRequest struct {
	finishing
	reply chan finishReply // buffered: the finisher never waits for the worker
}

type finishReply struct {
	finished
	ok  bool // false: the dispatch is no longer this replica's
	err error
}

func newFinisher(s *Store, l lease) *finisher {
	return &finisher{store: s, lease: l, reqs: make(chan finishRequest)}
}

// run writes what is asked of it until ctx ends, each statement within a
// lease (a write slower than that finds the lease gone anyway).
func (f *finisher) run(ctx context.Context) {
	for {
		var batch []finishRequest
		select {
		case <-ctx.Done():
			return
		case r := <-f.reqs:
			batch = append(batch, r)
		}
	more:
		for len(batch) < maxFinish {
			select {
			case r := <-f.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		fs := make([]finishing, len(batch))
		for i, r := range batch {
			fs[i] = r.finishing
		}
		step, cancel := context.WithTimeout(ctx, f.lease.length)
		done, err := f.store.finish(step, f.lease, fs)
		cancel()
		for _, r := range batch {
			fin, ok := done[r.id]
			r.reply <- finishReply{finished: fin, ok: ok, err: err}
		}
	}
}

// finish records the last batch of a publish, with those of the other
// workers finishing meanwhile (Store.finish).
func (f *finisher) finish(ctx context.Context, fin finishing) (finishReply, error) {
	r := finishRequest{finishing: fin, reply: make(chan finishReply, 1)}
	select {
	case f.reqs <- r:
	case <-ctx.Done():
		return finishReply{}, ctx.Err()
	}
	select {
	case rep := <-r.reply:
		return rep, rep.err
	case <-ctx.Done():
		return finishReply{}, ctx.Err()
	}
}

// finish ends j's publish: its walk reached next, res being what the broker
// made of the last batch. j learns what was asked of it meanwhile (a clear, a
// restore); with nothing asked, its lease was given back.
func (w *Worker) finish(ctx context.Context, j *job, next position, res Result, log *slog.Logger) error {
	j.finishing.Store(true) // the lease may be given back now: the heartbeat must not take that for a loss
	rep, err := w.finisher.finish(ctx, finishing{id: j.id, next: next, res: res})
	if err != nil {
		return err
	}
	if !rep.ok {
		return errLeaseLost
	}
	j.publish, j.reason, j.restore, j.released = next, rep.reason, rep.restore, rep.released
	if j.reason != nil {
		log.InfoContext(ctx, "dispatch stops publishing to clear", "reason", *j.reason)
		return nil
	}
	j.state = StatePublished
	log.InfoContext(ctx, "dispatch published")
	return nil
}
