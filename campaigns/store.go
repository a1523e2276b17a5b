package campaigns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/postgres"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/schedule"
	"github.com/heraldpush/herald/segments"
)

// Errors returned by Store methods.
var (
	ErrNotFound = errors.New("campaign not found")
	// ErrSent is returned when a change needs a campaign that was not sent yet.
	ErrSent = errors.New("campaign was already sent")
	// ErrFinished is returned when canceling a campaign that already expired.
	ErrFinished = errors.New("campaign already finished")
)

// Store keeps campaigns in Postgres.
type Store struct {
	db          *pgxpool.Pool
	maxEnvelope int
	now         func() time.Time
	fanout      *dispatch.Worker // this replica's, handed the small sends it records; nil: none
}

// NewStore returns a Store over db refusing content whose envelope would exceed
// maxEnvelope bytes (0: protocol.DefaultMaxEnvelope). Its clock is time.Now.
func NewStore(db *pgxpool.Pool, maxEnvelope int) *Store {
	if maxEnvelope <= 0 {
		maxEnvelope = protocol.DefaultMaxEnvelope
	}
	return &Store{db: db, maxEnvelope: maxEnvelope, now: time.Now}
}

// WithClock returns a copy of s that takes the time from now: when a campaign
// without a schedule is sent, whether an {"at"} is in the past, and its
// default expiry. Tests move time with it instead of waiting.
func (s *Store) WithClock(now func() time.Time) *Store {
	c := *s
	c.now = now
	return &c
}

// HandingOffTo returns a copy of s that hands the small sends it records to
// w, this replica's fan-out workers, which start them the moment the
// recording commits instead of waiting for a claim (dispatch.RecordAll).
func (s *Store) HandingOffTo(w *dispatch.Worker) *Store {
	c := *s
	c.fanout = w
	return &c
}

// Preview is what a dry run returns: the campaign as it would be stored, its
// plan, the envelope its first target would receive, and whether the game asks
// to confirm its audience (with the number that would).
type Preview struct {
	Campaign Campaign        `json:"campaign"`
	Plan     segments.Plan   `json:"plan"`
	Envelope json.RawMessage `json:"envelope"`
	Confirm  Confirmation    `json:"confirm"`
}

// Preview validates in for game and returns what Create would store and send,
// storing nothing: the campaign, its plan, and the envelope its first target
// would receive. It returns games.ErrNotFound or a fielderr.List.
func (s *Store) Preview(ctx context.Context, game string, in Input) (Preview, error) {
	var preview Preview
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		now := s.now()
		p, err := s.prepareNew(ctx, tx, game, in, now)
		if err != nil {
			return err
		}
		c := p.campaign
		c.Dispatches, c.CreatedAt, c.UpdatedAt = []dispatch.Dispatch{}, now, now
		c.NextFires = c.nextFires(p.game)
		preview = Preview{Campaign: c, Plan: p.plan, Envelope: p.envelope, Confirm: p.confirm}
		return nil
	})
	return preview, err
}

// Create validates in for game and stores the campaign. Without a schedule it is
// sent at once: its first dispatch is recorded in the same transaction, so it can
// never be lost between the two. It returns games.ErrNotFound, a
// fielderr.List, or an *UnconfirmedError when the game asks to confirm the
// audience and in.ConfirmAudience does not.
func (s *Store) Create(ctx context.Context, game string, in Input) (Campaign, error) {
	var created Campaign
	var handoff *dispatch.Handoff
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		p, err := s.prepareNew(ctx, tx, game, in, s.now())
		if err != nil {
			return err
		}
		if err := p.checkConfirmed(p.game, in.ConfirmAudience); err != nil {
			return err
		}
		c := p.campaign
		if err := insert(ctx, tx, c); err != nil {
			return err
		}
		if handoff, err = p.sendIfDue(ctx, tx, s.fanout); err != nil {
			return err
		}
		if err := notifySchedule(ctx, tx); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Entry{Action: "campaign.create", Game: game, ObjectType: "campaign",
			ObjectID: c.ID.String(), Detail: map[string]any{"kind": c.Kind, "name": c.Name}}); err != nil {
			return err
		}
		created, err = get(ctx, tx, game, c.ID, "")
		return err
	})
	handoff.Settle(err)
	return created, err
}

// prepareNew is prepare for a new campaign of game, with a new id.
func (s *Store) prepareNew(ctx context.Context, tx pgx.Tx, game string, in Input, now time.Time) (prepared, error) {
	g, err := games.GetShared(ctx, tx, game)
	if err != nil {
		return prepared{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return prepared{}, fmt.Errorf("new campaign id: %w", err)
	}
	return s.prepare(ctx, tx, g, in, id, now)
}

// prepared is a validated campaign with the plan its audience resolves to now.
type prepared struct {
	game     games.Game
	campaign Campaign
	plan     segments.Plan
	list     *int64          // the member list a members target reads
	envelope json.RawMessage // the first target's
	confirm  Confirmation    // what the game asks to confirm the plan
}

// prepare validates in as campaign id of game g at time now, resolves its
// audience, checks the size of every envelope, and sets its plan summary and
// status. It returns a fielderr.List for anything invalid.
func (s *Store) prepare(ctx context.Context, tx pgx.Tx, g games.Game, in Input, id uuid.UUID, now time.Time) (prepared, error) {
	c, err := in.build(g, now)
	if err != nil {
		return prepared{}, err
	}
	plan, list, err := planOf(ctx, tx, g, c)
	if err != nil {
		return prepared{}, err
	}
	c.ID = id
	envelope, err := s.checkSize(c.sendAt(c.SendAt), plan, now)
	if err != nil {
		return prepared{}, err
	}
	c.Plan = summarize(plan)
	c.Status = StatusScheduled
	if !c.SendAt.After(now) {
		c.Status = StatusLive
	}
	return prepared{game: g, campaign: c, plan: plan, list: list, envelope: envelope, confirm: confirmation(g, plan)}, nil
}

// summarize is the part of plan a campaign keeps.
func summarize(plan segments.Plan) PlanSummary {
	return PlanSummary{Exact: plan.Exact, Topics: plan.Topics, Players: plan.Players, PlayersNote: plan.PlayersNote}
}

// sendIfDue records the first dispatch of a campaign sent at once, in the
// transaction that stores it, so that it can never be lost between the two;
// a small one is handed to fanout (dispatch.RecordAll).
func (p prepared) sendIfDue(ctx context.Context, tx pgx.Tx, fanout *dispatch.Worker) (*dispatch.Handoff, error) {
	if p.campaign.Status != StatusLive {
		return nil, nil
	}
	send := p.campaign.newDispatch(p.campaign.SendAt, "")
	send.Plan, send.List = p.plan, p.list
	_, h, err := dispatch.Record(ctx, tx, send, fanout)
	return h, err
}

// resolve returns the delivery plan of a campaign's audience as it stands in
// tx and the member list its members target reads (nil without one), with
// its refusals named as fields of the campaign.
func resolve(ctx context.Context, tx pgx.Tx, g games.Game, a Audience) (segments.Plan, *int64, error) {
	plan, list, err := segments.ResolveAudience(ctx, tx, g, segments.Audience(a), "audience")
	switch {
	case errors.Is(err, segments.ErrNotFound):
		return segments.Plan{}, nil, fielderr.New("audience.segment_id", "no such segment in this game")
	case errors.Is(err, segments.ErrTooComplex):
		return segments.Plan{}, nil, fielderr.New("audience", "%v", err)
	}
	return plan, list, err
}

// audienceRule returns the rule of a campaign's audience as it stands in tx,
// with the member list a segment's members target reads and its size, its
// refusals named as resolve names them.
func audienceRule(ctx context.Context, tx pgx.Tx, g games.Game, a Audience) (protocol.Rule, *int64, int64, error) {
	rule, list, members, err := segments.AudienceRule(ctx, tx, g, segments.Audience(a), "audience")
	if errors.Is(err, segments.ErrNotFound) {
		return protocol.Rule{}, nil, 0, fielderr.New("audience.segment_id", "no such segment in this game")
	}
	return rule, list, members, err
}

// resolveRule returns the delivery plan of rule for game g, a members target
// reaching members players, its refusals named as resolve names them.
func resolveRule(rule protocol.Rule, g games.Game, members int64) (segments.Plan, error) {
	plan, err := segments.Resolve(rule, g.Tags, members)
	if errors.Is(err, segments.ErrTooComplex) {
		return segments.Plan{}, fielderr.New("audience", "%v", err)
	}
	return plan, err
}

// planOf returns the delivery plan of campaign c of game g: its audience's,
// or for a campaign in players' time, its audience narrowed to the tag topic
// of each of the game's zones.
func planOf(ctx context.Context, tx pgx.Tx, g games.Game, c Campaign) (segments.Plan, *int64, error) {
	if !c.Schedule.Recurring() || c.Schedule.Timezone != schedule.PlayerZone {
		return resolve(ctx, tx, g, c.Audience)
	}
	rule, _, _, err := audienceRule(ctx, tx, g, c.Audience)
	if err != nil {
		return segments.Plan{}, nil, err
	}
	plan, err := inZones(rule, g, g.PlayerZones())
	return plan, nil, err
}

// inZones is the plan of rule narrowed to the tag topic of each of zones.
func inZones(rule protocol.Rule, g games.Game, zones []schedule.Zone) (segments.Plan, error) {
	values := make([]string, len(zones))
	for i, z := range zones {
		values[i] = schedule.TagValue(z.Name)
	}
	return segments.InTagValues(rule, g.ZoneTag, values, "audience")
}

// checkSize encodes the envelope of every target of plan (they differ only in
// their filter) and refuses content that makes any of them exceed the limit,
// before anything is stored. It returns the first target's envelope.
func (s *Store) checkSize(c Campaign, plan segments.Plan, now time.Time) (json.RawMessage, error) {
	filters := []*protocol.Rule{nil} // an empty plan still gets its content checked
	if len(plan.Targets) > 0 {
		filters = filters[:0]
		for _, t := range plan.Targets {
			filters = append(filters, t.Filter)
		}
	}
	var first json.RawMessage
	for _, filter := range filters {
		e, err := protocol.EncodeEnvelope(c.template().Envelope(uuid.Max, now, filter), s.maxEnvelope)
		if errors.Is(err, protocol.ErrTooLarge) {
			return nil, fielderr.New("content", "the envelope would be over the limit of %d bytes: %v", s.maxEnvelope, err)
		}
		if err != nil {
			return nil, fmt.Errorf("encode envelope: %w", err)
		}
		if first == nil {
			first = e
		}
	}
	return first, nil
}

// template is the envelope template of c's dispatches: campaigns send retained
// messages, each campaign on topics of its own ({msg} is its id).
func (c Campaign) template() dispatch.Template {
	return dispatch.Template{Kind: c.Kind, Game: c.GameID, Msg: c.ID.String(), Content: c.Content,
		Priority: c.Priority, StartsAt: c.StartsAt, ExpiresAt: c.ExpiresAt, Retain: true}
}

// newDispatch is the send of c fired at fireAt (in zone, "" but for a
// campaign in players' time), pending; the caller sets its plan, or its state
// and a note when the fire is not sent.
func (c Campaign) newDispatch(fireAt time.Time, zone string) dispatch.New {
	return dispatch.New{Campaign: c.ID, FireAt: fireAt, Zone: zone, State: dispatch.StatePending,
		Template: c.sendAt(fireAt).template()}
}

const campaignColumns = `id, game_id, kind, name, segment_id, rule, content, priority, starts_at, expires_at,
	ttl_ms, misfire_grace_ms, schedule, send_at, status, plan_exact, plan_topics, plan_players,
	coalesce(plan_players_note, ''), created_at, updated_at, archived_at`

func insert(ctx context.Context, tx pgx.Tx, c Campaign) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO campaigns (id, game_id, kind, name, segment_id, rule, content, priority, starts_at, expires_at,
			ttl_ms, misfire_grace_ms, schedule, send_at, status, plan_exact, plan_topics, plan_players, plan_players_note)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, nullif($19, ''))`,
		c.ID, c.GameID, c.Kind, c.Name, c.Audience.SegmentID, c.Audience.Rule, c.Content, c.Priority, c.StartsAt,
		nullTime(c.ExpiresAt), millis(c.TTL), millis(c.MisfireGrace), c.Schedule, c.SendAt, c.Status, c.Plan.Exact,
		c.Plan.Topics, c.Plan.Players, c.Plan.PlayersNote)
	if err != nil {
		return fmt.Errorf("insert campaign: %w", err)
	}
	return nil
}

// nullTime stores a zero time as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// millis stores a zero duration as NULL, any other in milliseconds.
func millis(d Duration) *int64 {
	if d == 0 {
		return nil
	}
	ms := d.Std().Milliseconds()
	return &ms
}

func scanCampaign(row pgx.CollectableRow) (Campaign, error) {
	var c Campaign
	var expires *time.Time
	var ttl, grace *int64
	err := row.Scan(&c.ID, &c.GameID, &c.Kind, &c.Name, &c.Audience.SegmentID, &c.Audience.Rule, &c.Content,
		&c.Priority, &c.StartsAt, &expires, &ttl, &grace, &c.Schedule, &c.SendAt, &c.Status, &c.Plan.Exact,
		&c.Plan.Topics, &c.Plan.Players, &c.Plan.PlayersNote, &c.CreatedAt, &c.UpdatedAt, &c.ArchivedAt)
	if expires != nil {
		c.ExpiresAt = *expires
	}
	if ttl != nil {
		c.TTL = Duration(time.Duration(*ttl) * time.Millisecond)
	}
	if grace != nil {
		c.MisfireGrace = Duration(time.Duration(*grace) * time.Millisecond)
	}
	return c, err
}

// get loads campaign id of game with its dispatches; lock is "" or a locking clause.
func get(ctx context.Context, q postgres.DBTX, game string, id uuid.UUID, lock string) (Campaign, error) {
	rows, _ := q.Query(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE game_id = $1 AND id = $2 `+lock, game, id)
	c, err := pgx.CollectExactlyOneRow(rows, scanCampaign)
	if errors.Is(err, pgx.ErrNoRows) {
		return Campaign{}, ErrNotFound
	}
	if err != nil {
		return Campaign{}, fmt.Errorf("load campaign %s: %w", id, err)
	}
	if c.Dispatches, err = dispatch.Of(ctx, q, c.ID); err != nil {
		return Campaign{}, err
	}
	list := []Campaign{c}
	if err := setNextFires(ctx, q, game, list); err != nil {
		return Campaign{}, err
	}
	return list[0], nil
}

// Get returns campaign id of game with its dispatches, or ErrNotFound.
func (s *Store) Get(ctx context.Context, game string, id uuid.UUID) (Campaign, error) {
	return get(ctx, s.db, game, id, "")
}

// Filter narrows a campaign list; empty fields match everything. Archived
// (deleted) campaigns are left out unless Archived is set.
type Filter struct {
	Status   Status
	Kind     protocol.Kind
	Archived bool
}

// List returns up to limit campaigns of game matching f, with their dispatches,
// newest last, after the campaign after (uuid.Nil: from the first).
func (s *Store) List(ctx context.Context, game string, f Filter, after uuid.UUID, limit int) ([]Campaign, bool, error) {
	rows, _ := s.db.Query(ctx, `
		SELECT `+campaignColumns+` FROM campaigns
		WHERE game_id = $1 AND id > $2 AND ($3 = '' OR status = $3) AND ($4 = '' OR kind = $4)
			AND ($6 OR archived_at IS NULL)
		ORDER BY id LIMIT $5`, game, after, string(f.Status), string(f.Kind), limit+1, f.Archived)
	list, err := pgx.CollectRows(rows, scanCampaign)
	if err != nil {
		return nil, false, fmt.Errorf("list campaigns of %s: %w", game, err)
	}
	list, more := postgres.TrimPage(list, limit)
	ids := make([]uuid.UUID, len(list))
	for i := range list {
		ids[i] = list[i].ID
	}
	dispatches, err := dispatch.OfEach(ctx, s.db, ids)
	if err != nil {
		return nil, false, err
	}
	for i := range list {
		list[i].Dispatches = dispatches[list[i].ID]
		if list[i].Dispatches == nil {
			list[i].Dispatches = []dispatch.Dispatch{}
		}
	}
	if err := setNextFires(ctx, s.db, game, list); err != nil {
		return nil, false, err
	}
	return list, more, nil
}
