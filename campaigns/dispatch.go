package campaigns

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// DispatchState is where one send stands (DESIGN 6).
type DispatchState string

// Dispatch states.
const (
	DispatchPending    DispatchState = "pending"    // recorded, nothing published yet
	DispatchPublishing DispatchState = "publishing" // fan-out under way (or waiting for the broker)
	DispatchPublished  DispatchState = "published"  // every target acknowledged by the broker
	DispatchMissed     DispatchState = "missed"     // its fire came while Herald was down, past the grace period
	DispatchSkipped    DispatchState = "skipped"    // not sent: the previous send of the campaign was still publishing
	DispatchExpired    DispatchState = "expired"    // cleared at expires_at
	DispatchRecalled   DispatchState = "recalled"   // cleared by a cancel
	DispatchReplaced   DispatchState = "replaced"   // cleared because the next fire of its campaign took its place
)

// Dispatch is one send of a campaign with its delivery counters.
type Dispatch struct {
	ID     uuid.UUID `json:"id"`
	FireAt time.Time `json:"fire_at"`
	// Zone is the players' zone a fire in each player's own time went to.
	Zone  string        `json:"zone,omitempty"`
	State DispatchState `json:"state"`
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

const dispatchColumns = `id, fire_at, zone, state, coalesce(note, ''), sent_at, expires_at, topics_total, acked, retried, failed,
	first_ack_at, last_ack_at, cleared, cleared_at, restores, restore_requested_at, restored, restored_at`

// dispatchesOf returns the dispatches of a campaign, oldest first.
func dispatchesOf(ctx context.Context, q querier, campaign uuid.UUID) ([]Dispatch, error) {
	rows, _ := q.Query(ctx, `SELECT `+dispatchColumns+` FROM dispatches WHERE campaign_id = $1 ORDER BY fire_at, id`, campaign)
	ds, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Dispatch])
	if err != nil {
		return nil, fmt.Errorf("load dispatches of %s: %w", campaign, err)
	}
	return ds, nil
}

// attachDispatches loads the dispatches of every campaign in list in one query.
func attachDispatches(ctx context.Context, q querier, list []Campaign) error {
	ids := make([]uuid.UUID, len(list))
	byID := make(map[uuid.UUID]*Campaign, len(list))
	for i := range list {
		ids[i] = list[i].ID
		list[i].Dispatches = []Dispatch{}
		byID[list[i].ID] = &list[i]
	}
	rows, _ := q.Query(ctx, `SELECT campaign_id, `+dispatchColumns+` FROM dispatches
		WHERE campaign_id = ANY($1) ORDER BY fire_at, id`, ids)
	var campaign uuid.UUID
	var d Dispatch
	_, err := pgx.ForEachRow(rows, []any{&campaign, &d.ID, &d.FireAt, &d.Zone, &d.State, &d.Note, &d.SentAt, &d.ExpiresAt,
		&d.Topics, &d.Acked, &d.Retried, &d.Failed, &d.FirstAckAt, &d.LastAckAt, &d.Cleared, &d.ClearedAt,
		&d.Restores, &d.RestoreRequestedAt, &d.Restored, &d.RestoredAt}, func() error {
		c := byID[campaign]
		c.Dispatches = append(c.Dispatches, d)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load dispatches: %w", err)
	}
	return nil
}
