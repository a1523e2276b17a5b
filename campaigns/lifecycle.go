package campaigns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
	"github.com/heraldpush/herald/valid"
)

// Update applies change to the campaign as its caller described it, validates the
// result and stores it. Only a campaign not sent yet can change: it returns
// ErrSent otherwise, ErrNotFound, or a fielderr.List. A change that moves the
// send time to now sends it at once.
func (s *Store) Update(ctx context.Context, game string, id uuid.UUID, change func(*Input)) (Campaign, error) {
	var updated Campaign
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		g, err := games.GetShared(ctx, tx, game)
		if err != nil {
			return err
		}
		old, err := get(ctx, tx, game, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if old.Status != StatusScheduled || len(old.Dispatches) > 0 {
			return ErrSent
		}
		in := Input{Kind: old.Kind, Name: old.Name, Audience: &old.Audience, Content: old.Content,
			Priority: &old.Priority, StartsAt: valid.Of(old.StartsAt), ExpiresAt: valid.Of(&old.ExpiresAt), Schedule: old.Schedule}
		change(&in)
		p, err := s.prepare(ctx, tx, g, in, id, s.now())
		if err != nil {
			return err
		}
		c := p.campaign
		if _, err := tx.Exec(ctx, `
			UPDATE campaigns SET kind = $2, name = $3, segment_id = $4, rule = $5, content = $6, priority = $7,
				starts_at = $8, expires_at = $9, schedule = $10, send_at = $11, status = $12, plan_exact = $13,
				plan_topics = $14, plan_players = $15, updated_at = now()
			WHERE id = $1`,
			id, c.Kind, c.Name, c.Audience.SegmentID, c.Audience.Rule, c.Content, c.Priority, c.StartsAt,
			c.ExpiresAt, c.Schedule, c.SendAt, c.Status, c.Plan.Exact, c.Plan.Topics, c.Plan.Players); err != nil {
			return fmt.Errorf("update campaign %s: %w", id, err)
		}
		if err := p.sendIfDue(ctx, tx); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Entry{Action: "campaign.update", Game: game, ObjectType: "campaign", ObjectID: id.String()}); err != nil {
			return err
		}
		updated, err = get(ctx, tx, game, id, "")
		return err
	})
	return updated, err
}

// Cancel recalls a campaign: no later send happens, and every dispatch that
// published anything is marked for clearing, which the fan-out workers do at
// once. Canceling a canceled campaign changes nothing. It returns ErrNotFound, or
// ErrFinished for a campaign that already expired or completed.
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
		case StatusExpired, StatusCompleted:
			return ErrFinished
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = $2, updated_at = now() WHERE id = $1`, id, StatusCanceled); err != nil {
			return fmt.Errorf("cancel campaign %s: %w", id, err)
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

// FireDue sends every scheduled campaign whose time has come: it records its
// dispatch with the plan as it stands now. A fire more than grace late (Herald
// was down) is recorded as missed instead and nothing is sent. It returns how
// many campaigns it fired or missed. Safe on several replicas at once: each
// campaign is claimed with SKIP LOCKED and each fire is unique.
//
// Each fire has its own transaction and its own time (fireLockWait for a lock,
// fireTimeout in all): a campaign whose fire fails or times out is skipped for
// the rest of this call, which moves on to the others, and is tried again at
// the next. The errors of skipped fires are returned joined.
func (s *Store) FireDue(ctx context.Context, now time.Time, grace time.Duration) (int, error) {
	fired := 0
	skipped := []uuid.UUID{} // not nil: NOT (id = ANY(NULL)) would match nothing
	var errs []error
	for {
		id, done, err := s.fireNext(ctx, now, grace, skipped)
		switch {
		case done:
			return fired, errors.Join(errs...)
		case err != nil && id == uuid.Nil: // no campaign in hand: the database failed
			return fired, errors.Join(append(errs, err)...)
		case err != nil:
			skipped = append(skipped, id)
			errs = append(errs, fmt.Errorf("fire campaign %s: %w", id, err))
		default:
			fired++
		}
	}
}

// fireNext fires the earliest due campaign not in skip, in a transaction of its
// own. It returns the campaign's id (uuid.Nil if it got none), and done when
// none is due.
func (s *Store) fireNext(ctx context.Context, now time.Time, grace time.Duration, skip []uuid.UUID) (id uuid.UUID, done bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, fireTimeout)
	defer cancel()
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = '%dms'`, fireLockWait.Milliseconds())); err != nil {
			return fmt.Errorf("bound lock waits: %w", err)
		}
		rows, _ := tx.Query(ctx, `
			SELECT `+campaignColumns+` FROM campaigns
			WHERE status = 'scheduled' AND send_at <= $1 AND NOT (id = ANY($2))
			ORDER BY send_at LIMIT 1 FOR UPDATE SKIP LOCKED`, now, skip)
		list, err := pgx.CollectRows(rows, scanCampaign)
		if err != nil {
			return fmt.Errorf("find due campaigns: %w", err)
		}
		if len(list) == 0 {
			done = true
			return nil
		}
		id = list[0].ID
		return s.fire(ctx, tx, list[0], now, grace)
	})
	return id, done, err
}

func (s *Store) fire(ctx context.Context, tx pgx.Tx, c Campaign, now time.Time, grace time.Duration) error {
	g, err := games.GetShared(ctx, tx, c.GameID)
	if err != nil {
		return err
	}
	status, state := StatusLive, dispatch.StatePending
	if now.Sub(c.SendAt) > grace || !c.ExpiresAt.After(now) {
		status, state = StatusCompleted, dispatch.StateMissed
	}
	plan, list, err := resolve(ctx, tx, g, c.Audience)
	if _, invalid := fielderr.As(err); invalid {
		// The audience no longer resolves (a schema change): record the fire as
		// missed rather than retry it forever.
		status, state = StatusCompleted, dispatch.StateMissed
		list = nil
	} else if err != nil {
		return err // a lock or the database out of time: the next round tries again
	}
	if _, err := dispatch.Record(ctx, tx, c.newDispatch(c.SendAt, state, plan, list)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = $2, updated_at = now() WHERE id = $1`, c.ID, status); err != nil {
		return fmt.Errorf("mark campaign %s %s: %w", c.ID, status, err)
	}
	return nil
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
		WHERE game_id = $1 AND rule IS NOT NULL AND status IN ('scheduled', 'live') ORDER BY id`, g.ID)
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
		WHERE game_id = $1 AND status IN ('scheduled', 'live') ORDER BY id`, g.ID)
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
