package kickouts

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/receipts"
)

// PlayerState is what became of a kick-out for one player.
type PlayerState string

// Player states. Pending is rare: the broker did not acknowledge the publish
// while the request lasted, and a replica's recovery publishes it soon.
const (
	PlayerPending      PlayerState = "pending"       // stored, not yet acknowledged by the broker
	PlayerPublished    PlayerState = "published"     // the broker has it; no receipt yet, the ttl runs
	PlayerDelivered    PlayerState = "delivered"     // the client's delivered receipt arrived
	PlayerNotDelivered PlayerState = "not_delivered" // the ttl passed without a receipt
)

// State is what became of a kick-out as a whole.
type State string

// Kick-out states. A kick-out is settled once it is delivered or expired:
// waiting longer changes nothing.
const (
	StatePending   State = "pending"   // not yet acknowledged by the broker
	StatePublished State = "published" // published; receipts may still come
	StateDelivered State = "delivered" // every targeted player confirmed (player kick-outs only)
	StateExpired   State = "expired"   // the ttl passed
)

// PlayerStatus is one player's outcome.
type PlayerStatus struct {
	Player      string      `json:"player"`
	Status      PlayerState `json:"status"`
	DeliveredAt *time.Time  `json:"delivered_at,omitempty"` // when Herald read the receipt
}

// Counts sums the players' states. Targeted is nil for a server kick-out,
// whose players Herald does not know: it counts only those that confirmed.
type Counts struct {
	Targeted     *int `json:"targeted,omitempty"`
	Pending      int  `json:"pending"`
	Published    int  `json:"published"`
	Delivered    int  `json:"delivered"`
	NotDelivered int  `json:"not_delivered"`
}

// Status is a kick-out with the outcome for its players, as the API shows it.
type Status struct {
	ID              uuid.UUID          `json:"id"`
	Game            string             `json:"game"`
	Server          string             `json:"server,omitempty"`
	Reason          string             `json:"reason"`
	Message         protocol.Localized `json:"message,omitempty"`
	ReconnectAfterS *int               `json:"reconnect_after_s,omitempty"`
	TTLS            int                `json:"ttl_s"`
	CreatedAt       time.Time          `json:"created_at"`
	ExpiresAt       time.Time          `json:"expires_at"`
	PublishedAt     *time.Time         `json:"published_at"`
	State           State              `json:"state"`
	Counts          Counts             `json:"counts"`
	// Players holds every targeted player of a player kick-out, in the order
	// of the request; for a server kick-out, the players that confirmed, in the
	// order their receipts arrived (the first MaxPlayers; counts has them all).
	Players []PlayerStatus `json:"players"`
}

// status computes the status of k at now from its delivered receipts
// (deliveredTotal counts them all for a server kick-out, whose list may be cut).
func status(k Kickout, got []receipts.Delivery, deliveredTotal int, now time.Time) (Status, error) {
	c, err := decodeContent(k.Content)
	if err != nil {
		return Status{}, fmt.Errorf("kick-out %s: stored content: %w", k.ID, err)
	}
	st := Status{
		ID: k.ID, Game: k.Game, Server: k.Server, Reason: c.Reason, Message: c.Message, ReconnectAfterS: c.ReconnectAfterS,
		TTLS: int(k.TTL() / time.Second), CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, PublishedAt: k.PublishedAt,
		Players: []PlayerStatus{},
	}
	expired := !now.Before(k.ExpiresAt)
	open := PlayerPending
	if k.PublishedAt != nil {
		open = PlayerPublished
	}
	if expired {
		open = PlayerNotDelivered
	}
	if k.Server != "" {
		for _, d := range got {
			st.Players = append(st.Players, PlayerStatus{Player: d.Player, Status: PlayerDelivered, DeliveredAt: &d.At})
		}
		st.Counts.Delivered = deliveredTotal
	} else {
		at := make(map[string]time.Time, len(got))
		for _, d := range got {
			at[d.Player] = d.At
		}
		targeted := len(k.Players)
		st.Counts.Targeted = &targeted
		st.Players = make([]PlayerStatus, len(k.Players))
		for i, p := range k.Players {
			ps := PlayerStatus{Player: p, Status: open}
			if t, ok := at[p]; ok {
				ps.Status, ps.DeliveredAt = PlayerDelivered, &t
			}
			st.Players[i] = ps
			st.Counts.add(ps.Status)
		}
	}
	switch {
	case k.Server == "" && st.Counts.Delivered == len(k.Players):
		st.State = StateDelivered
	case expired:
		st.State = StateExpired
	case k.PublishedAt != nil:
		st.State = StatePublished
	default:
		st.State = StatePending
	}
	return st, nil
}

func (c *Counts) add(s PlayerState) {
	switch s {
	case PlayerPending:
		c.Pending++
	case PlayerPublished:
		c.Published++
	case PlayerDelivered:
		c.Delivered++
	case PlayerNotDelivered:
		c.NotDelivered++
	}
}
