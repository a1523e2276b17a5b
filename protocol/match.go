package protocol

import (
	"slices"
	"strconv"
)

// Attributes are what a client knows about its own player, the things a filter
// is evaluated against (protocol.md section 4).
type Attributes struct {
	Player string // the player id
	Server string // the game server (shard); empty when the game has none
	// Tags holds a value per tag the player carries: the value itself for an
	// enumerated tag ("region": "eu"), the number in decimal for a banded one
	// ("level": "35").
	Tags map[string]string
}

// Matches reports whether the filter r is true for a client with attributes a
// (protocol.md section 4). An atom about something the client does not carry (no
// server, no value for the tag, a value that is not a number for "between") is
// false, so its "not" is true; "and" of nothing is true, "or" of nothing false.
// "members" (a segment's uploaded member list, which a client cannot know) and a
// Rule without exactly one form, such as one decoded from a form this version does
// not know, are false.
func (r Rule) Matches(a Attributes) bool {
	switch r.Form() {
	case FormEveryone:
		return true
	case FormServer:
		return a.Server != "" && slices.Contains(r.Server, a.Server)
	case FormPlayers:
		return a.Player != "" && slices.Contains(r.Players, a.Player)
	case FormIn:
		v, ok := a.Tags[r.Tag]
		return ok && slices.Contains(r.In, v)
	case FormBetween:
		v, ok := a.Tags[r.Tag]
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return err == nil && r.Between[0] <= n && n <= r.Between[1]
	case FormAnd:
		for _, sub := range r.And {
			if !sub.Matches(a) {
				return false
			}
		}
		return true
	case FormOr:
		return slices.ContainsFunc(r.Or, func(sub Rule) bool { return sub.Matches(a) })
	case FormNot:
		return !r.Not.Matches(a)
	}
	return false
}
