package segments

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/protocol"
)

// ParseRule reads one rule from JSON, checking its structure (not the game's tag
// schema: see Validate). Every error is a fielderr.List whose fields are paths
// starting at path, e.g. "rule.and[1].in[0]". It refuses unknown or repeated keys,
// objects with no or several forms, wrong JSON types and null, empty lists, false
// for "everyone"/"members", ranges that are not two integers lo <= hi, repeated
// values in a list, ids failing protocol.CheckID, and rules beyond the limits above.
func ParseRule(data []byte, path string) (protocol.Rule, error) {
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return protocol.Rule{}, fielderr.New(path, "must be valid JSON: %v", err)
	}
	var p parser
	r := p.rule(raw, path, 1)
	if err := p.errs.Err(); err != nil {
		return protocol.Rule{}, err
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

func (p *parser) rule(raw json.RawMessage, path string, depth int) protocol.Rule {
	if p.nodes++; p.tooMany() {
		if p.nodes == MaxNodes+1 {
			p.add(path, "a rule has at most %d nodes", MaxNodes)
		}
		return protocol.Rule{}
	}
	if depth > MaxDepth {
		p.add(path, "rules nest at most %d deep", MaxDepth)
		return protocol.Rule{}
	}
	members, ok := p.object(raw, path)
	if !ok {
		return protocol.Rule{}
	}
	var r protocol.Rule
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
func (p *parser) member(r *protocol.Rule, key string, val json.RawMessage, field string, depth int) {
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
		rules := make([]protocol.Rule, 0, len(elems))
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

// id reads one topic-safe id (protocol.CheckID).
func (p *parser) id(raw json.RawMessage, path string) (string, bool) {
	var s string
	if !p.kind(raw, path, '"', "a string") || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	if err := protocol.CheckID(s); err != nil {
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
