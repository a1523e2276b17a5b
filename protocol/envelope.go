package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// EnvelopeVersion is the "v" of every envelope Herald encodes and of the
// envelopes this package reads.
const EnvelopeVersion = 1

// DefaultMaxEnvelope is the default limit on an encoded envelope (protocol.md
// section 3: 16 KiB).
const DefaultMaxEnvelope = 16 << 10

// Envelope is one message as Herald publishes it and a client receives it
// (protocol.md section 3).
type Envelope struct {
	V         int             // always EnvelopeVersion once decoded; EncodeEnvelope writes it whatever it holds
	ID        string          // the send's (dispatch's) id, unique per send: the key of de-duplication and receipts
	Campaign  string          // the campaign id (a kick-out's id for kick-outs), the topic's {msg}
	Kind      Kind            // what the client does with it
	Game      string          // the game id
	SentAt    time.Time       // when Herald sent it; latency is measured from here
	StartsAt  time.Time       // zero if absent: show nothing before it
	ExpiresAt time.Time       // drop the message at this time
	Priority  int             // 0-9, higher first
	Filter    *Rule           // nil if absent: the rule the client evaluates; only on targets that are not exact
	Content   json.RawMessage // per kind, a JSON object (from ParseContent)
}

// ErrTooLarge is returned (wrapped) when an encoded envelope exceeds the limit.
var ErrTooLarge = errors.New("envelope too large")

// envelopeOut is an Envelope as Herald writes it, in the member order of
// protocol.md section 3.
type envelopeOut struct {
	V         int             `json:"v"`
	ID        string          `json:"id"`
	Campaign  string          `json:"campaign"`
	Kind      Kind            `json:"kind"`
	Game      string          `json:"game"`
	SentAt    string          `json:"sent_at"`
	StartsAt  string          `json:"starts_at,omitempty"`
	ExpiresAt string          `json:"expires_at"`
	Priority  int             `json:"priority"`
	Filter    *Rule           `json:"filter,omitempty"`
	Content   json.RawMessage `json:"content"`
}

// EncodeEnvelope returns the compact JSON of e with fields in the order
// v, id, campaign, kind, game, sent_at, starts_at, expires_at, priority, filter, content
// ("v":1 always; times RFC 3339 in UTC with at most millisecond precision, truncated,
// without trailing zeros in the fraction), or an error wrapping ErrTooLarge if it is
// longer than max bytes (max <= 0: DefaultMaxEnvelope). Strings are not HTML-escaped
// and content is embedded as is.
//
// EncodeEnvelope also refuses, with a plain error, an envelope no client could
// use: an empty id, campaign or game, an unknown kind, a zero sent_at or
// expires_at, a time outside the years 0000-9999, a priority outside 0-9, a
// filter without exactly one form, or content that is not a JSON object.
func EncodeEnvelope(e Envelope, max int) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxEnvelope
	}
	w := envelopeOut{
		V: EnvelopeVersion, ID: e.ID, Campaign: e.Campaign, Kind: e.Kind, Game: e.Game,
		Priority: e.Priority, Filter: e.Filter, Content: e.Content,
	}
	var err error
	switch {
	case e.ID == "":
		err = errors.New("no dispatch id")
	case e.Campaign == "":
		err = errors.New("no campaign id")
	case e.Game == "":
		err = errors.New("no game")
	case !e.Kind.Known():
		err = fmt.Errorf("unknown kind %q", e.Kind)
	case e.SentAt.IsZero():
		err = errors.New("no sent_at")
	case e.ExpiresAt.IsZero():
		err = errors.New("no expires_at")
	case e.Priority < 0 || e.Priority > 9:
		err = fmt.Errorf("priority %d is not within 0-9", e.Priority)
	case len(bytes.TrimSpace(e.Content)) == 0 || bytes.TrimSpace(e.Content)[0] != '{':
		err = errors.New("content is not a JSON object")
	}
	if err == nil {
		w.SentAt, err = encodeTime(e.SentAt)
	}
	if err == nil && !e.StartsAt.IsZero() {
		w.StartsAt, err = encodeTime(e.StartsAt)
	}
	if err == nil {
		w.ExpiresAt, err = encodeTime(e.ExpiresAt)
	}
	if err != nil {
		return nil, fmt.Errorf("encode envelope %s: %w", e.ID, err)
	}
	b, err := marshalCompact(w)
	if err != nil {
		return nil, fmt.Errorf("encode envelope %s: %w", e.ID, err)
	}
	if len(b) > max {
		return nil, fmt.Errorf("encode envelope %s: %w: %d bytes, the limit is %d", e.ID, ErrTooLarge, len(b), max)
	}
	return b, nil
}

// encodeTime formats t in UTC as RFC 3339, truncated to the millisecond.
func encodeTime(t time.Time) (string, error) {
	t = t.UTC().Truncate(time.Millisecond)
	if y := t.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("time %v is outside the years 0000-9999 of RFC 3339", t)
	}
	return t.Format(time.RFC3339Nano), nil
}

// marshalCompact encodes v as compact JSON without HTML escaping and without the
// encoder's trailing newline.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
