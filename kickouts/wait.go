package kickouts

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Wait returns the status of kick-out id of game once every targeted player
// confirmed it, its ttl passed, or wait (at most MaxWait) ended, whichever
// comes first. A server kick-out, whose players Herald does not know, is
// answered when the ttl passes or the wait ends. The waiting request is woken
// by the receipt notifications of any replica and reads the status again every
// Recheck in case one was missed. A replica shutting down (Drain) answers at
// once. It returns ErrNotFound, or ctx's error when the caller went away.
func (s *Service) Wait(ctx context.Context, game string, id uuid.UUID, wait time.Duration) (Status, error) {
	deadline := s.cfg.Now().Add(min(wait, MaxWait))
	woken, stop := s.hub.watch(id) // before the first read, so no receipt slips between
	defer stop()
	step, cancel := context.WithTimeout(ctx, s.cfg.DBTimeout)
	k, err := s.store.get(step, game, id)
	cancel()
	if err != nil {
		return Status{}, err
	}
	recheck := time.NewTimer(0)
	defer recheck.Stop()
	for {
		now := s.cfg.Now()
		settled, err := s.settled(ctx, k, now)
		if err != nil {
			return Status{}, err
		}
		if settled || !now.Before(deadline) {
			return s.finalStatus(ctx, k)
		}
		recheck.Reset(min(s.cfg.Recheck, deadline.Sub(now), k.ExpiresAt.Sub(now)))
		select {
		case <-ctx.Done():
			return Status{}, ctx.Err()
		case <-s.draining:
			return s.finalStatus(ctx, k)
		case <-woken:
		case <-recheck.C:
		}
	}
}

// settled reports whether waiting longer for k can change nothing at now:
// the ttl passed, or every targeted player confirmed. It reads the count of
// confirmations only, and whether k is published yet.
func (s *Service) settled(ctx context.Context, k Kickout, now time.Time) (bool, error) {
	if !now.Before(k.ExpiresAt) {
		return true, nil
	}
	if k.Server != "" {
		return false, nil
	}
	step, cancel := context.WithTimeout(ctx, s.cfg.DBTimeout)
	defer cancel()
	n, err := s.cfg.Receipts.CountDelivered(step, k.ID, k.Players)
	if err != nil {
		return false, err
	}
	return n == len(k.Players), nil
}

// finalStatus reads k again (it may have been marked published meanwhile) with
// its receipts.
func (s *Service) finalStatus(ctx context.Context, k Kickout) (Status, error) {
	step, cancel := context.WithTimeout(ctx, s.cfg.DBTimeout)
	defer cancel()
	k, err := s.store.get(step, k.Game, k.ID)
	if err != nil {
		return Status{}, err
	}
	return s.status(step, k)
}
