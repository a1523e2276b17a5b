package campaigns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/schedule"
	"github.com/heraldpush/herald/segments"
)

// maxCatchUp bounds the missed fires of one campaign recorded in one
// transaction (an every-minute campaign after a day without a leader has
// 1,440): the next round records the rest.
const maxCatchUp = 100

// fireRecurring records the fires of recurring campaign c of game g that are
// due at its send_at, one dispatch per zone firing then, and moves send_at to
// the next fire, or completes c when none is left before until. Fires that
// follow and are missed too (more than grace late) are recorded in the same
// transaction.
func (s *Store) fireRecurring(ctx context.Context, tx pgx.Tx, c Campaign, g games.Game, now time.Time, grace time.Duration) error {
	cr, zones, err := recurrence(c.Schedule, g)
	if _, invalid := fielderr.As(err); invalid {
		// The game no longer declares the zones it fires in (CheckZones
		// refuses that while it is scheduled): nothing can fire again.
		return setNext(ctx, tx, c.ID, time.Time{}, false)
	} else if err != nil {
		return err
	}
	at := c.SendAt
	for range maxCatchUp {
		for _, z := range firing(cr, zones, at) {
			if err := s.fireZone(ctx, tx, c, g, cr, z, at, now, grace); err != nil {
				return err
			}
		}
		next, _, ok := cr.NextIn(at, zones)
		if !ok {
			return setNext(ctx, tx, c.ID, time.Time{}, false)
		}
		if at = next; now.Sub(at) <= grace {
			break // not due yet, or due within the grace: a round of its own sends it
		}
	}
	return setNext(ctx, tx, c.ID, at, true)
}

// firing returns the zones that fire at instant at: a campaign in one zone
// fires at its send_at, whatever moved it there; one in players' zones in each
// zone whose local time it is.
func firing(cr schedule.Cron, zones []schedule.Zone, at time.Time) []schedule.Zone {
	if !cr.PerPlayer() {
		return zones
	}
	var out []schedule.Zone
	for _, z := range zones {
		if t, ok := cr.Next(at.Add(-time.Nanosecond), z.Loc); ok && t.Equal(at) {
			out = append(out, z)
		}
	}
	return out
}

// setNext moves campaign id to its next fire, or completes it when more is
// false.
func setNext(ctx context.Context, tx pgx.Tx, id uuid.UUID, next time.Time, more bool) error {
	var err error
	if more {
		_, err = tx.Exec(ctx, `UPDATE campaigns SET send_at = $2, updated_at = now() WHERE id = $1`, id, next)
	} else {
		_, err = tx.Exec(ctx, `UPDATE campaigns SET status = $2, updated_at = now() WHERE id = $1`, id, StatusCompleted)
	}
	if err != nil {
		return fmt.Errorf("move campaign %s to its next fire: %w", id, err)
	}
	return nil
}

// fireZone records the fire at `at` of recurring campaign c in zone z: sent
// (pending), missed (too late, or expired before it could go), or skipped
// (the previous send of the campaign in that zone is still publishing). A
// fire that is sent takes the place of the previous send, which is cleared
// first.
func (s *Store) fireZone(ctx context.Context, tx pgx.Tx, c Campaign, g games.Game, cr schedule.Cron, z schedule.Zone,
	at, now time.Time, grace time.Duration) error {
	f := fire{at: at, state: DispatchPending}
	if cr.PerPlayer() {
		f.zone = z.Name
	}
	send := c.sendAt(at)
	switch {
	case now.Sub(at) > grace:
		f.state, f.note = DispatchMissed, fmt.Sprintf("due at %s and reached %s late, past the misfire grace of %s: no scheduler ran in time",
			at.UTC().Format(time.RFC3339), Duration(now.Sub(at).Truncate(time.Second)), Duration(grace))
	case !send.ExpiresAt.After(now):
		f.state, f.note = DispatchMissed, "its ttl ran out before it could be sent"
	}
	if f.state == DispatchPending {
		prev, busy, err := publishing(ctx, tx, c.ID, f.zone, at)
		if err != nil {
			return err
		}
		if busy {
			f.state, f.note = DispatchSkipped, fmt.Sprintf("the previous send (fired at %s) was still publishing: "+
				"sends of one campaign never overlap, and a fire is skipped rather than queued behind a slow one",
				prev.UTC().Format(time.RFC3339))
		}
	}
	if f.state == DispatchPending {
		plan, list, err := planOf(ctx, tx, g, c, z)
		if _, invalid := fielderr.As(err); invalid {
			f.state, f.note = DispatchMissed, fmt.Sprintf("the audience no longer resolves: %v", err)
		} else if err != nil {
			return err
		} else {
			f.plan, f.list = plan, list
		}
	}
	recorded, err := recordFire(ctx, tx, send, f)
	if err != nil || !recorded || f.state != DispatchPending {
		return err
	}
	return replacePrevious(ctx, tx, c.ID, f.zone, at)
}

// fire is one dispatch to record: a send, or a fire that was not sent and why.
type fire struct {
	at    time.Time
	zone  string
	state DispatchState
	note  string
	plan  segments.Plan
	list  *int64
}

// publishing reports whether a send of campaign in zone fired before `before`
// is still pending or publishing (and not asked to clear), with its fire time.
func publishing(ctx context.Context, tx pgx.Tx, campaign uuid.UUID, zone string, before time.Time) (time.Time, bool, error) {
	var at time.Time
	err := tx.QueryRow(ctx, `
		SELECT fire_at FROM dispatches
		WHERE campaign_id = $1 AND zone = $2 AND fire_at < $3 AND state IN ('pending', 'publishing') AND clear_reason IS NULL
		ORDER BY fire_at DESC LIMIT 1`, campaign, zone, before).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("look for a send of %s still publishing: %w", campaign, err)
	}
	return at, true, nil
}

// replacePrevious marks the sends of campaign in zone fired before `before`
// that are still out for clearing: the send fired at `before` takes their
// retained topics, and waits until they are cleared (so that clearing an old
// send never removes the new one).
func replacePrevious(ctx context.Context, tx pgx.Tx, campaign uuid.UUID, zone string, before time.Time) error {
	if _, err := tx.Exec(ctx, `
		UPDATE dispatches SET clear_reason = 'replace', updated_at = now()
		WHERE campaign_id = $1 AND zone = $2 AND fire_at < $3 AND clear_reason IS NULL AND cleared_at IS NULL`,
		campaign, zone, before); err != nil {
		return fmt.Errorf("replace the previous send of %s: %w", campaign, err)
	}
	return nil
}
