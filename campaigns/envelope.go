package campaigns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/topics"
)

// DefaultMaxEnvelope is the default limit on an encoded envelope (DESIGN 4: 16 KiB).
const DefaultMaxEnvelope = 16 << 10

// EnvelopeVersion is the "v" of every envelope Herald encodes.
const EnvelopeVersion = 1

// Envelope is one publish's payload, the contract with game clients (DESIGN 4).
type Envelope struct {
	ID        string          // dispatch id, unique per send; clients de-duplicate on it
	Campaign  string          // campaign id (a kick-out's id for kick-outs)
	Kind      Kind            // what the client does with it
	Game      string          // game id
	SentAt    time.Time       // when this dispatch was sent
	StartsAt  time.Time       // zero: omitted
	ExpiresAt time.Time       // clients drop the message after it
	Priority  int             // 0-9
	Filter    *protocol.Rule  // nil: omitted; present only when the target is not exact
	Content   json.RawMessage // from ParseContent
}

// ErrTooLarge is returned (wrapped) when an encoded envelope exceeds the limit.
var ErrTooLarge = errors.New("envelope too large")

// envelopeWire is an Envelope as clients receive it, in the member order of DESIGN 4.
type envelopeWire struct {
	V         int             `json:"v"`
	ID        string          `json:"id"`
	Campaign  string          `json:"campaign"`
	Kind      Kind            `json:"kind"`
	Game      string          `json:"game"`
	SentAt    string          `json:"sent_at"`
	StartsAt  string          `json:"starts_at,omitempty"`
	ExpiresAt string          `json:"expires_at"`
	Priority  int             `json:"priority"`
	Filter    *protocol.Rule  `json:"filter,omitempty"`
	Content   json.RawMessage `json:"content"`
}

// Encode returns the compact JSON of e with fields in the order
// v, id, campaign, kind, game, sent_at, starts_at, expires_at, priority, filter, content
// ("v":1 always; times RFC 3339 in UTC with at most millisecond precision, truncated,
// without trailing zeros in the fraction), or an error wrapping ErrTooLarge if it is
// longer than max bytes (max <= 0: DefaultMaxEnvelope). Strings are not HTML-escaped
// and content is embedded as is.
//
// Encode also refuses, with a plain error, an envelope no client could use: an empty
// id, campaign or game, an unknown kind, a zero sent_at or expires_at, a time outside
// the years 0000-9999, a priority outside 0-9, a filter without exactly one form, or
// content that is not a JSON object.
func Encode(e Envelope, max int) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxEnvelope
	}
	w := envelopeWire{
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
	case e.Kind != KindMarquee && e.Kind != KindNotice && e.Kind != KindAd && e.Kind != KindKickout:
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
		w.SentAt, err = envelopeTime(e.SentAt)
	}
	if err == nil && !e.StartsAt.IsZero() {
		w.StartsAt, err = envelopeTime(e.StartsAt)
	}
	if err == nil {
		w.ExpiresAt, err = envelopeTime(e.ExpiresAt)
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

// envelopeTime formats t in UTC as RFC 3339, truncated to the millisecond.
func envelopeTime(t time.Time) (string, error) {
	t = t.UTC().Truncate(time.Millisecond)
	if y := t.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("time %v is outside the years 0000-9999 of RFC 3339", t)
	}
	return t.Format(time.RFC3339Nano), nil
}

// Receipt events, in funnel order.
const (
	EventDelivered = "delivered"
	EventDisplayed = "displayed"
	EventClicked   = "clicked"
	EventDismissed = "dismissed"
)

// ErrBadReceipt is wrapped by every error ParseReceipt returns.
var ErrBadReceipt = errors.New("bad receipt")

// Bounds of a receipt: receiptMax bytes at most, and a time t in the years
// 1970-9999 (unix ms of 9999-12-31T23:59:59.999Z).
const (
	receiptMax   = 1024
	receiptMaxMs = 253402300799999
)

// Receipt is what a client publishes to {prefix}/{game}/receipts/{player}:
// {"id":"<dispatch id>","e":"delivered|displayed|clicked|dismissed","t":<unix ms>}.
type Receipt struct {
	ID    string    // dispatch id, from the envelope's id
	Event string    // one of EventDelivered, EventDisplayed, EventClicked, EventDismissed
	At    time.Time // when the client saw the event, in UTC, to the millisecond
}

// ParseReceipt decodes and validates a receipt payload. It returns an error wrapping
// ErrBadReceipt, and a fielderr.List naming the fields "payload", "id", "e" or "t",
// for an empty, over-long (more than 1 KiB) or malformed payload, an id that is
// missing or not a 1-128 byte id of [A-Za-z0-9._~:@=-], an unknown event, or a
// time t that is missing, not a number, not after the epoch or after the year 9999.
// Unknown members are ignored, so that newer clients may add some. A t with a
// fraction is truncated to the millisecond. ParseReceipt never panics.
func ParseReceipt(payload []byte) (Receipt, error) {
	var errs fielderr.List
	if len(bytes.TrimSpace(payload)) == 0 {
		errs.Add("payload", "is empty")
		return Receipt{}, receiptError(errs)
	}
	if len(payload) > receiptMax {
		errs.Add("payload", "is %d bytes, more than %d", len(payload), receiptMax)
		return Receipt{}, receiptError(errs)
	}
	var in struct {
		ID *string          `json:"id"`
		E  *string          `json:"e"`
		T  *json.RawMessage `json:"t"`
	}
	if err := json.Unmarshal(payload, &in); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			errs.Add(typeErr.Field, "must be a string, not %s", typeErr.Value)
		} else {
			errs.Add("payload", "is not a JSON object: %v", err)
		}
		return Receipt{}, receiptError(errs)
	}
	var r Receipt
	switch {
	case in.ID == nil:
		errs.Add("id", "is required")
	default:
		if err := topics.CheckID(*in.ID); err != nil {
			errs.Add("id", "%v", err)
		}
		r.ID = *in.ID
	}
	switch {
	case in.E == nil:
		errs.Add("e", "is required")
	case *in.E != EventDelivered && *in.E != EventDisplayed && *in.E != EventClicked && *in.E != EventDismissed:
		errs.Add("e", "%.40q is not one of delivered, displayed, clicked, dismissed", *in.E)
	default:
		r.Event = *in.E
	}
	if ms, ok := receiptMillis(&errs, in.T); ok {
		r.At = time.UnixMilli(ms).UTC()
	}
	if len(errs) > 0 {
		return Receipt{}, receiptError(errs)
	}
	return r, nil
}

// receiptMillis reads t, a positive number of unix milliseconds.
func receiptMillis(errs *fielderr.List, raw *json.RawMessage) (int64, bool) {
	if raw == nil || string(*raw) == "null" {
		errs.Add("t", "is required")
		return 0, false
	}
	s := string(*raw)
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Not a plain integer: a number with a fraction or an exponent is accepted
		// when it is in range, and truncated to the millisecond.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || s[0] == '"' || math.IsNaN(f) || math.IsInf(f, 0) {
			errs.Add("t", "must be a number of unix milliseconds")
			return 0, false
		}
		if f < 1 || f > receiptMaxMs {
			errs.Add("t", "must be unix milliseconds after 1970 and before the year 10000")
			return 0, false
		}
		ms = int64(f)
	}
	if ms <= 0 || ms > receiptMaxMs {
		errs.Add("t", "must be unix milliseconds after 1970 and before the year 10000")
		return 0, false
	}
	return ms, true
}

func receiptError(errs fielderr.List) error {
	return fmt.Errorf("%w: %w", ErrBadReceipt, errs)
}
