package segments

import (
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/protocol"
)

// InTagValues returns the plan of rule r narrowed to each of values of tag:
// one target per value, that value's tag topic, with r as the filter (none
// when r is everyone). A campaign in each player's time zone sends the fire of
// each zone to that zone's topic only, so that zones never share a retained
// topic and one zone's fire never replaces another's.
//
// A rule on a member list cannot be narrowed so (clients cannot evaluate
// "members"): it returns a fielderr.List on path then.
func InTagValues(r protocol.Rule, tag string, values []string, path string) (Plan, error) {
	if UsesMembers(r) {
		return Plan{}, fielderr.New(path, "a send to each player's time zone reaches players on their zone's tag topic, "+
			"and clients cannot tell whether they are in a member list: use a rule without members")
	}
	var filter *protocol.Rule
	if !r.Everyone {
		filter = &r
	}
	plan := Plan{Exact: filter == nil, Topics: int64(len(values)), Targets: make([]Target, len(values))}
	for i, v := range values {
		plan.Targets[i] = Target{Scope: protocol.ScopeTag, Keys: []string{tag, v}, Filter: filter}
	}
	plan.Players, plan.PlayersNote = countPlayers(plan.Targets, 0)
	return plan, nil
}
