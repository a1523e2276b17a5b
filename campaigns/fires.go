package campaigns

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/schedule"
	"github.com/heraldpush/herald/segments"
)

// maxCatchUp bounds the missed fires of one campaign recorded in one
// transaction (an every-minute campaign after a day without a leader has
// 1,440): the next transaction records the rest.
const maxCatchUp = 100

// batchResult is what one transaction of fires did.
type batchResult struct {
	fired  int
	failed map[uuid.UUID]error // campaigns whose fire could not be decided
	done   bool                // no campaign was due
	err    error               // the transaction failed
}

// batch is one transaction of fires: the due campaigns it claimed decide
// their fires (reading what they need, each read that may wait for a lock in
// a savepoint of its own), then all fires are written in a few statements.
type batch struct {
	tx    pgx.Tx
	now   time.Time
	grace time.Duration
	games map[string]gameRead
	// busy holds, per campaign and zone, the fire time of a send still pending
	// or publishing; live whether any send is still out (not cleared).
	busy     map[dispatch.Key]time.Time
	live     map[dispatch.Key]bool
	rules    map[uuid.UUID]audience // segment audiences read in this batch
	sends    []dispatch.New
	outcomes []outcome
	fanout   *dispatch.Worker  // handed the small sends (dispatch.RecordAll)
	handoff  *dispatch.Handoff // what write handed off, started once the batch committed
}

// gameRead is a game as read for a batch, or why it could not be.
type gameRead struct {
	game games.Game
	err  error
}

// audience is a segment's rule as read for a send, or why it could not be:
// invalid (err, recorded with the fire) or unreadable now (readErr, the fire
// waits for a later round).
type audience struct {
	rule    protocol.Rule
	list    *int64
	members int64
	err     error
	readErr error
}

// outcome is what a campaign becomes after its fires: its status and next
// fire.
type outcome struct {
	id     uuid.UUID
	status Status
	sendAt time.Time
}

// fireBatch fires the earliest due campaigns not in skip, up to fireBatch, in
// one transaction. A campaign whose fire cannot be decided (a lock it waited
// for too long, the database) is left out and reported; the others are
// recorded.
func (s *Store) fireBatch(ctx context.Context, now time.Time, grace time.Duration, skip []uuid.UUID) batchResult {
	ctx, cancel := context.WithTimeout(ctx, fireTimeout)
	defer cancel()
	r := batchResult{failed: map[uuid.UUID]error{}}
	fired := 0
	var handoff *dispatch.Handoff
	r.err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = '%dms'`, fireLockWait.Milliseconds())); err != nil {
			return fmt.Errorf("bound lock waits: %w", err)
		}
		rows, _ := tx.Query(ctx, `
			SELECT `+campaignColumns+` FROM campaigns
			WHERE status = 'scheduled' AND send_at <= $1 AND NOT (id = ANY($2))
			ORDER BY send_at LIMIT $3 FOR UPDATE SKIP LOCKED`, now, skip, fireBatch)
		list, err := pgx.CollectRows(rows, scanCampaign)
		if err != nil {
			return fmt.Errorf("find due campaigns: %w", err)
		}
		r.done = len(list) == 0
		if r.done {
			return nil
		}
		b := &batch{tx: tx, now: now, grace: grace, games: map[string]gameRead{}, rules: map[uuid.UUID]audience{},
			fanout: s.fanout}
		if err := b.loadBusy(ctx, list); err != nil {
			return err
		}
		for _, c := range list {
			if err := b.decide(ctx, c); err != nil {
				r.failed[c.ID] = err // left for a later round
				continue
			}
			fired++
		}
		err = b.write(ctx)
		handoff = b.handoff
		return err
	})
	handoff.Settle(r.err)
	if r.err != nil {
		r.fired, r.failed = 0, nil
	} else {
		r.fired = fired
	}
	return r
}

// savepoint runs f in a savepoint of b's transaction, so that a lock it waits
// for too long fails f alone.
func (b *batch) savepoint(ctx context.Context, f func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, b.tx, f)
}

// game returns the game with id, read (or found held up) once per batch and
// share-locked against a change of its tag schema.
func (b *batch) game(ctx context.Context, id string) (games.Game, error) {
	if g, ok := b.games[id]; ok {
		return g.game, g.err
	}
	var g gameRead
	g.err = b.savepoint(ctx, func(sp pgx.Tx) error {
		var err error
		g.game, err = games.GetShared(ctx, sp, id)
		return err
	})
	b.games[id] = g
	return g.game, g.err
}

// rule returns the rule of audience a of game g, a segment's read once per
// batch.
func (b *batch) rule(ctx context.Context, g games.Game, a Audience) (audience, error) {
	if a.SegmentID == nil {
		rule, list, members, err := audienceRule(ctx, b.tx, g, a) // an inline rule reads nothing
		return audience{rule: rule, list: list, members: members, err: err}, nil
	}
	if au, ok := b.rules[*a.SegmentID]; ok {
		return au, au.readErr
	}
	var au audience
	au.readErr = b.savepoint(ctx, func(sp pgx.Tx) error {
		var err error
		au.rule, au.list, au.members, err = audienceRule(ctx, sp, g, a)
		if _, invalid := fielderr.As(err); invalid {
			au.err = err // recorded with the fire, not retried
			return nil
		}
		return err
	})
	b.rules[*a.SegmentID] = au
	return au, au.readErr
}

// loadBusy reads which recurring campaigns of list have sends still out.
func (b *batch) loadBusy(ctx context.Context, list []Campaign) error {
	ids := make([]uuid.UUID, 0, len(list))
	for _, c := range list {
		if c.Schedule.Recurring() {
			ids = append(ids, c.ID)
		}
	}
	var err error
	b.busy, b.live, err = dispatch.Outstanding(ctx, b.tx, ids)
	return err
}

// decide works out the fires of due campaign c and what it becomes, to be
// written with the batch. It returns an error, and decides nothing, when what
// it needs cannot be read now.
func (b *batch) decide(ctx context.Context, c Campaign) error {
	g, err := b.game(ctx, c.GameID)
	if err != nil {
		return err
	}
	grace := b.grace
	if c.MisfireGrace > 0 {
		grace = c.MisfireGrace.Std()
	}
	if c.Schedule.Recurring() {
		return b.decideRecurring(ctx, c, g, grace)
	}
	f := c.newDispatch(c.SendAt, "")
	switch {
	case b.now.Sub(c.SendAt) > grace:
		f.State, f.Note = dispatch.StateMissed, lateNote(c.SendAt, b.now, grace)
	case !c.ExpiresAt.After(b.now):
		f.State, f.Note = dispatch.StateMissed, "it expired before it could be sent"
	default:
		if err := b.plan(ctx, &f, g, c, nil); err != nil {
			return err
		}
	}
	status := StatusLive
	if f.State == dispatch.StateMissed {
		status = StatusMissed // its only fire: nothing of it was sent
	}
	b.sends = append(b.sends, f)
	b.outcomes = append(b.outcomes, outcome{id: c.ID, status: status, sendAt: c.SendAt})
	return nil
}

// plan sets the plan of send f of c (in zone z of a campaign in players'
// time); an audience that no longer resolves (a schema change) makes the fire
// missed rather than retried for ever.
func (b *batch) plan(ctx context.Context, f *dispatch.New, g games.Game, c Campaign, z *schedule.Zone) error {
	au, err := b.rule(ctx, g, c.Audience)
	if err != nil {
		return err
	}
	if err = au.err; err == nil {
		if z != nil {
			f.Plan, err = inZones(au.rule, g, []schedule.Zone{*z})
		} else {
			f.Plan, err = resolveRule(au.rule, g, au.members)
			f.List = au.list
		}
	}
	if _, invalid := fielderr.As(err); invalid {
		f.State, f.Note, f.Plan, f.List = dispatch.StateMissed, fmt.Sprintf("the audience no longer resolves: %v", err), segments.Plan{}, nil
		return nil
	}
	return err
}

// decideRecurring works out the fires of recurring campaign c of game g due
// at its send_at, one per zone firing then, and its next fire; fires that
// follow and are missed too (more than grace late) are recorded with them.
func (b *batch) decideRecurring(ctx context.Context, c Campaign, g games.Game, grace time.Duration) error {
	cr, zones, err := recurrence(c.Schedule, g)
	if _, invalid := fielderr.As(err); invalid {
		// The game no longer declares the zones it fires in (CheckZones refuses
		// that while it is scheduled): nothing can fire again.
		b.outcomes = append(b.outcomes, outcome{id: c.ID, status: StatusCompleted, sendAt: c.SendAt})
		return nil
	} else if err != nil {
		return err
	}
	var sends []dispatch.New
	at := c.SendAt
	for range maxCatchUp {
		for _, z := range firing(cr, zones, at) {
			f, err := b.decideZone(ctx, c, g, cr, z, at, grace)
			if err != nil {
				return err
			}
			sends = append(sends, f)
		}
		next, _, ok := cr.NextIn(at, zones)
		if !ok {
			b.sends = append(b.sends, sends...)
			b.outcomes = append(b.outcomes, outcome{id: c.ID, status: StatusCompleted, sendAt: at})
			return nil
		}
		if at = next; b.now.Sub(at) <= grace {
			break // not due yet, or due within the grace: a round of its own sends it
		}
	}
	b.sends = append(b.sends, sends...)
	b.outcomes = append(b.outcomes, outcome{id: c.ID, status: StatusScheduled, sendAt: at})
	return nil
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

// decideZone decides the fire at `at` of recurring campaign c in zone z: sent
// (pending), missed (too late, or expired before it could go), or skipped
// (the previous send of the campaign in that zone is still publishing).
func (b *batch) decideZone(ctx context.Context, c Campaign, g games.Game, cr schedule.Cron, z schedule.Zone,
	at time.Time, grace time.Duration) (dispatch.New, error) {
	var zone *schedule.Zone
	name := ""
	if cr.PerPlayer() {
		name, zone = z.Name, &z
	}
	f := c.newDispatch(at, name)
	key := dispatch.Key{Campaign: c.ID, Zone: name}
	prev, busy := b.busy[key]
	switch {
	case b.now.Sub(at) > grace:
		f.State, f.Note = dispatch.StateMissed, lateNote(at, b.now, grace)
	case !f.Template.ExpiresAt.After(b.now):
		f.State, f.Note = dispatch.StateMissed, "its ttl ran out before it could be sent"
	case busy && prev.Before(at):
		f.State, f.Note = dispatch.StateSkipped, fmt.Sprintf("the previous send (fired at %s) was still publishing: "+
			"sends of one campaign never overlap, and a fire is skipped rather than queued behind a slow one",
			prev.UTC().Format(time.RFC3339))
	default:
		if err := b.plan(ctx, &f, g, c, zone); err != nil {
			return dispatch.New{}, err
		}
	}
	if f.State == dispatch.StatePending {
		b.busy[key], b.live[key] = at, true // a later fire caught up in this batch overlaps it
	}
	return f, nil
}

// lateNote says why a fire at `at`, reached at now, was missed.
func lateNote(at, now time.Time, grace time.Duration) string {
	return fmt.Sprintf("due at %s and reached %s late, past the misfire grace of %s: no scheduler ran in time",
		at.UTC().Format(time.RFC3339), Duration(now.Sub(at).Truncate(time.Second)), Duration(grace))
}

// write moves the batch's campaigns on and records their sends, in a few
// statements. A fire recorded already (another replica's, or a fire time seen
// twice) is not recorded again. A send recorded now takes the place of the
// earlier sends of its campaign and zone still out (dispatch.Replace). The
// small sends are handed to this replica's workers (b.handoff, started once
// the batch committed).
func (b *batch) write(ctx context.Context) error {
	// The campaigns move on first, so that the sends handed off to this
	// replica's workers (stamped sent when recorded) start right after.
	if len(b.outcomes) > 0 {
		ids := make([]uuid.UUID, len(b.outcomes))
		statuses := make([]string, len(b.outcomes))
		sendAts := make([]time.Time, len(b.outcomes))
		for i, o := range b.outcomes {
			ids[i], statuses[i], sendAts[i] = o.id, string(o.status), o.sendAt
		}
		if _, err := b.tx.Exec(ctx, `
			UPDATE campaigns c SET status = v.status, send_at = v.send_at, updated_at = now()
			FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS v(id, status, send_at)
			WHERE c.id = v.id`, ids, statuses, sendAts); err != nil {
			return fmt.Errorf("move campaigns to their next fire: %w", err)
		}
	}
	if len(b.sends) == 0 {
		return nil
	}
	recorded, handoff, err := dispatch.RecordAll(ctx, b.tx, b.sends, b.fanout)
	if err != nil {
		return err
	}
	b.handoff = handoff
	var replacing []dispatch.New
	for _, n := range recorded {
		if n.State == dispatch.StatePending && b.live[dispatch.Key{Campaign: n.Campaign, Zone: n.Zone}] {
			replacing = append(replacing, n)
		}
	}
	return dispatch.Replace(ctx, b.tx, replacing)
}
