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
	StateExpired    State = "expired"    // cleared at expires_at
	StateRecalled   State = "recalled"   // cleared by a cancel
)

// Reason is why a dispatch is being cleared.
type Reason string

// Clear reasons.
const (
	ReasonExpire Reason = "expire" // it reached expires_at: it ends as StateExpired
	ReasonRecall Reason = "recall" // its campaign was canceled: it ends as StateRecalled
)

// Dispatch is one send with its delivery counters.
type Dispatch struct {
	ID        uuid.UUID  `json:"id"`
	FireAt    time.Time  `json:"fire_at"`
	State     State      `json:"state"`
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
	Campaign uuid.UUID // the owner; with FireAt, the send's unique key
	FireAt   time.Time
	// State is StatePending for a send, or StateMissed for a fire recorded as
	// missed: nothing is published, and there is nothing to clear.
	State    State
	Template Template
	Plan     segments.Plan
	List     *int64 // the member list a members target of Plan streams
}

// Record records a send in tx, the transaction of its owner, before anything is
// published. The unique (campaign, fire time) key makes a second attempt at the
// same fire, from another replica, a no-op: it reports false then.
func Record(ctx context.Context, tx pgx.Tx, n New) (bool, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return false, fmt.Errorf("new dispatch id: %w", err)
	}
	var clearedAt *time.Time
	if n.State == StateMissed {
		clearedAt = &n.FireAt // nothing to clear
	}
	t := n.Template
	tag, err := tx.Exec(ctx, `
		INSERT INTO dispatches (id, campaign_id, fire_at, state, expires_at, targets, member_list_id, topics_total,
			cleared_at, kind, game_id, msg, content, priority, starts_at, retain)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		ON CONFLICT (campaign_id, fire_at) DO NOTHING`,
		id, n.Campaign, n.FireAt, n.State, t.ExpiresAt, n.Plan.Targets, n.List, n.Plan.Topics, clearedAt,
		t.Kind, t.Game, t.Msg, t.Content, t.Priority, t.StartsAt, t.Retain)
	if err != nil {
		return false, fmt.Errorf("record dispatch of %s: %w", n.Campaign, err)
	}
	return tag.RowsAffected() == 1, nil
}

const dispatchColumns = `id, fire_at, state, sent_at, expires_at, topics_total, acked, retried, failed,
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
	_, err := pgx.ForEachRow(rows, []any{&campaign, &d.ID, &d.FireAt, &d.State, &d.SentAt, &d.ExpiresAt,
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
// checkpoint and clears every topic it published to, the batch in flight
// included; it ends as StateRecalled.
func Recall(ctx context.Context, tx pgx.Tx, campaign uuid.UUID) error {
	if _, err := tx.Exec(ctx, `
		UPDATE dispatches SET clear_reason = $2, updated_at = now()
		WHERE campaign_id = $1 AND cleared_at IS NULL AND clear_reason IS NULL`, campaign, ReasonRecall); err != nil {
		return fmt.Errorf("recall dispatches of %s: %w", campaign, err)
	}
	return nil
}
