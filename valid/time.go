package valid

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// The range of every timestamp Herald accepts, in UTC: from MinTime up to, not
// including, MaxTime (so the years 2000 to 2100). Beyond it, times overflow what
// encoding/json writes (years past 9999 after converting to UTC), what Postgres
// and pgx store alike (year 0 and before), or what any campaign or key needs.
var (
	MinTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTime = time.Date(2101, 1, 1, 0, 0, 0, 0, time.UTC)
)

// TimeRule says what a valid timestamp is, for error messages.
var TimeRule = fmt.Sprintf("must be an RFC 3339 time such as 2026-11-25T10:00:00Z, from %s to %s UTC",
	MinTime.Format(time.DateOnly), MaxTime.Add(-time.Nanosecond).Format(time.DateOnly))

// CheckTime returns an error when t, converted to UTC, is outside [MinTime, MaxTime).
func CheckTime(t time.Time) error {
	if t.Before(MinTime) || !t.Before(MaxTime) {
		return fmt.Errorf("must be from %s to %s UTC", MinTime.Format(time.RFC3339), MaxTime.Add(-time.Second).Format(time.RFC3339))
	}
	return nil
}

// ParseTime reads an RFC 3339 time within the range CheckTime accepts, such as a
// query parameter. Its error says what a valid time is.
func ParseTime(s string) (time.Time, error) {
	var t time.Time
	if err := t.UnmarshalText([]byte(s)); err != nil { // RFC 3339, strictly, as encoding/json reads times
		return time.Time{}, fmt.Errorf("%s", TimeRule)
	}
	if err := CheckTime(t); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// Time is a timestamp read from JSON: an RFC 3339 string within the range
// CheckTime accepts. It writes itself as time.Time does.
//
// When it cannot read a value, its UnmarshalJSON returns a
// *json.UnmarshalTypeError of type TimeType, because that is the one error
// encoding/json completes with the path of the field ("schedule.at"). Its Value
// is "string" for a string that is not a valid time, or the JSON kind of another
// value ("number", "object", ...); see TimeRule for what to tell the caller.
type Time struct{ time.Time }

// TimeType is the reflect.Type of Time, as found in the decoding errors of Time.
var TimeType = reflect.TypeFor[Time]()

// UnmarshalJSON reads an RFC 3339 string within range.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // as encoding/json does: a null leaves the value alone
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: TimeType}
	}
	parsed, err := ParseTime(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: "string", Type: TimeType}
	}
	t.Time = parsed
	return nil
}

// Std returns t as a *time.Time (nil for nil).
func (t *Time) Std() *time.Time {
	if t == nil {
		return nil
	}
	std := t.Time
	return &std
}

// Of returns t as a *Time (nil for nil).
func Of(t *time.Time) *Time {
	if t == nil {
		return nil
	}
	return &Time{*t}
}

// jsonKind names the kind of the JSON value b as encoding/json does in its errors.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "value"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case '"':
		return "string"
	}
	return "number"
}
