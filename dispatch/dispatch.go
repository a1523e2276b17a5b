// Package dispatch owns the fan-out. A dispatch is one send: a row holding
// everything its publishes need (the frozen delivery plan, the envelope
// template and whether its messages are retained), recorded by its owner
// (campaigns) in the owner's own transaction before anything is published.
// Workers on every replica claim dispatches under a lease, publish them a batch
// of topics at a time, checkpoint in Postgres after every batch the broker
// acknowledged (so that a dispatch resumes where it stopped on any replica),
// re-publish what the broker lost (Guard), and clear the retained topics again
// at expiry or recall. It never reads its owner's tables: the owner learns that
// its last dispatch was cleared through WorkerConfig.OnCleared.
package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/postgres"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

// State is where one send stands.
type State string

// Dispatch states.
const (
	StatePending    State = "pending"    // recorded, nothing published yet
	StatePublishing State = "publishing" // fan-out under way (or waiting for the broker)
	StatePublished  State = "published"  // every target acknowledged by the broker
	StateMissed     State = "missed"     // its fire came while Herald was down, past the grace period
	StateSkipped    State = "skipped"    // not sent: the previous send of its campaign was still publishing
	StateExpired    State = "expired"    // cleared at expires_at
	StateRecalled   State = "recalled"   // cleared by a cancel
	StateReplaced   State = "replaced"   // cleared because the next fire of its campaign took its place
	// StateRecalling is how a dispatch whose campaign was canceled reads until
	// its retained messages are cleared (then it is StateRecalled). It is never
	// stored: the worker keeps the state it was in, which says how far the
	// clearing must reach.
	StateRecalling State = "recalling"
)

// Reason is why a dispatch is being cleared.
type Reason string

// Clear reasons.
const (
	ReasonExpire  Reason = "expire"  // it reached expires_at: it ends as StateExpired
	ReasonRecall  Reason = "recall"  // its campaign was canceled: it ends as StateRecalled
	ReasonReplace Reason = "replace" // the next fire of its campaign takes its topics: it ends as StateReplaced
)

// Dispatch is one send with its delivery counters.
type Dispatch struct {
	ID     uuid.UUID `json:"id"`
	FireAt time.Time `json:"fire_at"`
	// Zone is the players' zone a fire in each player's own time went to.
	Zone  string `json:"zone,omitempty"`
	State State  `json:"state"`
	// Note says why a fire was missed or skipped.
	Note      string     `json:"note,omitempty"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
	ExpiresAt time.Time  `json:"expires_at"`
	// Topics is how many topics the send publishes to; Acked how many the broker
	// acknowledged; Retried how many publishes were sent again (timeouts,
	// reconnects); Failed how many were given up on.
	Topics     int64      `json:"topics"`
	Acked      int64      `json:"acked"`
	Retried    int64      `json:"retried"`
	Failed     int64      `json:"failed"`
	FirstAckAt *time.Time `json:"first_ack_at,omitempty"`
	LastAckAt  *time.Time `json:"last_ack_at,omitempty"`
	// Cleared counts the topics whose retained message was removed at expiry or
	// recall; ClearedAt is when that finished.
	Cleared   int64      `json:"cleared"`
	ClearedAt *time.Time `json:"cleared_at,omitempty"`
	// Restores counts the times the broker lost the dispatch's retained messages
	// while it was live and a restore was requested. RestoreRequestedAt is set
	// while the latest restore is due or under way; Restored counts the topics
	// it re-published so far, RestoredAt is when it finished. A restore stops
	// when the dispatch is recalled or expires, and clearing covers what it
	// re-published.
	Restores           int64      `json:"restores"`
	RestoreRequestedAt *time.Time `json:"restore_requested_at,omitempty"`
	Restored           int64      `json:"restored"`
	RestoredAt         *time.Time `json:"restored_at,omitempty"`
}

// Template is what every envelope of a dispatch holds but its id, sent_at and
// filter, frozen when the dispatch is recorded.
type Template struct {
	Kind      protocol.Kind
	Game      string
	Msg       string // the topics' {msg} and the envelopes' campaign: the campaign id
	Content   json.RawMessage
	Priority  int
	StartsAt  *time.Time
	ExpiresAt time.Time
	// Retain says whether the messages are retained, so that players who
	// connect later get them too; retained messages are cleared at expiry or
	// recall and restored after the broker lost them.
	Retain bool
}

// Envelope is the envelope of dispatch id, sent at sentAt, for a target with
// filter.
func (t Template) Envelope(id uuid.UUID, sentAt time.Time, filter *protocol.Rule) protocol.Envelope {
	e := protocol.Envelope{
		ID: id.String(), Campaign: t.Msg, Kind: t.Kind, Game: t.Game,
		SentAt: sentAt, ExpiresAt: t.ExpiresAt, Priority: t.Priority, Filter: filter, Content: t.Content,
	}
	if t.StartsAt != nil {
		e.StartsAt = *t.StartsAt
	}
	return e
}

// New is a send to record.
type New struct {
	Campaign uuid.UUID // the owner; with FireAt and Zone, the send's unique key
	FireAt   time.Time
	Zone     string // the players' zone of a fire in each player's time; "" otherwise
	// State is StatePending for a send, or StateMissed or StateSkipped for a
	// fire recorded as not sent (Note says why): nothing is published, and
	// there is nothing to clear.
	State    State
	Note     string
	Template Template
	Plan     segments.Plan
	List     *int64 // the member list a members target of Plan streams
}

// Record records a send in tx, the transaction of its owner, before anything is
// published. The unique (campaign, fire time, zone) key makes a second attempt
// at the same fire, from another replica, a no-op: it reports false then.
// local is as for RecordAll.
func Record(ctx context.Context, tx pgx.Tx, n New, local *Worker) (bool, *Handoff, error) {
	recorded, h, err := RecordAll(ctx, tx, []New{n}, local)
	return len(recorded) == 1, h, err
}

// RecordAll records sends in tx as Record does, in one statement, and returns
// those recorded (a fire recorded already is not).
//
// With local, this replica's workers (nil: none), the small sends that can
// start at once (no earlier send of their campaign and zone still out) are
// leased to them as they are recorded, as far as they have hand-off slots
// free: they are publishing from then on, sent_at being the time of the
// recording. The caller settles the Handoff once tx ended: it starts them
// if tx committed (see handoff.go). The other pending sends wait for a
// claim. (The check for an earlier send cannot see the rows of this same
// statement: the scheduler records at most one pending send per campaign and
// zone in one batch, later fires caught up with it being skipped or missed.)
func RecordAll(ctx context.Context, tx pgx.Tx, all []New, local *Worker) ([]New, *Handoff, error) {
	n := len(all)
	ids, campaigns := make([]uuid.UUID, n), make([]uuid.UUID, n)
	fires, expires, cleared := make([]time.Time, n), make([]time.Time, n), make([]*time.Time, n)
	zones, states, notes, targets := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	lists, topics := make([]*int64, n), make([]int64, n)
	kinds, games, msgs, contents := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	priorities, starts, retains := make([]int32, n), make([]*time.Time, n), make([]bool, n)
	handOff := make([]bool, n)
	byKey := make(map[Key]int, n)
	offer := func(d New) bool { return local != nil && d.State == StatePending && local.small(d.Plan) }
	reserved, kept := 0, 0 // hand-off slots taken, and kept by the sends handed off
	if local != nil {
		want := 0
		for _, d := range all {
			if offer(d) {
				want++
			}
		}
		reserved = local.reserve(want)
		defer func() { local.unreserve(reserved - kept) }()
	}
	offered := 0
	for i, d := range all {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, nil, fmt.Errorf("new dispatch id: %w", err)
		}
		t := d.Plan.Targets
		if t == nil {
			t = []segments.Target{}
		}
		js, err := json.Marshal(t)
		if err != nil {
			return nil, nil, fmt.Errorf("encode the targets of a dispatch of %s: %w", d.Campaign, err)
		}
		tpl := d.Template
		ids[i], campaigns[i], fires[i], expires[i] = id, d.Campaign, d.FireAt, tpl.ExpiresAt
		zones[i], states[i], notes[i], targets[i] = d.Zone, string(d.State), d.Note, string(js)
		lists[i], topics[i] = d.List, d.Plan.Topics
		if d.State == StateMissed || d.State == StateSkipped {
			cleared[i] = &all[i].FireAt // nothing to clear
		}
		kinds[i], games[i], msgs[i], contents[i] = string(tpl.Kind), tpl.Game, tpl.Msg, string(tpl.Content)
		priorities[i], starts[i], retains[i] = int32(tpl.Priority), tpl.StartsAt, tpl.Retain
		if offered < reserved && offer(d) {
			handOff[i] = true
			offered++
		}
		// Postgres keeps microseconds (pgx truncates when it encodes): the key
		// must match the fire time the row hands back.
		byKey[Key{d.Campaign, d.Zone, d.FireAt.Truncate(time.Microsecond).UnixNano()}] = i
	}
	var replica, leaseFor *string // NULL without local: then no send is handed off
	if local != nil {
		l := local.lease()
		replica, leaseFor = &l.replica, new(l.interval())
	}
	// A send handed off starts now unless an earlier send of its campaign and
	// zone is still out: it must wait for that one to be cleared (see claim).
	rows, _ := tx.Query(ctx, `
		INSERT INTO dispatches (id, campaign_id, fire_at, zone, state, note, expires_at, targets, member_list_id,
			topics_total, cleared_at, kind, game_id, msg, content, priority, starts_at, retain,
			sent_at, leased_by, lease_until)
		SELECT id, campaign, fire, zone, CASE WHEN h.now THEN 'publishing' ELSE state END, nullif(note, ''), expires,
			targets::jsonb, list, topics, cleared, kind, game, msg, content::jsonb, priority, starts, retain,
			CASE WHEN h.now THEN clock_timestamp() END, CASE WHEN h.now THEN $20::text END,
			CASE WHEN h.now THEN clock_timestamp() + $21::interval END
		FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
			$8::text[], $9::int8[], $10::int8[], $11::timestamptz[], $12::text[], $13::text[], $14::text[], $15::text[],
			$16::int4[], $17::timestamptz[], $18::bool[], $19::bool[])
			AS v(id, campaign, fire, zone, state, note, expires, targets, list, topics, cleared,
				kind, game, msg, content, priority, starts, retain, hand_off)
		CROSS JOIN LATERAL (SELECT v.hand_off AND NOT EXISTS (
			SELECT 1 FROM dispatches p
			WHERE p.campaign_id = v.campaign AND p.zone = v.zone AND p.fire_at < v.fire AND p.cleared_at IS NULL)) AS h(now)
		ON CONFLICT (campaign_id, fire_at, zone) DO NOTHING
		RETURNING campaign_id, zone, fire_at, id, sent_at, leased_by IS NOT NULL, content, expires_at, starts_at`,
		ids, campaigns, fires, zones, states, notes, expires, targets, lists, topics, cleared,
		kinds, games, msgs, contents, priorities, starts, retains, handOff, replica, leaseFor)
	var recorded []New
	h := &Handoff{w: local}
	var k Key
	var at time.Time
	var id uuid.UUID
	var sentAt *time.Time
	var leased bool
	var stored Template // as a claim reads it back, so that a restore publishes the same bytes
	waiting := false    // a pending send not handed off was recorded
	_, err := pgx.ForEachRow(rows, []any{&k.Campaign, &k.Zone, &at, &id, &sentAt, &leased,
		&stored.Content, &stored.ExpiresAt, &stored.StartsAt}, func() error {
		k.fireAt = at.UnixNano()
		d := all[byKey[k]]
		recorded = append(recorded, d)
		switch {
		case leased:
			h.jobs = append(h.jobs, handedOff(d, id, *sentAt, stored))
		case d.State == StatePending:
			waiting = true
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("record dispatches: %w", err)
	}
	if waiting {
		if err := notifyWorkers(ctx, tx); err != nil {
			return nil, nil, err
		}
	}
	kept = len(h.jobs)
	return recorded, h, nil
}

// handedOff is the job of send d, recorded as id and leased to this
// replica's workers at sentAt, with the parts of its template Postgres
// normalised (the content's key order, the times' precision) as stored.
func handedOff(d New, id uuid.UUID, sentAt time.Time, stored Template) *job {
	tpl := d.Template
	tpl.Content, tpl.ExpiresAt, tpl.StartsAt = slices.Clone(stored.Content), stored.ExpiresAt, nil
	if stored.StartsAt != nil {
		startsAt := *stored.StartsAt
		tpl.StartsAt = &startsAt
	}
	return &job{id: id, campaign: d.Campaign, template: tpl, sentAt: sentAt,
		targets: d.Plan.Targets, list: d.List, state: StatePublishing}
}

// Key names the sends of one campaign in one zone ("" for a campaign in one
// zone), and with a fire time one send.
type Key struct {
	Campaign uuid.UUID
	Zone     string
	fireAt   int64
}

// Outstanding reads, in tx, which of campaigns have sends still out (not
// cleared, nor asked to be), per zone: live holds them all, busy the fire time
// of the latest still pending or publishing.
func Outstanding(ctx context.Context, tx pgx.Tx, campaigns []uuid.UUID) (busy map[Key]time.Time, live map[Key]bool, err error) {
	busy, live = map[Key]time.Time{}, map[Key]bool{}
	if len(campaigns) == 0 {
		return busy, live, nil
	}
	rows, _ := tx.Query(ctx, `
		SELECT campaign_id, zone, max(fire_at) FILTER (WHERE state IN ('pending', 'publishing')) FROM dispatches
		WHERE campaign_id = ANY($1) AND clear_reason IS NULL AND cleared_at IS NULL
		GROUP BY campaign_id, zone`, campaigns)
	var k Key
	var at *time.Time
	_, err = pgx.ForEachRow(rows, []any{&k.Campaign, &k.Zone, &at}, func() error {
		live[k] = true
		if at != nil {
			busy[k] = *at
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("look for sends still out: %w", err)
	}
	return busy, live, nil
}

// Replace marks for clearing, in tx, the sends still out of each campaign and
// zone of sends (just recorded) that fired before it: the new send takes
// their retained topics (its campaign's {msg}). The workers start a send only
// once the earlier sends of its campaign and zone are cleared, so that
// clearing an old send never removes the new one; they end as StateReplaced.
func Replace(ctx context.Context, tx pgx.Tx, sends []New) error {
	if len(sends) == 0 {
		return nil
	}
	campaigns, zones, fires := make([]uuid.UUID, len(sends)), make([]string, len(sends)), make([]time.Time, len(sends))
	for i, n := range sends {
		campaigns[i], zones[i], fires[i] = n.Campaign, n.Zone, n.FireAt
	}
	if _, err := tx.Exec(ctx, `
		UPDATE dispatches d SET clear_reason = $4, updated_at = now()
		FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS v(campaign, zone, fire)
		WHERE d.campaign_id = ANY($1) AND d.campaign_id = v.campaign AND d.zone = v.zone AND d.fire_at < v.fire
			AND d.clear_reason IS NULL AND d.cleared_at IS NULL`, campaigns, zones, fires, ReasonReplace); err != nil {
		return fmt.Errorf("replace the previous sends: %w", err)
	}
	return nil
}

// dispatchColumns are a Dispatch's, its state as people read it: recalling
// from the cancel until the clearing is done.
const dispatchColumns = `id, fire_at, zone,
	CASE WHEN clear_reason = 'recall' AND cleared_at IS NULL THEN 'recalling' ELSE state END,
	coalesce(note, ''), sent_at, expires_at, topics_total, acked, retried, failed,
	first_ack_at, last_ack_at, cleared, cleared_at, restores, restore_requested_at, restored, restored_at`

// Of returns the dispatches of a campaign, oldest first.
func Of(ctx context.Context, db postgres.DBTX, campaign uuid.UUID) ([]Dispatch, error) {
	rows, _ := db.Query(ctx, `SELECT `+dispatchColumns+` FROM dispatches WHERE campaign_id = $1 ORDER BY fire_at, id`, campaign)
	ds, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Dispatch])
	if err != nil {
		return nil, fmt.Errorf("load dispatches of %s: %w", campaign, err)
	}
	return ds, nil
}

// OfEach returns the dispatches of every campaign in campaigns, oldest first,
// in one query. A campaign without any has none in the map.
func OfEach(ctx context.Context, db postgres.DBTX, campaigns []uuid.UUID) (map[uuid.UUID][]Dispatch, error) {
	rows, _ := db.Query(ctx, `SELECT campaign_id, `+dispatchColumns+` FROM dispatches
		WHERE campaign_id = ANY($1) ORDER BY fire_at, id`, campaigns)
	out := make(map[uuid.UUID][]Dispatch, len(campaigns))
	var campaign uuid.UUID
	var d Dispatch
	_, err := pgx.ForEachRow(rows, []any{&campaign, &d.ID, &d.FireAt, &d.Zone, &d.State, &d.Note, &d.SentAt, &d.ExpiresAt,
		&d.Topics, &d.Acked, &d.Retried, &d.Failed, &d.FirstAckAt, &d.LastAckAt, &d.Cleared, &d.ClearedAt,
		&d.Restores, &d.RestoreRequestedAt, &d.Restored, &d.RestoredAt}, func() error {
		out[campaign] = append(out[campaign], d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load dispatches: %w", err)
	}
	return out, nil
}

// Recall asks, in tx, for every dispatch of campaign that is not cleared to be
// cleared at once. The worker holding one sees the request at its next
// checkpoint and clears every topic it published to, the batches in flight
// included; it ends as StateRecalled.
func Recall(ctx context.Context, tx pgx.Tx, campaign uuid.UUID) error {
	if _, err := tx.Exec(ctx, `
		UPDATE dispatches SET clear_reason = $2, updated_at = now()
		WHERE campaign_id = $1 AND cleared_at IS NULL AND clear_reason IS NULL`, campaign, ReasonRecall); err != nil {
		return fmt.Errorf("recall dispatches of %s: %w", campaign, err)
	}
	return notifyWorkers(ctx, tx)
}
