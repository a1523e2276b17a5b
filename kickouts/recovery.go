package kickouts

import (
	"context"
	"time"

	"github.com/heraldpush/herald/postgres"
)

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
			more, err := s.recoverOne(ctx)
			if err != nil && ctx.Err() == nil {
				if postgres.Unavailable(err) {
					s.cfg.Log.WarnContext(ctx, "recover kick-outs: database unavailable", "err", err)
				} else {
					s.cfg.Log.ErrorContext(ctx, "recover kick-outs", "err", err)
				}
			}
			if !more {
				break
			}
		}
	}
}

// recoverOne publishes one cut-off kick-out, under a lease long enough for
// its publish, and reports whether to look for another at once: it found one
// and the broker took it. Kick-outs go one by one, each in its own batch (a
// few at most after a crash; up to 10,000 messages each).
func (s *Service) recoverOne(ctx context.Context) (bool, error) {
	step, cancel := context.WithTimeout(ctx, s.cfg.DBTimeout)
	now := s.cfg.Now()
	k, found, err := s.store.claimUnpublished(step, now, s.cfg.PublishTimeout+s.cfg.DBTimeout, perMessage)
	cancel()
	if err != nil || !found {
		return false, err
	}
	payload, err := s.envelope(k)
	if err != nil { // cannot happen: it was encoded before it was stored
		return false, err
	}
	if _, ok := s.publish(ctx, k, payload); !ok {
		return false, nil // the broker is slow or away: the next round tries again
	}
	s.cfg.Log.InfoContext(ctx, "kick-out published by recovery", "kickout", k.ID,
		"late", s.cfg.Now().Sub(k.CreatedAt).Round(time.Millisecond).String())
	return true, nil
}
