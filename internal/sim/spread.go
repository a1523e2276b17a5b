package sim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// TagSpread is how a tag's values are spread over the simulated players:
// weighted values ("region=eu:60,na:40") or a uniform numeric range
// ("level=1..60").
type TagSpread struct {
	Name    string
	Values  []string // weighted values
	Weights []float64
	Lo, Hi  int64 // a range, when Values is empty
}

// ParseTagSpread reads name=v1:w1,v2:w2 (a weight defaults to 1) or
// name=lo..hi.
func ParseTagSpread(s string) (TagSpread, error) {
	name, spec, ok := strings.Cut(s, "=")
	if !ok || name == "" || spec == "" {
		return TagSpread{}, fmt.Errorf("tag spread %q: want name=v1:w1,v2:w2 or name=lo..hi", s)
	}
	ts := TagSpread{Name: name}
	if lo, hi, ok := strings.Cut(spec, ".."); ok {
		var err1, err2 error
		ts.Lo, err1 = strconv.ParseInt(lo, 10, 64)
		ts.Hi, err2 = strconv.ParseInt(hi, 10, 64)
		if err1 != nil || err2 != nil || ts.Lo > ts.Hi {
			return TagSpread{}, fmt.Errorf("tag spread %q: want a range lo..hi of integers, lo <= hi", s)
		}
		return ts, nil
	}
	for _, part := range strings.Split(spec, ",") {
		value, weight, hasWeight := strings.Cut(part, ":")
		w := 1.0
		if hasWeight {
			var err error
			if w, err = strconv.ParseFloat(weight, 64); err != nil || w <= 0 {
				return TagSpread{}, fmt.Errorf("tag spread %q: weight %q is not a positive number", s, weight)
			}
		}
		if value == "" {
			return TagSpread{}, fmt.Errorf("tag spread %q: an empty value", s)
		}
		ts.Values = append(ts.Values, value)
		ts.Weights = append(ts.Weights, w)
	}
	return ts, nil
}

// draw picks a value for one player.
func (ts TagSpread) draw(r *rand.Rand) string {
	if len(ts.Values) == 0 {
		return strconv.FormatInt(ts.Lo+r.Int64N(ts.Hi-ts.Lo+1), 10)
	}
	total := 0.0
	for _, w := range ts.Weights {
		total += w
	}
	x := r.Float64() * total
	for i, w := range ts.Weights {
		if x < w {
			return ts.Values[i]
		}
		x -= w
	}
	return ts.Values[len(ts.Values)-1]
}

// ParseRamp reads a connect rate, "500/s" or "500" players per second; "0"
// means as fast as possible.
func ParseRamp(s string) (float64, error) {
	n, err := strconv.ParseFloat(strings.TrimSuffix(s, "/s"), 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("ramp %q: want players per second, such as 500/s", s)
	}
	return n, nil
}
