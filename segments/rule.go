package segments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/topics"
)

// Limits of one rule. They keep parsing, validation and resolution cheap, and they
// bound the filter a client has to evaluate, since filters are made of rule nodes.
const (
	// MaxDepth is how deeply rule objects may nest; the outermost rule is depth 1.
	MaxDepth = 16
	// MaxNodes is how many rule objects one rule may hold, counting every
	// and/or/not and every atom.
	MaxNodes = 256
	// MaxPlayers bounds a "players" list. It is meant for small explicit lists;
	// large audiences belong in the segment's uploaded member list ("members").
	MaxPlayers = 1000
	// MaxListLen bounds a "server" or "in" list.
	MaxListLen = 1000
	// maxErrors bounds how many field errors ParseRule or Validate report, so
	// that a large malformed rule does not turn into a huge 422.
	maxErrors = 100
)

// Rule is one node of a segment rule. Exactly one form is set:
//
//	{"everyone": true}                    Everyone
//	{"server": ["s1", "s2"]}              Server
//	{"tag": "region", "in": ["eu"]}       Tag and In
//	{"tag": "level", "between": [30, 39]} Tag and Between (inclusive)
//	{"players": ["p1", "p2"]}             Players
//	{"members": true}                     Members: the segment's uploaded member list
//	{"and": [...]} {"or": [...]} {"not": rule}
//
// Build rules with ParseRule (or json.Unmarshal, which calls it); a Rule's JSON
// form is the same shape, so rules round-trip through Postgres jsonb and reach
// clients unchanged as an envelope's filter.
type Rule struct {
	Everyone bool
	Server   []string
	Tag      string
	In       []string
	Between  *[2]int64
	Players  []string
	Members  bool
	And      []Rule
	Or       []Rule
	Not      *Rule
}

type form int

const (
	formNone form = iota
	formEveryone
	formServer
	formIn
	formBetween
	formPlayers
	formMembers
	formAnd
	formOr
	formNot
)

// forms lists the forms set in r; a parsed rule has exactly one.
func (r Rule) forms() []form {
	var fs []form
	add := func(set bool, f form) {
		if set {
			fs = append(fs, f)
		}
	}
	add(r.Everyone, formEveryone)
	add(r.Server != nil, formServer)
	add(r.Tag != "" && r.In != nil, formIn)
	add(r.Tag != "" && r.Between != nil, formBetween)
	add(r.Players != nil, formPlayers)
	add(r.Members, formMembers)
	add(r.And != nil, formAnd)
	add(r.Or != nil, formOr)
	add(r.Not != nil, formNot)
	return fs
}

// form is the single form of r, or formNone when r has none or several.
func (r Rule) form() form {
	if fs := r.forms(); len(fs) == 1 {
		return fs[0]
	}
	return formNone
}

// UsesMembers reports whether a "members" atom appears anywhere in r, that is
// whether resolving r needs the segment's uploaded member list.
func (r Rule) UsesMembers() bool {
	if r.Members {
		return true
	}
	if r.Not != nil && r.Not.UsesMembers() {
		return true
	}
	return slices.ContainsFunc(r.And, Rule.UsesMembers) || slices.ContainsFunc(r.Or, Rule.UsesMembers)
}

// MarshalJSON writes r as compact canonical JSON of the same shape ParseRule
// reads, keeping list order. It fails on a Rule without exactly one form.
func (r Rule) MarshalJSON() ([]byte, error) {
	return r.appendJSON(nil)
}

// UnmarshalJSON parses data with ParseRule(data, "rule"), so a rule read back from
// the database or a request is checked like any other; errors are a fielderr.List.
func (r *Rule) UnmarshalJSON(data []byte) error {
	p, err := ParseRule(data, "rule")
	if err != nil {
		return err
	}
	*r = p
	return nil
}

var errNoForm = errors.New("segments: rule must have exactly one form")

func (r Rule) appendJSON(b []byte) ([]byte, error) {
	var err error
	switch r.form() {
	case formEveryone:
		b = append(b, `{"everyone":true}`...)
	case formMembers:
		b = append(b, `{"members":true}`...)
	case formServer:
		b = appendStrings(append(b, `{"server":`...), r.Server)
		b = append(b, '}')
	case formPlayers:
		b = appendStrings(append(b, `{"players":`...), r.Players)
		b = append(b, '}')
	case formIn:
		b = appendString(append(b, `{"tag":`...), r.Tag)
		b = appendStrings(append(b, `,"in":`...), r.In)
		b = append(b, '}')
	case formBetween:
		b = appendString(append(b, `{"tag":`...), r.Tag)
		b = strconv.AppendInt(append(b, `,"between":[`...), r.Between[0], 10)
		b = strconv.AppendInt(append(b, ','), r.Between[1], 10)
		b = append(b, "]}"...)
	case formAnd, formOr:
		key, rules := `{"and":[`, r.And
		if r.Or != nil {
			key, rules = `{"or":[`, r.Or
		}
		b = append(b, key...)
		for i, sub := range rules {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = sub.appendJSON(b); err != nil {
				return nil, err
			}
		}
		b = append(b, "]}"...)
	case formNot:
		if b, err = r.Not.appendJSON(append(b, `{"not":`...)); err != nil {
			return nil, err
		}
		b = append(b, '}')
	default:
		return nil, errNoForm
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// Validate checks r against a game's tag schema and returns a fielderr.List whose
// fields start at path: an unknown tag (path.tag), "in" on a banded tag or
// "between" on an enumerated one, an undeclared value (path.in[i]), a range that
// overlaps no declared band (path.between), and "members" under an odd number of
// "not"s (path.members): clients cannot evaluate membership, so the member list can
// only ever be a topic cover and never part of a filter.
func (r Rule) Validate(path string, tags map[string]games.Tag) error {
	if tags == nil {
		tags = map[string]games.Tag{} // a game without tags; nil means "skip" below
	}
	var l fielderr.List
	r.validate(&l, path, tags, false, 1)
	return l.Err()
}

// validate checks r at path, negated under an odd number of nots. A nil tags
// skips the schema checks (Resolve's use: it needs only the members polarity).
func (r Rule) validate(l *fielderr.List, path string, tags map[string]games.Tag, negated bool, depth int) {
	if len(*l) >= maxErrors {
		return
	}
	if depth > MaxDepth {
		l.Add(path, "rules nest at most %d deep", MaxDepth)
		return
	}
	switch r.form() {
	case formNone:
		l.Add(path, "must have exactly one of everyone, server, tag, players, members, and, or, not")
	case formMembers:
		if negated {
			l.Add(fielderr.Join(path, "members"), "cannot be negated: clients do not know the member list, so it can only select topics")
		}
	case formIn, formBetween:
		if tags != nil {
			validateTag(l, path, r, tags)
		}
	case formAnd, formOr:
		key, rules := "and", r.And
		if r.Or != nil {
			key, rules = "or", r.Or
		}
		for i, sub := range rules {
			sub.validate(l, fielderr.Index(fielderr.Join(path, key), i), tags, negated, depth+1)
		}
	case formNot:
		r.Not.validate(l, fielderr.Join(path, "not"), tags, !negated, depth+1)
	}
}

func validateTag(l *fielderr.List, path string, r Rule, tags map[string]games.Tag) {
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

// ParseRule reads one rule from JSON, checking its structure (not the game's tag
// schema: see Validate). Every error is a fielderr.List whose fields are paths
// starting at path, e.g. "rule.and[1].in[0]". It refuses unknown or repeated keys,
// objects with no or several forms, wrong JSON types and null, empty lists, false
// for "everyone"/"members", ranges that are not two integers lo <= hi, repeated
// values in a list, ids failing topics.CheckID, and rules beyond the limits above.
func ParseRule(data []byte, path string) (Rule, error) {
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Rule{}, fielderr.New(path, "must be valid JSON: %v", err)
	}
	var p parser
	r := p.rule(raw, path, 1)
	if err := p.errs.Err(); err != nil {
		return Rule{}, err
	}
	return r, nil
}

type parser struct {
	errs  fielderr.List
	nodes int
}

func (p *parser) add(field, format string, args ...any) {
	if len(p.errs) < maxErrors {
		p.errs.Add(field, format, args...)
	}
}

// tooMany reports whether the node limit has been passed; parsing then stops.
func (p *parser) tooMany() bool { return p.nodes > MaxNodes }

// group is the form a key belongs to; "tag", "in" and "between" make one form.
var group = map[string]string{
	"everyone": "everyone", "server": "server", "players": "players", "members": "members",
	"and": "and", "or": "or", "not": "not", "tag": "tag", "in": "tag", "between": "tag",
}

func (p *parser) rule(raw json.RawMessage, path string, depth int) Rule {
	if p.nodes++; p.tooMany() {
		if p.nodes == MaxNodes+1 {
			p.add(path, "a rule has at most %d nodes", MaxNodes)
		}
		return Rule{}
	}
	if depth > MaxDepth {
		p.add(path, "rules nest at most %d deep", MaxDepth)
		return Rule{}
	}
	members, ok := p.object(raw, path)
	if !ok {
		return Rule{}
	}
	var r Rule
	var form string
	have := map[string]bool{}
	for _, m := range members {
		field := fielderr.Join(path, m.key)
		g, known := group[m.key]
		switch {
		case have[m.key]:
			p.add(field, "appears more than once")
			continue
		case !known:
			p.add(field, "unknown key; a rule has one of everyone, server, tag (with in or between), players, members, and, or, not")
			continue
		case form != "" && g != form:
			p.add(field, "cannot be combined with %q: a rule object has exactly one form", form)
			continue
		case (m.key == "in" && have["between"]) || (m.key == "between" && have["in"]):
			p.add(field, "a tag rule has either \"in\" or \"between\", not both")
			continue
		}
		have[m.key], form = true, g
		p.member(&r, m.key, m.val, field, depth)
	}
	switch {
	case len(members) == 0:
		p.add(path, "must have one of everyone, server, tag, players, members, and, or, not")
	case form == "tag" && !have["tag"]:
		p.add(fielderr.Join(path, "tag"), "is required with \"in\" or \"between\"")
	case form == "tag" && !have["in"] && !have["between"]:
		p.add(path, "a tag rule needs \"in\" or \"between\"")
	}
	return r
}

// member parses the value of one accepted key into r.
func (p *parser) member(r *Rule, key string, val json.RawMessage, field string, depth int) {
	switch key {
	case "everyone", "members":
		if !bytes.Equal(val, []byte("true")) {
			p.add(field, "must be true")
		}
		r.Everyone = r.Everyone || key == "everyone"
		r.Members = r.Members || key == "members"
	case "server":
		r.Server = p.ids(val, field, MaxListLen)
	case "players":
		r.Players = p.ids(val, field, MaxPlayers)
	case "in":
		r.In = p.ids(val, field, MaxListLen)
	case "tag":
		r.Tag, _ = p.id(val, field)
	case "between":
		r.Between = p.between(val, field)
	case "and", "or":
		elems, ok := p.array(val, field)
		if !ok {
			return
		}
		rules := make([]Rule, 0, len(elems))
		for i, e := range elems {
			if p.tooMany() {
				break
			}
			rules = append(rules, p.rule(e, fielderr.Index(field, i), depth+1))
		}
		if key == "and" {
			r.And = rules
		} else {
			r.Or = rules
		}
	case "not":
		sub := p.rule(val, field, depth+1)
		r.Not = &sub
	}
}

type member struct {
	key string
	val json.RawMessage
}

// object splits a JSON object into its members in order, keeping repeated keys.
func (p *parser) object(raw json.RawMessage, path string) ([]member, bool) {
	raw = bytes.TrimSpace(raw)
	if !p.kind(raw, path, '{', "a rule object") {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		p.add(path, "must be a rule object: %v", err)
		return nil, false
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		key, isKey := tok.(string)
		var val json.RawMessage
		if err == nil && isKey {
			err = dec.Decode(&val)
		}
		if err != nil || !isKey {
			p.add(path, "must be a rule object")
			return nil, false
		}
		out = append(out, member{key, bytes.TrimSpace(val)})
	}
	return out, true
}

// kind checks that raw starts with the opening byte of the JSON type wanted.
func (p *parser) kind(raw json.RawMessage, path string, open byte, what string) bool {
	switch {
	case bytes.Equal(raw, []byte("null")):
		p.add(path, "must be %s, not null", what)
		return false
	case len(raw) == 0 || raw[0] != open:
		p.add(path, "must be %s", what)
		return false
	}
	return true
}

// array splits a non-empty JSON array into its elements.
func (p *parser) array(raw json.RawMessage, path string) ([]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if !p.kind(raw, path, '[', "an array") {
		return nil, false
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		p.add(path, "must be an array: %v", err)
		return nil, false
	}
	if len(elems) == 0 {
		p.add(path, "must not be empty")
		return nil, false
	}
	for i := range elems {
		elems[i] = bytes.TrimSpace(elems[i])
	}
	return elems, true
}

// id reads one topic-safe id (topics.CheckID).
func (p *parser) id(raw json.RawMessage, path string) (string, bool) {
	var s string
	if !p.kind(raw, path, '"', "a string") || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	if err := topics.CheckID(s); err != nil {
		p.add(path, "%v", err)
		return "", false
	}
	return s, true
}

// ids reads a non-empty list of at most max distinct ids.
func (p *parser) ids(raw json.RawMessage, path string, max int) []string {
	elems, ok := p.array(raw, path)
	if !ok {
		return nil
	}
	if len(elems) > max {
		p.add(path, "must have at most %d entries", max)
		return nil
	}
	out := make([]string, 0, len(elems))
	first := make(map[string]int, len(elems))
	for i, e := range elems {
		field := fielderr.Index(path, i)
		s, ok := p.id(e, field)
		if !ok {
			continue
		}
		if j, dup := first[s]; dup {
			p.add(field, "repeats %s (%q)", fielderr.Index(path, j), s)
			continue
		}
		first[s] = i
		out = append(out, s)
	}
	return out
}

// between reads an inclusive range [lo, hi] of two integers with lo <= hi.
func (p *parser) between(raw json.RawMessage, path string) *[2]int64 {
	elems, ok := p.array(raw, path)
	if !ok {
		return nil
	}
	if len(elems) != 2 {
		p.add(path, "must be [lo, hi]: exactly 2 integers")
		return nil
	}
	var rng [2]int64
	for i, e := range elems {
		n, err := strconv.ParseInt(string(e), 10, 64)
		switch {
		case errors.Is(err, strconv.ErrRange):
			p.add(fielderr.Index(path, i), "is out of the 64-bit integer range")
			return nil
		case err != nil:
			p.add(fielderr.Index(path, i), "must be an integer")
			return nil
		}
		rng[i] = n
	}
	if rng[0] > rng[1] {
		p.add(path, "lo %d is greater than hi %d", rng[0], rng[1])
		return nil
	}
	return &rng
}

// String returns r's JSON form, or a placeholder for a Rule without one form.
func (r Rule) String() string {
	b, err := r.MarshalJSON()
	if err != nil {
		return fmt.Sprintf("<invalid rule: %v>", err)
	}
	return string(b)
}
