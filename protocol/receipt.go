package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/heraldpush/herald/fielderr"
)

// Receipt events, in funnel order (protocol.md section 7).
const (
	EventDelivered = "delivered" // it arrived and passed the filter; the SDKs send it on their own
	EventDisplayed = "displayed" // it was shown
	EventClicked   = "clicked"   // the player clicked it
	EventDismissed = "dismissed" // the player closed it
)

// Receipt is what a client publishes to ReceiptTopic:
// {"id":"<envelope id>","e":"<event>","t":<unix ms>}.
type Receipt struct {
	ID    string    // the envelope's id
	Event string    // one of the Event constants
	At    time.Time // when it happened
}

// EncodeReceipt returns the compact JSON of r, with At in Unix milliseconds.
func EncodeReceipt(r Receipt) []byte {
	b := make([]byte, 0, 32+len(r.ID)+len(r.Event))
	b = appendString(append(b, `{"id":`...), r.ID)
	b = appendString(append(b, `,"e":`...), r.Event)
	b = strconv.AppendInt(append(b, `,"t":`...), r.At.UnixMilli(), 10)
	return append(b, '}')
}

// ErrBadReceipt is wrapped by every error ParseReceipt returns.
var ErrBadReceipt = errors.New("bad receipt")

// Bounds of a receipt: receiptMax bytes at most, and a time t in the years
// 1970-9999 (unix ms of 9999-12-31T23:59:59.999Z).
const (
	receiptMax   = 1024
	receiptMaxMs = 253402300799999
)

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
			errs.Add(typeErr.Field, "%s", fielderr.TypeMessage(typeErr))
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
		if err := CheckID(*in.ID); err != nil {
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
