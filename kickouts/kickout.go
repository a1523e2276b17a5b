// Package kickouts logs players out: a kick-out is stored, published at once
// to the players' (or a server's) topics with QoS 1 and never retained, and
// confirmed by each client's delivered receipt. Callers read, or wait for, the
// per-player outcome; a waiting request wakes when a receipt lands on any
// replica (Hub), and a kick-out whose publish was cut off by a crash is
// published again by any replica while its ttl lasts (Recovery).
package kickouts

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/protocol"
)

// Limits of a kick-out request.
const (
	MaxPlayers = 10_000
	DefaultTTL = 60 * time.Second
	MaxTTL     = 600 * time.Second
	// MaxWait is the longest a request may wait for the clients' receipts.
	MaxWait = 30 * time.Second
)

// ErrNotFound is returned for a kick-out that does not exist in the game.
var ErrNotFound = errors.New("kick-out not found")

// Input is a kick-out request: players or server, and the content the client
// shows (protocol.md section 8).
type Input struct {
	Players         []string        `json:"players"`
	Server          *string         `json:"server"`
	Reason          *string         `json:"reason"`
	Message         json.RawMessage `json:"message"`
	ReconnectAfterS *int            `json:"reconnect_after_s"`
	TTLS            *int            `json:"ttl_s"`
}

// Kickout is a stored kick-out.
type Kickout struct {
	ID          uuid.UUID
	Game        string
	Players     []string // the targeted players; nil for a server kick-out
	Server      string   // the targeted server; empty for a player kick-out
	Content     json.RawMessage
	CreatedAt   time.Time // the envelope's sent_at
	ExpiresAt   time.Time // CreatedAt + ttl
	PublishedAt *time.Time
}

// content is the canonical kick-out content, as protocol.ParseContent writes it.
type content struct {
	Reason          string             `json:"reason"`
	Message         protocol.Localized `json:"message,omitempty"`
	ReconnectAfterS *int               `json:"reconnect_after_s,omitempty"`
}

// build validates in for a game whose default locale is defaultLocale and
// returns the kick-out it asks for (without id and times) and its ttl. Players
// named twice are targeted once. It returns a fielderr.List naming the request's
// fields.
func (in Input) build(game, defaultLocale string) (Kickout, time.Duration, error) {
	var errs fielderr.List
	k := Kickout{Game: game}
	switch {
	case in.Players != nil && in.Server != nil:
		errs.Add("server", "give players or server, not both")
	case in.Server != nil:
		if err := protocol.CheckID(*in.Server); err != nil {
			errs.Add("server", "%v", err)
		}
		k.Server = *in.Server
	case len(in.Players) == 0:
		errs.Add("players", "give players (1 to %d ids) or server", MaxPlayers)
	case len(in.Players) > MaxPlayers:
		errs.Add("players", "holds %d ids, more than %d", len(in.Players), MaxPlayers)
	default:
		seen := make(map[string]bool, len(in.Players))
		for i, p := range in.Players {
			if err := protocol.CheckID(p); err != nil {
				errs.Add(fielderr.Index("players", i), "%v", err)
			} else if !seen[p] {
				seen[p] = true
				k.Players = append(k.Players, p)
			}
		}
	}
	ttl := DefaultTTL
	if in.TTLS != nil {
		ttl = time.Duration(*in.TTLS) * time.Second
		if ttl < time.Second || ttl > MaxTTL {
			errs.Add("ttl_s", "must be within 1-%d seconds", int(MaxTTL.Seconds()))
		}
	}
	c, err := parseContent(in, defaultLocale)
	if l, ok := fielderr.As(err); ok {
		errs = append(errs, l...)
	} else if err != nil {
		return Kickout{}, 0, err
	}
	k.Content = c
	return k, ttl, errs.Err()
}

// parseContent validates reason, message and reconnect_after_s with the
// protocol's kick-out content rules, naming the request's fields (reason, not
// content.reason).
func parseContent(in Input, defaultLocale string) (json.RawMessage, error) {
	raw := map[string]any{}
	if in.Reason != nil {
		raw["reason"] = *in.Reason
	}
	if len(in.Message) > 0 {
		raw["message"] = in.Message
	}
	if in.ReconnectAfterS != nil {
		raw["reconnect_after_s"] = *in.ReconnectAfterS
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	c, err := protocol.ParseContent(protocol.KindKickout, b, defaultLocale)
	if l, ok := fielderr.As(err); ok {
		out := make(fielderr.List, len(l))
		for i, e := range l {
			e.Field = strings.TrimPrefix(e.Field, "content.")
			out[i] = e
		}
		return nil, out
	}
	return c, err
}

// decodeContent reads stored canonical content.
func decodeContent(raw json.RawMessage) (content, error) {
	var c content
	err := json.Unmarshal(raw, &c)
	return c, err
}

// TTL is how long the kick-out's envelope lives.
func (k Kickout) TTL() time.Duration { return k.ExpiresAt.Sub(k.CreatedAt) }

// tooLarge names the message as the cause of an envelope over the limit: the
// only part of a kick-out whose size the caller chooses.
func tooLarge(err error) error {
	if errors.Is(err, protocol.ErrTooLarge) {
		return fielderr.New("message", "is too long: %v", err)
	}
	return err
}
