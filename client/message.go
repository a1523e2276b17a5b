package client

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldpush/herald/protocol"
)

// Message is a marquee, notice or ad to show (protocol.md sections 3 and 6).
// Exactly one of Marquee, Notice and Ad is set, after Kind.
type Message struct {
	ID         string        // the send's id: pass it to Displayed, Clicked, Dismissed
	Campaign   string        // at most one message per campaign is held
	Kind       protocol.Kind // KindMarquee, KindNotice or KindAd
	Priority   int           // 0-9: higher first, then later SentAt first
	SentAt     time.Time     // when Herald sent it
	StartsAt   time.Time     // zero if it had none; OnMessage is not called before it
	ExpiresAt  time.Time     // OnRemove(RemoveExpired) is called at it
	ReceivedAt time.Time     // when the SDK received it, by Options.Now
	// Test is set on a test send: an operator previewing the campaign on this
	// player's device (POST .../campaigns/{id}/test). Show it as usual; the game
	// may mark it as a test.
	Test    bool
	Marquee *Marquee
	Notice  *Notice
	Ad      *Ad
	Content json.RawMessage // the content as received, for members this version does not know
}

// Localized text by language tag, {"en": "...", "zh-CN": "..."}: choose with
// Client.Text.
type Localized = map[string]string

// Marquee is a scrolling banner: scroll Text Repeat times, pausing IntervalS
// seconds between.
type Marquee struct {
	Text      Localized `json:"text"`
	Repeat    int       `json:"repeat"`
	IntervalS int       `json:"interval_s"`
	Color     string    `json:"color,omitempty"` // #RRGGBB, or empty
}

// Notice is a notice with a title, a body and an optional http(s) link.
type Notice struct {
	Title Localized `json:"title"`
	Body  Localized `json:"body"`
	Link  string    `json:"link,omitempty"`
}

// Ad is a floating window showing ImageURL for DisplayS seconds at Placement
// (center, top, bottom, left, right); a click opens ClickURL.
type Ad struct {
	ImageURL       string    `json:"image_url"`
	ClickURL       string    `json:"click_url,omitempty"`
	Title          Localized `json:"title,omitempty"`
	Placement      string    `json:"placement"`
	DisplayS       int       `json:"display_s"`
	MaxImpressions int       `json:"max_impressions,omitempty"` // 0: no limit
}

// Kickout tells the game to log the account out (protocol.md section 8): show
// Message and do not connect again before ReconnectAfter has passed.
type Kickout struct {
	ID             string
	Reason         string // ban, login_elsewhere, maintenance, server_shutdown, other
	Message        Localized
	ReconnectAfter time.Duration
	SentAt         time.Time
	ReceivedAt     time.Time
}

// RemoveReason says why OnRemove is called.
type RemoveReason string

// Reasons a message shown is removed.
const (
	// RemoveRecalled: Herald removed it (an empty payload) before it expired,
	// because an operator recalled the campaign.
	RemoveRecalled RemoveReason = "recalled"
	// RemoveExpired: its expires_at passed (the SDK removes it by itself, or
	// Herald's empty payload at expiry arrived first).
	RemoveExpired RemoveReason = "expired"
	// RemoveReplaced: a newer send of the same campaign replaces it; OnMessage
	// with the new one follows (at once, or at its StartsAt).
	RemoveReplaced RemoveReason = "replaced"
)

// Stats counts what a session did with what it received. Every message the
// broker delivers is counted once, under Received or under the reason it was
// dropped.
type Stats struct {
	// Received counts messages accepted per kind: they parsed, had not expired,
	// passed their filter and were new. Kick-outs included.
	Received   map[protocol.Kind]int64
	Removals   int64 // messages removed: by an empty payload, or at their expires_at
	Replaced   int64 // messages replaced by a newer send of their campaign
	Superseded int64 // sends older than the one held for their campaign: acknowledged, not shown
	Filtered   int64 // copies whose filter is false for this player
	Duplicates int64 // copies of an id already accepted
	Expired    int64 // copies that arrived at or after their expires_at
	Invalid    int64 // payloads that are not a version-1 envelope or descriptor of this game and topic
	Ignored    int64 // messages of a kind this version does not know
	// ReceiptsSent counts receipts handed to the connection (which holds them
	// while it is down).
	ReceiptsSent int64
	// ReceiptsDropped counts receipts lost because too many waited for the
	// connection to come back (Client only).
	ReceiptsDropped int64
	// Connects counts connections made, the first one included (Client only).
	Connects int64
}

// decodeMessage fills in the content of a marquee, notice or ad.
func decodeMessage(e protocol.Envelope, received time.Time) (Message, error) {
	m := Message{
		ID: e.ID, Campaign: e.Campaign, Kind: e.Kind, Priority: e.Priority,
		SentAt: e.SentAt, StartsAt: e.StartsAt, ExpiresAt: e.ExpiresAt, ReceivedAt: received,
		Content: e.Content, Test: e.Test,
	}
	var dst any
	switch e.Kind {
	case protocol.KindMarquee:
		m.Marquee = new(Marquee)
		dst = m.Marquee
	case protocol.KindNotice:
		m.Notice = new(Notice)
		dst = m.Notice
	case protocol.KindAd:
		m.Ad = new(Ad)
		dst = m.Ad
	default:
		return Message{}, fmt.Errorf("%s is not a message to show", e.Kind)
	}
	if err := json.Unmarshal(e.Content, dst); err != nil {
		return Message{}, fmt.Errorf("%s content: %w", e.Kind, err)
	}
	return m, nil
}

// decodeKickout reads a kick-out's content.
func decodeKickout(e protocol.Envelope, received time.Time) (Kickout, error) {
	var c struct {
		Reason          string    `json:"reason"`
		Message         Localized `json:"message"`
		ReconnectAfterS int64     `json:"reconnect_after_s"`
	}
	if err := json.Unmarshal(e.Content, &c); err != nil {
		return Kickout{}, fmt.Errorf("kickout content: %w", err)
	}
	if c.ReconnectAfterS < 0 || c.ReconnectAfterS > 86400 {
		return Kickout{}, fmt.Errorf("kickout content: reconnect_after_s %d is outside 0-86400", c.ReconnectAfterS)
	}
	return Kickout{
		ID: e.ID, Reason: c.Reason, Message: c.Message, ReconnectAfter: time.Duration(c.ReconnectAfterS) * time.Second,
		SentAt: e.SentAt, ReceivedAt: received,
	}, nil
}
