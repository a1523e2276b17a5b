package segments

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
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

// String returns r's JSON form, or a placeholder for a Rule without one form.
func (r Rule) String() string {
	b, err := r.MarshalJSON()
	if err != nil {
		return fmt.Sprintf("<invalid rule: %v>", err)
	}
	return string(b)
}
