package kickouts

import (
	"context"
	"time"

	"github.com/heraldpush/herald/postgres"
)

// recoveryBatch is how many cut-off kick-outs one round of recovery takes.
const recoveryBatch = 100

// recover publishes, every Poll until ctx ends, the kick-outs that were
// stored but never marked published (their replica died, or the broker did
// not acknowledge in time) once their publisher's lease passed, while their
// ttl lasts. Any replica does it; SKIP LOCKED and the lease keep two from
// taking the same kick-out at once, and a kick-out sent twice is one to
// clients, which de-duplicate on its id.
func (s *Service) recover(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.Poll):
		}
		for ctx.Err() == nil {
			n, err := s.recoverOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					if postgres.Unavailable(err) {
						s.cfg.Log.WarnContext(ctx, "recover kick-outs: database unavailable", "err", err)
					} else {
						s.cfg.Log.ErrorContext(ctx, "recover kick-outs", "err", err)
					}
				}
				break
			}
			if n < recoveryBatch {
				break
			}
		}
	}
}

// recoverOnce publishes one batch of cut-off kick-outs, under a lease long
// enough for its publish, and returns how many it took.
func (s *Service) recoverOnce(ctx context.Context) (int, error) {
	step, cancel := context.WithTimeout(ctx, s.cfg.DBTimeout)
	now := s.cfg.Now()
	list, err := s.store.claimUnpublished(step, now, now.Add(s.cfg.PublishTimeout+s.cfg.DBTimeout), recoveryBatch)
	cancel()
	if err != nil {
		return 0, err
	}
	if len(list) == 0 {
		return 0, nil
	}
	payloads := make([][]byte, len(list))
	for i, k := range list {
		if payloads[i], err = s.envelope(k); err != nil { // cannot happen: it was encoded before it was stored
			return 0, err
		}
	}
	if _, ok := s.publish(ctx, list, payloads); !ok {
		return 0, nil // the broker is slow or away: the next round tries again
	}
	for _, k := range list {
		s.cfg.Log.InfoContext(ctx, "kick-out published by recovery", "kickout", k.ID,
			"late", s.cfg.Now().Sub(k.CreatedAt).Round(time.Millisecond).String())
	}
	return len(list), nil
}
