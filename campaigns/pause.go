package campaigns

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/games"
)

// Errors returned by Pause and Resume.
var (
	// ErrNotRecurring is returned when pausing or resuming a campaign that
	// fires once.
	ErrNotRecurring = errors.New("only a recurring campaign can be paused and resumed")
	// ErrEnded is returned when pausing or resuming a campaign that fires no
	// more (completed, canceled, expired).
	ErrEnded = errors.New("campaign has ended")
)

// ScheduleChannel is the Postgres notification channel on which a change to
// when campaigns fire is announced (create, update, pause, resume, cancel),
// in the transaction that makes it: the scheduler leader listens on it and
// wakes up at once rather than at its next poll.
const ScheduleChannel = "herald_schedule"

// notifySchedule announces, when tx commits, that campaign times changed.
func notifySchedule(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, ScheduleChannel); err != nil {
		return fmt.Errorf("notify the scheduler: %w", err)
	}
	return nil
}

// Pause stops the fires of a recurring campaign until it is resumed: a fire
// that falls while it is paused is not sent, not even late. What it sent
// stays until it expires. Pausing a paused campaign changes nothing. It
// returns ErrNotFound, ErrNotRecurring or ErrEnded.
func (s *Store) Pause(ctx context.Context, game string, id uuid.UUID) (Campaign, error) {
	return s.setPaused(ctx, game, id, true)
}

// Resume lets a paused recurring campaign fire again, from its first fire
// after now; it completes if none is left before until. Resuming a scheduled
// campaign changes nothing. It returns ErrNotFound, ErrNotRecurring or
// ErrEnded.
func (s *Store) Resume(ctx context.Context, game string, id uuid.UUID) (Campaign, error) {
	return s.setPaused(ctx, game, id, false)
}

func (s *Store) setPaused(ctx context.Context, game string, id uuid.UUID, pause bool) (Campaign, error) {
	var out Campaign
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		g, err := games.GetShared(ctx, tx, game)
		if err != nil {
			return err
		}
		c, err := get(ctx, tx, game, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		switch {
		case !c.Schedule.Recurring():
			return ErrNotRecurring
		case c.Status != StatusScheduled && c.Status != StatusPaused:
			return ErrEnded
		case pause == (c.Status == StatusPaused):
			out = c
			return nil
		}
		status, sendAt, action := StatusPaused, c.SendAt, "campaign.pause"
		if !pause {
			status, action = StatusScheduled, "campaign.resume"
			cr, zones, err := recurrence(c.Schedule, g)
			if err != nil {
				return err
			}
			if next, _, ok := cr.NextIn(s.now(), zones); ok {
				sendAt = next // what fell while it was paused is not sent
			} else {
				status = StatusCompleted
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = $2, send_at = $3, updated_at = now() WHERE id = $1`,
			id, status, sendAt); err != nil {
			return fmt.Errorf("%s %s: %w", action, id, err)
		}
		if err := notifySchedule(ctx, tx); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Entry{Action: action, Game: game, ObjectType: "campaign", ObjectID: id.String()}); err != nil {
			return err
		}
		out, err = get(ctx, tx, game, id, "")
		return err
	})
	return out, err
}
