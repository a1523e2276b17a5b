package kickouts

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/heraldpush/herald/receipts"
)

// Wait returns the status of kick-out id of game once every targeted player
// confirmed it, its ttl passed, or wait (at most MaxWait) ended, whichever
// comes first. A server kick-out, whose players Herald does not know, is
// answered when the ttl passes or the wait ends. The waiting request is woken
// by the receipt notifications of any replica, and by this replica's receipts
// as soon as they are read, and reads the status again every Recheck in case
// a notification was missed. A replica shutting down (Drain) answers at once.
// It returns ErrNotFound, or ctx's error when the caller went away.
func (s *Service) Wait(ctx context.Context, game string, id uuid.UUID, wait time.Duration) (Status, error) {
	deadline := s.cfg.Now().Add(min(wait, MaxWait))
	w, stop := s.hub.watch(id, game) // before the first read, so no receipt slips between
	defer stop()
	step, cancel := context.WithTimeout(ctx, s.cfg.DBTimeout)
	k, err := s.get(step, game, id)
	cancel()
	if err != nil {
		return Status{}, err
	}
	return s.waitFor(ctx, k, w, deadline, true)
}

// waitFor waits as Wait says for k, watched by w, until deadline. readFirst
// reads the stored receipts at once; without it the first read waits for a
// wake-up or Recheck (k was just published: nothing is stored for it yet that
// a notification would not announce).
func (s *Service) waitFor(ctx context.Context, k Kickout, w *watcher, deadline time.Time, readFirst bool) (Status, error) {
	first := time.Duration(0)
	if !readFirst {
		first = min(s.cfg.Recheck, max(deadline.Sub(s.cfg.Now()), 0))
	}
	recheck := time.NewTimer(first)
	defer recheck.Stop()
	read := readFirst
	for {
		now := s.cfg.Now()
		if local := w.delivered(); k.Server == "" && k.PublishedAt != nil && covers(local, k.Players) {
			// Every player confirmed to this replica: no need to read them back.
			got, total := merge(k, nil, 0, local)
			return status(k, got, total, now)
		}
		if read || !now.Before(deadline) || !now.Before(k.ExpiresAt) {
			settled, err := s.settled(ctx, k, now)
			if err != nil {
				return Status{}, err
			}
			if settled || !now.Before(deadline) {
				return s.finalStatus(ctx, k, w)
			}
			recheck.Reset(min(s.cfg.Recheck, deadline.Sub(now), k.ExpiresAt.Sub(now)))
		}
		read = false
		select {
		case <-ctx.Done():
			return Status{}, ctx.Err()
		case <-s.draining:
			return s.finalStatus(ctx, k, w)
		case <-w.woken:
			read = true
		case <-recheck.C:
			read = true
		}
	}
}

// settled reports whether waiting longer for k can change nothing at now:
// the ttl passed, or every targeted player's confirmation is stored. It reads
// the count of confirmations only.
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
// its receipts, and those w saw on this replica.
func (s *Service) finalStatus(ctx context.Context, k Kickout, w *watcher) (Status, error) {
	step, cancel := context.WithTimeout(ctx, s.cfg.DBTimeout)
	defer cancel()
	k, err := s.get(step, k.Game, k.ID)
	if err != nil {
		return Status{}, err
	}
	return s.status(step, k, w.delivered())
}

// covers reports whether every one of players is in local.
func covers(local map[string]time.Time, players []string) bool {
	if len(local) < len(players) {
		return false
	}
	for _, p := range players {
		if _, ok := local[p]; !ok {
			return false
		}
	}
	return true
}

// merge adds to the stored deliveries got of k (total of them in all) those
// in local that are not stored yet: of a targeted player or, for a server
// kick-out, of any player, after the stored ones in the order they were read
// while the list has room (MaxPlayers).
func merge(k Kickout, got []receipts.Delivery, total int, local map[string]time.Time) ([]receipts.Delivery, int) {
	if len(local) == 0 {
		return got, total
	}
	stored := make(map[string]bool, len(got))
	for _, d := range got {
		stored[d.Player] = true
	}
	var more []receipts.Delivery
	if k.Server == "" {
		for _, p := range k.Players {
			if at, ok := local[p]; ok && !stored[p] {
				more = append(more, receipts.Delivery{Player: p, At: at})
			}
		}
	} else {
		for p, at := range local {
			if !stored[p] {
				more = append(more, receipts.Delivery{Player: p, At: at})
			}
		}
		slices.SortFunc(more, func(a, b receipts.Delivery) int {
			return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Player, b.Player))
		})
		more = more[:min(len(more), max(MaxPlayers-len(got), 0))]
	}
	return append(got, more...), total + len(more)
}
