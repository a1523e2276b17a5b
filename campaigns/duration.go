package campaigns

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/heraldpush/herald/fielderr"
)

// Duration is a length of time that reads and writes itself in JSON as Go's
// duration syntax, shortest form: "2h", "1h30m", "90s" is written "1m30s".
type Duration time.Duration

// Std is d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String is d in its shortest form: 2h0m0s is "2h".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalJSON writes d as a string such as "2h".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// parseDuration reads the duration at field, given as a string such as "2h",
// "90m" or "1h30m", and checks that it is from lo to hi. It adds to errs and
// returns 0 when it is not.
func parseDuration(errs *fielderr.List, field string, s *string, lo, hi time.Duration) Duration {
	if s == nil {
		return 0
	}
	d, err := time.ParseDuration(*s)
	switch {
	case err != nil:
		errs.Add(field, "must be a duration such as 2h, 90m or 1h30m (hours at most: 30 days is 720h)")
	case d < lo || d > hi:
		errs.Add(field, "must be from %s to %s", Duration(lo), Duration(hi))
	default:
		return Duration(d)
	}
	return 0
}
