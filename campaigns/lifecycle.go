package campaigns

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

// Update applies change to the campaign as its caller described it, validates the
// result and stores it. Only a campaign not sent yet can change, or a recurring
// one (scheduled or paused) that stays recurring: its changes apply from its
// next fire, computed anew from now. It returns ErrSent otherwise, ErrNotFound,
// or a fielderr.List. A change that moves the send time to now sends it at once.
// A change of audience is confirmed as on Create (*UnconfirmedError), with the
// ConfirmAudience change sets.
func (s *Store) Update(ctx context.Context, game string, id uuid.UUID, change func(*Input)) (Campaign, error) {
	var updated Campaign
	var handoff *dispatch.Handoff
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		g, err := games.GetShared(ctx, tx, game)
		if err != nil {
			return err
		}
		old, err := get(ctx, tx, game, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		recurring := old.Schedule.Recurring() && (old.Status == StatusScheduled || old.Status == StatusPaused)
		if !recurring && (old.Status != StatusScheduled || len(old.Dispatches) > 0) {
			return ErrSent
		}
		in := old.input()
		change(&in)
		if recurring && len(old.Dispatches) > 0 && !in.Schedule.Recurring() {
			return fielderr.New("schedule", "a recurring campaign that has fired stays recurring: cancel it and create another")
		}
		p, err := s.prepare(ctx, tx, g, in, id, s.now())
		if err != nil {
			return err
		}
		if !sameAudience(old.Audience, *in.Audience) {
			if err := p.checkConfirmed(g, in.ConfirmAudience); err != nil {
				return err
			}
		}
		c := p.campaign
		if old.Status == StatusPaused {
			c.Status = StatusPaused
		}
		if _, err := tx.Exec(ctx, `
			UPDATE campaigns SET kind = $2, name = $3, segment_id = $4, rule = $5, content = $6, priority = $7,
				starts_at = $8, expires_at = $9, ttl_ms = $10, misfire_grace_ms = $11, schedule = $12, send_at = $13,
				status = $14, plan_exact = $15, plan_topics = $16, plan_players = $17, plan_players_note = nullif($18, ''),
				updated_at = now()
			WHERE id = $1`,
			id, c.Kind, c.Name, c.Audience.SegmentID, c.Audience.Rule, c.Content, c.Priority, c.StartsAt,
			nullTime(c.ExpiresAt), millis(c.TTL), millis(c.MisfireGrace), c.Schedule, c.SendAt, c.Status, c.Plan.Exact,
			c.Plan.Topics, c.Plan.Players, c.Plan.PlayersNote); err != nil {
			return fmt.Errorf("update campaign %s: %w", id, err)
		}
		if err := notifySchedule(ctx, tx); err != nil {
			return err
		}
		if handoff, err = p.sendIfDue(ctx, tx, s.fanout); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Entry{Action: "campaign.update", Game: game, ObjectType: "campaign", ObjectID: id.String()}); err != nil {
			return err
		}
		updated, err = get(ctx, tx, game, id, "")
		return err
	})
	handoff.Settle(err)
	return updated, err
}

// Cancel recalls a campaign: no later send happens, and every dispatch that
// published anything is marked for clearing, which the fan-out workers do at
// once. Canceling a canceled campaign changes nothing. It returns ErrNotFound, or
// ErrFinished for a campaign that already expired, completed or missed its
// fire.
func (s *Store) Cancel(ctx context.Context, game string, id uuid.UUID) (Campaign, error) {
	var canceled Campaign
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		c, err := get(ctx, tx, game, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		switch c.Status {
		case StatusCanceled:
			canceled = c
			return nil
		case StatusExpired, StatusCompleted, StatusMissed:
			return ErrFinished
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = $2, updated_at = now() WHERE id = $1`, id, StatusCanceled); err != nil {
			return fmt.Errorf("cancel campaign %s: %w", id, err)
		}
		if err := notifySchedule(ctx, tx); err != nil {
			return err
		}
		if err := dispatch.Recall(ctx, tx, id); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Entry{Action: "campaign.cancel", Game: game, ObjectType: "campaign", ObjectID: id.String()}); err != nil {
			return err
		}
		canceled, err = get(ctx, tx, game, id, "")
		return err
	})
	return canceled, err
}

// fireLockWait bounds how long one campaign's fire waits for a lock (its game's
// or its segment's row): a fire held up longer is skipped for the round.
const fireLockWait = 500 * time.Millisecond

// fireTimeout bounds one campaign's fire in all.
const fireTimeout = 5 * time.Second

// fireWorkers is how many transactions of fires FireDue runs at once; each
// mostly waits on Postgres.
const fireWorkers = 4

// fireBatch is how many due campaigns one transaction fires: their dispatches
// are written in one statement and the campaigns moved on in another, which is
// what lets the minute when thousands of campaigns fire pass in seconds. Each
// transaction costs about ten round trips whatever its size, and on a busy
// machine a round trip takes tens of milliseconds: 10,000 campaigns recorded
// 250 at a time took 2.5 s, 1,000 at a time under 1 s (the cron benchmark,
// BENCH_ONLY=cron make bench).
const fireBatch = 1000

// FireDue sends every scheduled campaign whose time has come: it records its
// dispatch with the plan as it stands now. A fire more than grace late (Herald
// was down; a campaign's misfire_grace overrides grace) is recorded as missed
// instead and nothing is sent. It returns how many campaigns it fired or
// missed. Safe on several replicas at once: each campaign is claimed with SKIP
// LOCKED and each fire is unique.
//
// Fires go in transactions of up to fireBatch campaigns, fireWorkers at a
// time, each within fireTimeout. A read that may wait for a lock (a game's or
// a segment's row) runs in a savepoint and waits at most fireLockWait: a
// campaign held up is left out of its transaction, which records the others,
// and skipped for the rest of this call. The errors of skipped fires are
// returned joined.
func (s *Store) FireDue(ctx context.Context, now time.Time, grace time.Duration) (int, error) {
	var mu sync.Mutex
	fired := 0
	skipped := []uuid.UUID{} // not nil: NOT (id = ANY(NULL)) would match nothing
	var errs []error
	var workers sync.WaitGroup
	for range fireWorkers {
		workers.Go(func() {
			for {
				mu.Lock()
				skip := slices.Clone(skipped)
				mu.Unlock()
				r := s.fireBatch(ctx, now, grace, skip)
				mu.Lock()
				fired += r.fired
				for id, err := range r.failed {
					skipped = append(skipped, id)
					errs = append(errs, fmt.Errorf("fire campaign %s: %w", id, err))
				}
				if r.err != nil { // not one campaign's fault: the database failed
					errs = append(errs, r.err)
				}
				mu.Unlock()
				if r.done || r.err != nil {
					return
				}
			}
		})
	}
	workers.Wait()
	return fired, errors.Join(errs...)
}

// DispatchCleared marks campaign expired, in tx, when its last dispatch was
// cleared at expiry (dispatch.WorkerConfig.OnCleared). A canceled campaign
// stays canceled.
func (s *Store) DispatchCleared(ctx context.Context, tx pgx.Tx, campaign uuid.UUID) error {
	if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = $2, updated_at = now() WHERE id = $1 AND status = $3`,
		campaign, StatusExpired, StatusLive); err != nil {
		return fmt.Errorf("mark campaign %s expired: %w", campaign, err)
	}
	return nil
}

// CheckSchema verifies, inside the transaction that changes a game's tag schema,
// that the inline audience of every campaign still to be sent or cleared fits
// the new schema (segments check their own rules). It returns a fielderr.List on
// field "tags" naming each campaign that would break.
func CheckSchema(ctx context.Context, tx pgx.Tx, g games.Game) error {
	rows, _ := tx.Query(ctx, `
		SELECT id, name, rule FROM campaigns
		WHERE game_id = $1 AND rule IS NOT NULL AND status IN ('scheduled', 'paused', 'live') ORDER BY id`, g.ID)
	var errs fielderr.List
	var id uuid.UUID
	var name string
	var rule protocol.Rule
	_, err := pgx.ForEachRow(rows, []any{&id, &name, &rule}, func() error {
		if err := segments.ValidateRule(rule, "audience.rule", g.Tags); err != nil {
			errs.Add("tags", "campaign %s (%s) would no longer be valid: %v", id, name, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load campaigns of %s: %w", g.ID, err)
	}
	return errs.Err()
}

// CheckLocale verifies, inside the transaction that changes a game's default
// locale, that every campaign still scheduled or live has its localized texts
// in the new one: clients fall back to the default locale, so a campaign
// without it would show them nothing. It returns a fielderr.List on field
// "default_locale" naming each campaign that lacks it.
func CheckLocale(ctx context.Context, tx pgx.Tx, g games.Game) error {
	rows, _ := tx.Query(ctx, `
		SELECT id, name, kind, content FROM campaigns
		WHERE game_id = $1 AND status IN ('scheduled', 'paused', 'live') ORDER BY id`, g.ID)
	var errs fielderr.List
	var id uuid.UUID
	var name string
	var kind protocol.Kind
	var content []byte
	_, err := pgx.ForEachRow(rows, []any{&id, &name, &kind, &content}, func() error {
		if _, err := protocol.ParseContent(kind, content, g.DefaultLocale); err != nil {
			if _, ok := fielderr.As(err); !ok {
				return err
			}
			errs.Add("default_locale", "campaign %s (%s) has no text in %s: %v", id, name, g.DefaultLocale, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check campaign texts of %s: %w", g.ID, err)
	}
	return errs.Err()
}

// CheckZones verifies, inside the transaction that changes a game's tags or
// zone tag, that a game with campaigns to fire in players' zones (scheduled or
// paused) keeps a zone tag with zones. It returns a fielderr.List on field
// "zone_tag" naming each such campaign.
func CheckZones(ctx context.Context, tx pgx.Tx, g games.Game) error {
	if len(g.PlayerZones()) > 0 {
		return nil
	}
	rows, _ := tx.Query(ctx, `
		SELECT id, name FROM campaigns
		WHERE game_id = $1 AND status IN ('scheduled', 'paused') AND schedule->>'timezone' = 'player' ORDER BY id`, g.ID)
	var errs fielderr.List
	var id uuid.UUID
	var name string
	_, err := pgx.ForEachRow(rows, []any{&id, &name}, func() error {
		errs.Add("zone_tag", "campaign %s (%s) fires in each player's time zone: it needs the zone tag", id, name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("check campaigns in players' zones of %s: %w", g.ID, err)
	}
	return errs.Err()
}

// NextFire returns the send_at of the next fire of a scheduled campaign, zero
// when none is scheduled: the scheduler leader sleeps until then.
func (s *Store) NextFire(ctx context.Context) (time.Time, error) {
	var next *time.Time
	if err := s.db.QueryRow(ctx, `SELECT min(send_at) FROM campaigns WHERE status = 'scheduled'`).Scan(&next); err != nil {
		return time.Time{}, fmt.Errorf("find the next fire: %w", err)
	}
	if next == nil {
		return time.Time{}, nil
	}
	return *next, nil
}
