package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Limits of a filter (protocol.md section 4). A filter beyond them is not a
// version-1 filter, and UnmarshalJSON refuses it.
const (
	// MaxRuleDepth is how deeply rule objects may nest; the outermost is depth 1.
	MaxRuleDepth = 16
	// MaxRuleNodes is how many rule objects one filter may hold, counting every
	// and/or/not and every atom.
	MaxRuleNodes = 256
)

// Rule is one node of a rule in Herald's segment language, the language of an
// envelope's filter. Exactly one form is set:
//
//	{"everyone": true}                    Everyone
//	{"server": ["s1", "s2"]}              Server
//	{"tag": "region", "in": ["eu"]}       Tag and In
//	{"tag": "level", "between": [30, 39]} Tag and Between (inclusive)
//	{"players": ["p1", "p2"]}             Players
//	{"members": true}                     Members: a segment's uploaded member list
//	{"and": [...]} {"or": [...]} {"not": rule}
//
// A list form is set when its slice is non-nil, so an empty list ({"and": []})
// is a form of its own.
//
// It is the one type of rules in Herald: segments and inline audiences are
// stored as Rule (jsonb, through MarshalJSON and UnmarshalJSON) and reach
// clients unchanged as an envelope's filter. Herald reads rules from requests
// with segments.ParseRule, which is strict where UnmarshalJSON is lenient.
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

// Form is which form of a rule node is set.
type Form int

// The forms of a rule node. FormNone is a Rule with no form or with several,
// such as one decoded from a form this version does not know.
const (
	FormNone Form = iota
	FormEveryone
	FormServer
	FormIn
	FormBetween
	FormPlayers
	FormMembers
	FormAnd
	FormOr
	FormNot
)

// Form returns the single form of r, or FormNone when r has none or several.
func (r Rule) Form() Form {
	found := FormNone
	for _, c := range []struct {
		set bool
		f   Form
	}{
		{r.Everyone, FormEveryone},
		{r.Server != nil, FormServer},
		{r.Tag != "" && r.In != nil, FormIn},
		{r.Tag != "" && r.Between != nil, FormBetween},
		{r.Players != nil, FormPlayers},
		{r.Members, FormMembers},
		{r.And != nil, FormAnd},
		{r.Or != nil, FormOr},
		{r.Not != nil, FormNot},
	} {
		if !c.set {
			continue
		}
		if found != FormNone {
			return FormNone
		}
		found = c.f
	}
	return found
}

// errNoForm is returned by MarshalJSON for a Rule without exactly one form.
var errNoForm = errors.New("protocol: rule must have exactly one form")

// MarshalJSON writes r as compact JSON in the shape of protocol.md section 4,
// keeping list order, the same bytes whoever built r. It fails on a
// Rule without exactly one form, which includes a rule UnmarshalJSON read from a
// form it does not know.
func (r Rule) MarshalJSON() ([]byte, error) {
	return r.appendJSON(nil)
}

func (r Rule) appendJSON(b []byte) ([]byte, error) {
	var err error
	switch r.Form() {
	case FormEveryone:
		b = append(b, `{"everyone":true}`...)
	case FormMembers:
		b = append(b, `{"members":true}`...)
	case FormServer:
		b = appendStrings(append(b, `{"server":`...), r.Server)
		b = append(b, '}')
	case FormPlayers:
		b = appendStrings(append(b, `{"players":`...), r.Players)
		b = append(b, '}')
	case FormIn:
		b = appendString(append(b, `{"tag":`...), r.Tag)
		b = appendStrings(append(b, `,"in":`...), r.In)
		b = append(b, '}')
	case FormBetween:
		b = appendString(append(b, `{"tag":`...), r.Tag)
		b = strconv.AppendInt(append(b, `,"between":[`...), r.Between[0], 10)
		b = strconv.AppendInt(append(b, ','), r.Between[1], 10)
		b = append(b, "]}"...)
	case FormAnd, FormOr:
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
	case FormNot:
		if b, err = r.Not.appendJSON(append(b, `{"not":`...)); err != nil {
			return nil, err
		}
		b = append(b, '}')
	default:
		return nil, errNoForm
	}
	return b, nil
}

// appendString appends s as a JSON string, escaped as encoding/json does
// (HTML characters included).
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

// String returns r's JSON form, or a placeholder for a Rule without one form.
func (r Rule) String() string {
	b, err := r.MarshalJSON()
	if err != nil {
		return "<rule of no known form>"
	}
	return string(b)
}

// UnmarshalJSON reads a filter leniently, as a client must (protocol.md section 4:
// a client that meets a form it does not know treats that atom as false):
//
//   - an object whose set of keys is not exactly one known form ({}, {"foo": 1},
//     {"tag": "level", "gt": 3}, two forms in one object, a known form with an
//     extra key) decodes as a Rule with no form, which matches nothing; so does a
//     known form whose value is false or null ({"everyone": false}). Later
//     versions may add forms and old clients keep working: such a filter is false
//     for them, so they drop the message rather than show it to the wrong players;
//   - malformed JSON, a rule that is not an object, a known key with a value of
//     the wrong JSON type ({"server": "s1"}, "between" that is not two integers),
//     and a filter deeper than MaxRuleDepth or larger than MaxRuleNodes are errors:
//     such an envelope is not a version-1 envelope.
//
// A repeated key counts once, with its last value.
func (r *Rule) UnmarshalJSON(data []byte) error {
	var d ruleDecoder
	rule, err := d.rule(data, 1)
	if err != nil {
		return fmt.Errorf("protocol: filter: %w", err)
	}
	*r = rule
	return nil
}

// ruleDecoder counts the nodes of one filter as it decodes it.
type ruleDecoder struct{ nodes int }

func (d *ruleDecoder) rule(data []byte, depth int) (Rule, error) {
	if d.nodes++; d.nodes > MaxRuleNodes {
		return Rule{}, fmt.Errorf("more than %d nodes", MaxRuleNodes)
	}
	if depth > MaxRuleDepth {
		return Rule{}, fmt.Errorf("nested deeper than %d", MaxRuleDepth)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return Rule{}, errors.New("a rule must be a JSON object")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return Rule{}, err
	}
	keys := slices.Sorted(maps.Keys(members))
	var r Rule
	var err error
	switch strings.Join(keys, ",") {
	case "everyone":
		err = json.Unmarshal(members["everyone"], &r.Everyone)
	case "members":
		err = json.Unmarshal(members["members"], &r.Members)
	case "server":
		err = json.Unmarshal(members["server"], &r.Server)
	case "players":
		err = json.Unmarshal(members["players"], &r.Players)
	case "in,tag":
		if err = json.Unmarshal(members["tag"], &r.Tag); err == nil {
			err = json.Unmarshal(members["in"], &r.In)
		}
	case "between,tag":
		if err = json.Unmarshal(members["tag"], &r.Tag); err == nil {
			r.Between, err = between(members["between"])
		}
	case "and":
		r.And, err = d.rules(members["and"], depth)
	case "or":
		r.Or, err = d.rules(members["or"], depth)
	case "not":
		if !isNull(members["not"]) {
			var sub Rule
			sub, err = d.rule(members["not"], depth+1)
			r.Not = &sub
		}
	}
	if err != nil {
		return Rule{}, fmt.Errorf("%s: %w", strings.Join(keys, ","), err)
	}
	return r, nil
}

// rules decodes the list of an "and" or an "or": non-nil when it is a list, even
// an empty one; nil (no form) for null.
func (d *ruleDecoder) rules(data json.RawMessage, depth int) ([]Rule, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(data, &elems); err != nil || elems == nil {
		return nil, err
	}
	rules := make([]Rule, 0, len(elems))
	for i, e := range elems {
		sub, err := d.rule(e, depth+1)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		rules = append(rules, sub)
	}
	return rules, nil
}

// between decodes [lo, hi], two integers; nil (no form) for null.
func between(data json.RawMessage) (*[2]int64, error) {
	var bounds []int64
	if err := json.Unmarshal(data, &bounds); err != nil || bounds == nil {
		return nil, err
	}
	if len(bounds) != 2 {
		return nil, fmt.Errorf("must be two integers, not %d", len(bounds))
	}
	return &[2]int64{bounds[0], bounds[1]}, nil
}

func isNull(data json.RawMessage) bool {
	return string(bytes.TrimSpace(data)) == "null"
}
