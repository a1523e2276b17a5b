package segments

import (
	"slices"

	"github.com/heraldpush/herald/protocol"
)

// Limits of one rule. They keep parsing, validation and resolution cheap, and they
// bound the filter a client has to evaluate, since filters are made of rule nodes.
const (
	// MaxDepth is how deeply rule objects may nest; the outermost rule is depth 1.
	// It is the filter limit of the protocol: a rule that parses is a filter
	// every client can read.
	MaxDepth = protocol.MaxRuleDepth
	// MaxNodes is how many rule objects one rule may hold, counting every
	// and/or/not and every atom (the protocol's filter limit too).
	MaxNodes = protocol.MaxRuleNodes
	// MaxPlayers bounds a "players" list. It is meant for small explicit lists;
	// large audiences belong in the segment's uploaded member list ("members").
	MaxPlayers = 1000
	// MaxListLen bounds a "server" or "in" list.
	MaxListLen = 1000
	// maxErrors bounds how many field errors ParseRule or ValidateRule report, so
	// that a large malformed rule does not turn into a huge 422.
	maxErrors = 100
)

// StrictRule is a rule as a request gives it. Rules are protocol.Rule values,
// whose own UnmarshalJSON reads leniently, as a client reads a filter; a
// request field of this type is read with ParseRule(data, "rule") instead, so
// that a malformed rule is refused with a fielderr.List naming the offending
// path ("rule.and[1].in[0]").
type StrictRule struct {
	protocol.Rule
}

// UnmarshalJSON parses data with ParseRule(data, "rule").
func (r *StrictRule) UnmarshalJSON(data []byte) error {
	p, err := ParseRule(data, "rule")
	if err != nil {
		return err
	}
	r.Rule = p
	return nil
}

// UsesMembers reports whether a "members" atom appears anywhere in r, that is
// whether resolving r needs the segment's uploaded member list.
func UsesMembers(r protocol.Rule) bool {
	if r.Members {
		return true
	}
	if r.Not != nil && UsesMembers(*r.Not) {
		return true
	}
	return slices.ContainsFunc(r.And, UsesMembers) || slices.ContainsFunc(r.Or, UsesMembers)
}
