package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Errors DecodeEnvelope returns, all wrapping ErrInvalidEnvelope.
var (
	ErrInvalidEnvelope = errors.New("protocol: not a version-1 envelope")
	// ErrUnknownVersion: "v" is not 1. A client ignores such envelopes.
	ErrUnknownVersion = fmt.Errorf("%w: unknown version", ErrInvalidEnvelope)
	// ErrUnknownKind: a kind this version does not know. A later version of the
	// protocol may add kinds, which clients must ignore rather than treat as
	// errors; errors.Is tells them apart.
	ErrUnknownKind = fmt.Errorf("%w: unknown kind", ErrInvalidEnvelope)
)

// envelopeWire is what DecodeEnvelope reads: pointers tell absent from zero.
type envelopeWire struct {
	V         *int            `json:"v"`
	ID        *string         `json:"id"`
	Campaign  *string         `json:"campaign"`
	Kind      *string         `json:"kind"`
	Game      *string         `json:"game"`
	SentAt    *string         `json:"sent_at"`
	StartsAt  *string         `json:"starts_at"`
	ExpiresAt *string         `json:"expires_at"`
	Priority  *int            `json:"priority"`
	Filter    *Rule           `json:"filter"`
	Content   json.RawMessage `json:"content"`
}

// DecodeEnvelope reads one non-empty message payload. It ignores members it does
// not know (later versions may add some) and returns an error wrapping
// ErrInvalidEnvelope for anything that is not a version-1 envelope: malformed JSON
// or not an object; "v" missing or not 1 (ErrUnknownVersion); id, campaign or game
// missing or not 1-128 bytes of [A-Za-z0-9._~:@=-]; kind missing, or not one of
// marquee, notice, ad, kickout (ErrUnknownKind); sent_at or expires_at missing, or
// a time that is not RFC 3339; priority missing or outside 0-9; a filter that
// Rule.UnmarshalJSON refuses; content missing or not a JSON object. A filter of a
// form this version does not know is not an error: it matches nothing. A null
// optional member (starts_at, filter) counts as absent. DecodeEnvelope never
// panics.
func DecodeEnvelope(payload []byte) (Envelope, error) {
	var w envelopeWire
	if err := json.Unmarshal(payload, &w); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrInvalidEnvelope, err)
	}
	if w.V == nil || *w.V != EnvelopeVersion {
		return Envelope{}, ErrUnknownVersion
	}
	e := Envelope{V: EnvelopeVersion, Filter: w.Filter, Content: w.Content}
	var err error
	for _, id := range []struct {
		name string
		v    *string
		dst  *string
	}{{"id", w.ID, &e.ID}, {"campaign", w.Campaign, &e.Campaign}, {"game", w.Game, &e.Game}} {
		if err == nil {
			*id.dst, err = requiredID(id.name, id.v)
		}
	}
	if err == nil {
		switch {
		case w.Kind == nil:
			err = errors.New("kind is missing")
		case !Kind(*w.Kind).Known():
			return Envelope{}, fmt.Errorf("%w %.40q", ErrUnknownKind, *w.Kind)
		default:
			e.Kind = Kind(*w.Kind)
		}
	}
	if err == nil {
		e.SentAt, err = decodeTime("sent_at", w.SentAt, true)
	}
	if err == nil {
		e.StartsAt, err = decodeTime("starts_at", w.StartsAt, false)
	}
	if err == nil {
		e.ExpiresAt, err = decodeTime("expires_at", w.ExpiresAt, true)
	}
	if err == nil {
		switch {
		case w.Priority == nil:
			err = errors.New("priority is missing")
		case *w.Priority < 0 || *w.Priority > 9:
			err = fmt.Errorf("priority %d is outside 0-9", *w.Priority)
		default:
			e.Priority = *w.Priority
		}
	}
	if c := bytes.TrimSpace(w.Content); err == nil && (len(c) == 0 || c[0] != '{') {
		err = errors.New("content is missing or not an object")
	}
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrInvalidEnvelope, err)
	}
	return e, nil
}

func requiredID(name string, v *string) (string, error) {
	if v == nil {
		return "", fmt.Errorf("%s is missing", name)
	}
	if CheckID(*v) != nil {
		return "", fmt.Errorf("%s %.40q is not 1-128 bytes of [A-Za-z0-9._~:@=-]", name, *v)
	}
	return *v, nil
}

func decodeTime(name string, v *string, required bool) (time.Time, error) {
	if v == nil {
		if required {
			return time.Time{}, fmt.Errorf("%s is missing", name)
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, *v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %.40q is not an RFC 3339 time", name, *v)
	}
	return t.UTC(), nil
}
