package segments

import (
	"maps"
	"slices"
	"strings"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/protocol"
)

// ValidateRule checks r against a game's tag schema and returns a fielderr.List whose
// fields start at path: an unknown tag (path.tag), "in" on a banded tag or
// "between" on an enumerated one, an undeclared value (path.in[i]), a range that
// overlaps no declared band (path.between), and "members" under an odd number of
// "not"s (path.members): clients cannot evaluate membership, so the member list can
// only ever be a topic cover and never part of a filter.
func ValidateRule(r protocol.Rule, path string, tags map[string]games.Tag) error {
	if tags == nil {
		tags = map[string]games.Tag{} // a game without tags; nil means "skip" below
	}
	var l fielderr.List
	validateRule(&l, r, path, tags, false, 1)
	return l.Err()
}

// validate checks r at path, negated under an odd number of nots. A nil tags
// skips the schema checks (Resolve's use: it needs only the members polarity).
func validateRule(l *fielderr.List, r protocol.Rule, path string, tags map[string]games.Tag, negated bool, depth int) {
	if len(*l) >= maxErrors {
		return
	}
	if depth > MaxDepth {
		l.Add(path, "rules nest at most %d deep", MaxDepth)
		return
	}
	switch r.Form() {
	case protocol.FormNone:
		l.Add(path, "must have exactly one of everyone, server, tag, players, members, and, or, not")
	case protocol.FormMembers:
		if negated {
			l.Add(fielderr.Join(path, "members"), "cannot be negated: clients do not know the member list, so it can only select topics")
		}
	case protocol.FormIn, protocol.FormBetween:
		if tags != nil {
			validateTag(l, path, r, tags)
		}
	case protocol.FormAnd, protocol.FormOr:
		key, rules := "and", r.And
		if r.Or != nil {
			key, rules = "or", r.Or
		}
		for i, sub := range rules {
			validateRule(l, sub, fielderr.Index(fielderr.Join(path, key), i), tags, negated, depth+1)
		}
	case protocol.FormNot:
		validateRule(l, *r.Not, fielderr.Join(path, "not"), tags, !negated, depth+1)
	}
}

func validateTag(l *fielderr.List, path string, r protocol.Rule, tags map[string]games.Tag) {
	t, ok := tags[r.Tag]
	if !ok {
		declared := "no tags"
		if len(tags) > 0 {
			declared = "only " + strings.Join(slices.Sorted(maps.Keys(tags)), ", ")
		}
		l.Add(fielderr.Join(path, "tag"), "unknown tag %q; the game declares %s", r.Tag, declared)
		return
	}
	if r.In != nil {
		if len(t.Bands) > 0 {
			l.Add(fielderr.Join(path, "in"), "tag %q is banded: use \"between\"", r.Tag)
			return
		}
		declared := make(map[string]bool, len(t.Values))
		for _, v := range t.Values {
			declared[v] = true
		}
		for i, v := range r.In {
			if !declared[v] && len(*l) < maxErrors {
				l.Add(fielderr.Index(fielderr.Join(path, "in"), i), "value %q is not declared for tag %q", v, r.Tag)
			}
		}
		return
	}
	if len(t.Bands) == 0 {
		l.Add(fielderr.Join(path, "between"), "tag %q is enumerated: use \"in\"", r.Tag)
		return
	}
	if len(overlapping(t.Bands, *r.Between)) == 0 {
		names := make([]string, len(t.Bands))
		for i, b := range t.Bands {
			names[i] = b.Name()
		}
		l.Add(fielderr.Join(path, "between"), "overlaps no band of tag %q (bands: %s)", r.Tag, strings.Join(names, ", "))
	}
}

// overlapping returns the bands that share at least one value with [lo, hi].
func overlapping(bands []games.Band, rng [2]int64) []games.Band {
	var out []games.Band
	for _, b := range bands {
		if b.Lo() <= rng[1] && rng[0] <= b.Hi() {
			out = append(out, b)
		}
	}
	return out
}
