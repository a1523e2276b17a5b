package segments_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

func mustRule(t testing.TB, in string) protocol.Rule {
	t.Helper()
	r, err := segments.ParseRule([]byte(in), "rule")
	require.NoError(t, err, in)
	return r
}

func TestResolve(t *testing.T) {
	t.Parallel()
	const members = 5000
	tests := []struct {
		name, rule string
		want       string // the plan as JSON
	}{
		{"everyone", `{"everyone":true}`,
			`{"exact":true,"topics":1,"players":null,"players_note":"unknown: the plan publishes to all topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"all"}]}`},
		{"servers", `{"server":["s2","s1"]}`,
			`{"exact":true,"topics":2,"players":null,"players_note":"unknown: the plan publishes to server topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"server","keys":["s1"]},{"scope":"server","keys":["s2"]}]}`},
		{"enum tag", `{"tag":"region","in":["na","eu"]}`,
			`{"exact":true,"topics":2,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"tag","keys":["region","eu"]},{"scope":"tag","keys":["region","na"]}]}`},
		{"range is one band", `{"tag":"level","between":[30,39]}`,
			`{"exact":true,"topics":1,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"tag","keys":["level","30-39"]}]}`},
		{"range is several bands", `{"tag":"level","between":[10,29]}`,
			`{"exact":true,"topics":2,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"tag","keys":["level","10-19"]},{"scope":"tag","keys":["level","20-29"]}]}`},
		{"range covers one band partly and one whole", `{"tag":"level","between":[25,39]}`,
			`{"exact":false,"topics":2,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[
				{"scope":"tag","keys":["level","20-29"],"filter":{"tag":"level","between":[25,39]}},
				{"scope":"tag","keys":["level","30-39"]}]}`},
		{"range inside one band", `{"tag":"level","between":[12,15]}`,
			`{"exact":false,"topics":1,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"tag","keys":["level","10-19"],"filter":{"tag":"level","between":[12,15]}}]}`},
		{"range beyond the last band", `{"tag":"level","between":[95,500]}`,
			`{"exact":false,"topics":1,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"tag","keys":["level","50-99"],"filter":{"tag":"level","between":[95,500]}}]}`},
		{"range overlapping no band", `{"tag":"level","between":[100,200]}`,
			`{"exact":false,"topics":1,"players":null,"players_note":"unknown: the plan publishes to all topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"all","filter":{"tag":"level","between":[100,200]}}]}`},
		{"ranges intersect", `{"and":[{"tag":"level","between":[1,5]},{"tag":"level","between":[3,30]}]}`,
			`{"exact":false,"topics":1,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"tag","keys":["level","1-9"],"filter":{"tag":"level","between":[3,5]}}]}`},
		{"and: the narrower tag covers", `{"and":[{"tag":"region","in":["eu","na"]},{"tag":"platform","in":["ios"]}]}`,
			`{"exact":false,"topics":1,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"tag","keys":["platform","ios"],"filter":{"tag":"region","in":["eu","na"]}}]}`},
		{"and: an exact band covers", `{"and":[{"tag":"region","in":["eu"]},{"tag":"level","between":[30,39]}]}`,
			`{"exact":false,"topics":1,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"tag","keys":["level","30-39"],"filter":{"tag":"region","in":["eu"]}}]}`},
		{"and: equal shares, fewer topics", `{"and":[{"tag":"level","between":[1,29]},{"tag":"region","in":["eu","na"]}]}`,
			`{"exact":false,"topics":2,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[
				{"scope":"tag","keys":["region","eu"],"filter":{"tag":"level","between":[1,29]}},
				{"scope":"tag","keys":["region","na"],"filter":{"tag":"level","between":[1,29]}}]}`},
		{"and: equal shares and topics, tag name", `{"and":[{"tag":"vip","between":[1,5]},{"tag":"platform","in":["pc"]}]}`,
			`{"exact":false,"topics":1,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"tag","keys":["platform","pc"],"filter":{"tag":"vip","between":[1,5]}}]}`},
		{"and: server beats tags", `{"and":[{"tag":"region","in":["eu"]},{"server":["s1","s2"]}]}`,
			`{"exact":false,"topics":2,"players":null,"players_note":"unknown: the plan publishes to server topics, and Herald does not know how many players subscribe to them","targets":[
				{"scope":"server","keys":["s1"],"filter":{"tag":"region","in":["eu"]}},
				{"scope":"server","keys":["s2"],"filter":{"tag":"region","in":["eu"]}}]}`},
		{"and: everyone drops out", `{"and":[{"everyone":true},{"server":["s1"]}]}`,
			`{"exact":true,"topics":1,"players":null,"players_note":"unknown: the plan publishes to server topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"server","keys":["s1"]}]}`},
		{"and: contradiction", `{"and":[{"tag":"region","in":["eu"]},{"tag":"region","in":["na"]}]}`,
			`{"exact":true,"topics":0,"players":0,"targets":[]}`},
		{"and: negation subtracted", `{"and":[{"tag":"region","in":["eu","na"]},{"not":{"tag":"region","in":["eu"]}}]}`,
			`{"exact":true,"topics":1,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"tag","keys":["region","na"]}]}`},
		{"or: same topic twice", `{"or":[{"tag":"region","in":["eu","na"]},{"tag":"region","in":["eu"]}]}`,
			`{"exact":true,"topics":2,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"tag","keys":["region","eu"]},{"scope":"tag","keys":["region","na"]}]}`},
		{"or: filtered and unfiltered merge", `{"or":[{"and":[{"tag":"platform","in":["ios"]},{"tag":"region","in":["eu","na"]}]},{"tag":"platform","in":["ios"]}]}`,
			`{"exact":true,"topics":1,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"tag","keys":["platform","ios"]}]}`},
		{"or: two filters merge", `{"or":[
				{"and":[{"tag":"platform","in":["ios"]},{"tag":"region","in":["eu","na"]}]},
				{"and":[{"tag":"platform","in":["ios"]},{"tag":"region","in":["sa","asia"]}]}]}`,
			`{"exact":false,"topics":1,"players":null,"players_note":"unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"tag","keys":["platform","ios"],
				"filter":{"or":[{"tag":"region","in":["eu","na"]},{"tag":"region","in":["sa","asia"]}]}}]}`},
		{"or: scopes sorted", `{"or":[{"players":["p1"]},{"tag":"region","in":["eu"]},{"server":["s1"]},{"not":{"server":["s9"]}}]}`,
			`{"exact":false,"topics":4,"players":null,"players_note":"unknown: the plan publishes to all, server, tag topics, and Herald does not know how many players subscribe to them","targets":[
				{"scope":"all","filter":{"not":{"server":["s9"]}}},
				{"scope":"server","keys":["s1"]},
				{"scope":"tag","keys":["region","eu"]},
				{"scope":"player","keys":["p1"]}]}`},
		{"not", `{"not":{"tag":"region","in":["eu"]}}`,
			`{"exact":false,"topics":1,"players":null,"players_note":"unknown: the plan publishes to all topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"all","filter":{"not":{"tag":"region","in":["eu"]}}}]}`},
		{"not and", `{"not":{"and":[{"tag":"region","in":["eu"]},{"server":["s1"]}]}}`,
			`{"exact":false,"topics":1,"players":null,"players_note":"unknown: the plan publishes to all topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"all","filter":{"or":[{"not":{"tag":"region","in":["eu"]}},{"not":{"server":["s1"]}}]}}]}`},
		{"not not", `{"not":{"not":{"server":["s1"]}}}`,
			`{"exact":true,"topics":1,"players":null,"players_note":"unknown: the plan publishes to server topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"server","keys":["s1"]}]}`},
		{"not everyone", `{"not":{"everyone":true}}`,
			`{"exact":true,"topics":0,"players":0,"targets":[]}`},
		{"players", `{"players":["p2","p1"]}`,
			`{"exact":true,"topics":2,"players":2,"targets":[{"scope":"player","keys":["p1"]},{"scope":"player","keys":["p2"]}]}`},
		{"players beat servers", `{"and":[{"server":["s1"]},{"players":["p1"]}]}`,
			`{"exact":false,"topics":1,"players":1,"players_note":"at most: clients that do not match the filter drop the message","targets":[{"scope":"player","keys":["p1"],"filter":{"server":["s1"]}}]}`},
		{"players intersect", `{"and":[{"players":["p1","p2","p3"]},{"players":["p4","p3","p2"]}]}`,
			`{"exact":true,"topics":2,"players":2,"targets":[{"scope":"player","keys":["p2"]},{"scope":"player","keys":["p3"]}]}`},
		{"members", `{"members":true}`,
			`{"exact":true,"topics":5000,"players":5000,"targets":[{"scope":"player","members":true}]}`},
		{"members and a tag", `{"and":[{"tag":"region","in":["eu"]},{"members":true}]}`,
			`{"exact":false,"topics":5000,"players":5000,"players_note":"at most: clients that do not match the filter drop the message","targets":[{"scope":"player","members":true,"filter":{"tag":"region","in":["eu"]}}]}`},
		{"members and players", `{"and":[{"players":["p1"]},{"members":true}]}`,
			`{"exact":false,"topics":5000,"players":5000,"players_note":"at most: clients that do not match the filter drop the message","targets":[{"scope":"player","members":true,"filter":{"players":["p1"]}}]}`},
		{"members or a server", `{"or":[{"members":true},{"server":["s1"]},{"players":["p1"]}]}`,
			`{"exact":true,"topics":5002,"players":null,"players_note":"unknown: the plan publishes to server topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"server","keys":["s1"]},{"scope":"player","keys":["p1"]},{"scope":"player","members":true}]}`},
		{"members or players", `{"or":[{"members":true},{"players":["p1"]}]}`,
			`{"exact":true,"topics":5001,"players":5001,"players_note":"at most: a player named in the rule may be in the member list too",
				"targets":[{"scope":"player","keys":["p1"]},{"scope":"player","members":true}]}`},
		{"everyone subsumes the rest", `{"or":[{"tag":"region","in":["eu"]},{"members":true},{"not":{"server":["s1"]}},{"everyone":true}]}`,
			`{"exact":true,"topics":1,"players":null,"players_note":"unknown: the plan publishes to all topics, and Herald does not know how many players subscribe to them","targets":[{"scope":"all"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plan, err := segments.Resolve(mustRule(t, tt.rule), ruleTags, members)
			require.NoError(t, err)
			got, err := json.Marshal(plan)
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(got))
		})
	}
}

// nest is {outer: [n times {inner: [not server, not player]}]}: with "and" of
// "or"s a normal form of 2^n conjuncts. Its "or" of "and"s twin has n conjuncts,
// but 2^n when negated.
func nest(outer, inner string, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{%q:[{"not":{"server":["a%d"]}},{"not":{"players":["b%d"]}}]}`, inner, i, i)
	}
	return fmt.Sprintf(`{%q:[%s]}`, outer, strings.Join(parts, ","))
}

func TestResolveTooComplex(t *testing.T) {
	t.Parallel()
	_, err := segments.Resolve(mustRule(t, nest("and", "or", 10)), ruleTags, 0) // 1024 conjuncts
	require.NoError(t, err)
	_, err = segments.Resolve(mustRule(t, nest("and", "or", 11)), ruleTags, 0)
	require.ErrorIs(t, err, segments.ErrTooComplex)
	_, err = segments.Resolve(mustRule(t, nest("or", "and", 11)), ruleTags, 0)
	require.NoError(t, err)
	_, err = segments.Resolve(mustRule(t, `{"not":{"not":`+nest("or", "and", 11)+`}}`), ruleTags, 0)
	require.NoError(t, err)
	_, err = segments.Resolve(mustRule(t, `{"not":`+nest("and", "or", 11)+`}`), ruleTags, 0)
	require.NoError(t, err) // or of 11 ands of positive atoms
	_, err = segments.Resolve(mustRule(t, `{"or":[{"everyone":true},`+nest("and", "or", 11)+`]}`), ruleTags, 0)
	require.ErrorIs(t, err, segments.ErrTooComplex, "complexity is judged before simplification")

	ands := make([]string, 11)
	for i := range ands {
		ands[i] = fmt.Sprintf(`{"and":[{"server":["a%d"]},{"players":["b%d"]}]}`, i, i)
	}
	_, err = segments.Resolve(mustRule(t, `{"not":{"or":[`+strings.Join(ands, ",")+`]}}`), ruleTags, 0)
	require.ErrorIs(t, err, segments.ErrTooComplex, "not pushed inward makes an and of ors")
}

// A filter too large to keep (more than MaxNodes) becomes the whole rule, unless
// the rule names members, which clients cannot evaluate.
func TestResolveLargeFilter(t *testing.T) {
	t.Parallel()
	parts := []string{`{"tag":"region","in":["eu"]}`}
	for i := range 8 {
		parts = append(parts, fmt.Sprintf(`{"or":[{"not":{"players":["a%d"]}},{"not":{"server":["b%d"]}}]}`, i, i))
	}
	rule := mustRule(t, `{"and":[`+strings.Join(parts, ",")+`]}`)
	plan, err := segments.Resolve(rule, ruleTags, 0)
	require.NoError(t, err)
	require.Equal(t, []segments.Target{{Scope: protocol.ScopeTag, Keys: []string{"region", "eu"}, Filter: &rule}}, plan.Targets)

	withMembers := mustRule(t, `{"and":[{"members":true},`+strings.Join(parts[1:], ",")+`]}`)
	_, err = segments.Resolve(withMembers, ruleTags, 0)
	require.ErrorIs(t, err, segments.ErrTooComplex)
}

func TestResolveRefusesNegatedMembers(t *testing.T) {
	t.Parallel()
	_, err := segments.Resolve(mustRule(t, `{"not":{"and":[{"members":true},{"server":["s1"]}]}}`), ruleTags, 10)
	require.Equal(t, []string{"rule.not.and[0].members"}, errFields(t, err))
	_, err = segments.Resolve(protocol.Rule{}, ruleTags, 10)
	require.Error(t, err)
}

// testPlayer is a client as the resolver sees it: its id, its server, one value per
// tag it carries (enumerated or numeric) and whether it is in the member list.
type testPlayer struct {
	id, server string
	enums      map[string]string
	nums       map[string]int64
	member     bool
}

// eval is the client side of a filter: r evaluated against p's own attributes.
func eval(r protocol.Rule, p testPlayer) bool {
	switch {
	case r.Everyone:
		return true
	case r.Members:
		return p.member
	case r.Server != nil:
		return slices.Contains(r.Server, p.server)
	case r.Players != nil:
		return slices.Contains(r.Players, p.id)
	case r.In != nil:
		v, ok := p.enums[r.Tag]
		return ok && slices.Contains(r.In, v)
	case r.Between != nil:
		v, ok := p.nums[r.Tag]
		return ok && r.Between[0] <= v && v <= r.Between[1]
	case r.And != nil:
		for _, sub := range r.And {
			if !eval(sub, p) {
				return false
			}
		}
		return true
	case r.Or != nil:
		return slices.ContainsFunc(r.Or, func(sub protocol.Rule) bool { return eval(sub, p) })
	case r.Not != nil:
		return !eval(*r.Not, p)
	}
	panic("rule without a form: " + r.String())
}

// subscribed reports whether p subscribes to t's topic (docs/protocol.md section 2).
func subscribed(t segments.Target, tags map[string]games.Tag, p testPlayer) bool {
	switch t.Scope {
	case protocol.ScopeAll:
		return true
	case protocol.ScopeServer:
		return t.Keys[0] == p.server
	case protocol.ScopePlayer:
		if t.Members {
			return p.member
		}
		return t.Keys[0] == p.id
	case protocol.ScopeTag:
		if v, ok := p.enums[t.Keys[0]]; ok {
			return t.Keys[1] == v
		}
		if n, ok := p.nums[t.Keys[0]]; ok {
			for _, b := range tags[t.Keys[0]].Bands {
				if b.Lo() <= n && n <= b.Hi() {
					return t.Keys[1] == b.Name()
				}
			}
		}
	}
	return false
}

// reached reports whether some target of plan delivers to p: p subscribes to its
// topic and its filter holds for p.
func reached(plan segments.Plan, tags map[string]games.Tag, p testPlayer) bool {
	for _, t := range plan.Targets {
		if subscribed(t, tags, p) && (t.Filter == nil || eval(*t.Filter, p)) {
			return true
		}
	}
	return false
}

// checkPlan checks the invariants of a plan and that it reaches exactly the
// players the rule matches.
func checkPlan(t *testing.T, r protocol.Rule, plan segments.Plan, tags map[string]games.Tag, memberCount int64, players []testPlayer) {
	t.Helper()
	exact, seen, topicCount := true, map[string]bool{}, int64(0)
	countable, playerCount := true, int64(0)
	for i, tg := range plan.Targets {
		key := fmt.Sprintf("%s %q %t", tg.Scope, tg.Keys, tg.Members)
		require.False(t, seen[key], "target %s twice in %+v", key, plan)
		seen[key] = true
		if tg.Filter != nil {
			exact = false
			require.False(t, segments.UsesMembers(*tg.Filter), "filter with members: %s", tg.Filter)
			b, err := json.Marshal(tg.Filter)
			require.NoError(t, err)
			back, err := segments.ParseRule(b, "filter")
			require.NoError(t, err, "filter %s does not parse back", b)
			require.Equal(t, *tg.Filter, back)
		}
		if tg.Scope == protocol.ScopeAll && tg.Filter == nil {
			require.Len(t, plan.Targets, 1, "an unfiltered all target is the whole plan")
		}
		switch {
		case tg.Members:
			topicCount, playerCount = topicCount+memberCount, playerCount+memberCount
		case tg.Scope == protocol.ScopePlayer:
			topicCount, playerCount = topicCount+1, playerCount+1
		default:
			topicCount, countable = topicCount+1, false
		}
		if i > 0 {
			require.True(t, targetLess(plan.Targets[i-1], tg), "targets not sorted: %+v", plan.Targets)
		}
	}
	require.Equal(t, exact, plan.Exact)
	require.Equal(t, topicCount, plan.Topics)
	if countable {
		require.NotNil(t, plan.Players, "every target is a player's topic: the plan is counted")
		require.Equal(t, playerCount, *plan.Players)
		require.Equal(t, exact, !strings.Contains(plan.PlayersNote, "filter"), "an upper bound says so: %q", plan.PlayersNote)
	} else {
		require.Nil(t, plan.Players, "a broadcast topic's subscribers are not counted")
		require.Contains(t, plan.PlayersNote, "unknown")
	}
	for _, p := range players {
		require.Equal(t, eval(r, p), reached(plan, tags, p), "rule %s, player %+v, plan %+v", r, p, plan)
	}
}

func targetLess(a, b segments.Target) bool {
	rank := map[protocol.Scope]int{protocol.ScopeAll: 0, protocol.ScopeServer: 1, protocol.ScopeTag: 2, protocol.ScopePlayer: 3}
	if rank[a.Scope] != rank[b.Scope] {
		return rank[a.Scope] < rank[b.Scope]
	}
	if a.Members != b.Members {
		return b.Members
	}
	return slices.Compare(a.Keys, b.Keys) < 0
}

// The vocabulary random rules and players are drawn from: a few values outside the
// schema too, so that rules the schema would refuse are resolved soundly as well.
var (
	vocabServers = []string{"s1", "s2", "s3", "s4"}
	vocabPlayers = []string{"p1", "p2", "p3", "p4", "p5", "p6"}
	vocabEnums   = map[string][]string{"region": {"eu", "na", "asia", "sa", "mars"}, "platform": {"ios", "android", "pc"}}
	vocabTags    = []string{"region", "platform", "level", "vip", "colour"}
)

func pickSome(rng *rand.Rand, from []string) []string {
	out := slices.Clone(from)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out[:1+rng.IntN(len(out))]
}

func randomRule(rng *rand.Rand, depth int) protocol.Rule {
	n := 7
	if depth < 4 {
		n = 10
	}
	switch rng.IntN(n) {
	case 0:
		return protocol.Rule{Everyone: true}
	case 1:
		return protocol.Rule{Server: pickSome(rng, vocabServers)}
	case 2:
		return protocol.Rule{Players: pickSome(rng, vocabPlayers)}
	case 3:
		return protocol.Rule{Members: true}
	case 4, 5:
		tag := vocabTags[rng.IntN(len(vocabTags))]
		if vals, ok := vocabEnums[tag]; ok && rng.IntN(8) > 0 {
			return protocol.Rule{Tag: tag, In: pickSome(rng, vals)}
		}
		lo := rng.Int64N(110) - 5
		return protocol.Rule{Tag: tag, Between: &[2]int64{lo, lo + rng.Int64N(40)}}
	case 6:
		lo := 10 * rng.Int64N(6)
		return protocol.Rule{Tag: "level", Between: &[2]int64{lo, lo + 10*rng.Int64N(3) + 9}}
	case 7:
		sub := randomRule(rng, depth+1)
		return protocol.Rule{Not: &sub}
	default:
		subs := make([]protocol.Rule, 1+rng.IntN(3))
		for i := range subs {
			subs[i] = randomRule(rng, depth+1)
		}
		if rng.IntN(2) == 0 {
			return protocol.Rule{And: subs}
		}
		return protocol.Rule{Or: subs}
	}
}

// randomPlayer draws a player whose tag values are all declared, and whose numbers
// lie inside a declared band: the players the schema describes.
func randomPlayer(rng *rand.Rand, tags map[string]games.Tag) testPlayer {
	p := testPlayer{
		id:     vocabPlayers[rng.IntN(len(vocabPlayers))],
		server: vocabServers[rng.IntN(len(vocabServers))],
		enums:  map[string]string{},
		nums:   map[string]int64{},
		member: rng.IntN(2) == 0,
	}
	if rng.IntN(5) == 0 {
		p.id = "q" + fmt.Sprint(rng.IntN(100))
	}
	for name, tag := range tags {
		if rng.IntN(6) == 0 {
			continue // this player does not carry the tag
		}
		if len(tag.Values) > 0 {
			p.enums[name] = tag.Values[rng.IntN(len(tag.Values))]
		} else {
			b := tag.Bands[rng.IntN(len(tag.Bands))]
			p.nums[name] = b.Lo() + rng.Int64N(b.Hi()-b.Lo()+1)
		}
	}
	return p
}

// TestResolveSound is the proof the resolver is right: for random rules, the
// players reached by the plan are exactly the players the rule matches.
func TestResolveSound(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	players := make([]testPlayer, 300)
	for i := range players {
		players[i] = randomPlayer(rng, ruleTags)
	}
	resolved := 0
	for range 3000 {
		r := randomRule(rng, 1)
		b, err := json.Marshal(r)
		require.NoError(t, err)
		r = mustRule(t, string(b)) // only rules that parse
		plan, err := segments.Resolve(r, ruleTags, 42)
		if err != nil {
			require.True(t, errors.Is(err, segments.ErrTooComplex) || segments.UsesMembers(r), "rule %s: %v", b, err)
			continue
		}
		resolved++
		checkPlan(t, r, plan, ruleTags, 42, players)
	}
	require.Greater(t, resolved, 2000)
}

// Rules within every parse limit but built to blow up normalization or merging
// resolve, or are refused as too complex, quickly (tens of milliseconds).
func TestResolveBoundedWork(t *testing.T) {
	t.Parallel()
	var parts, ins []string
	for i := range 100 {
		parts = append(parts, fmt.Sprintf(`{"not":{"tag":"region","in":["c%d"]}}`, i))
	}
	ins = append(ins,
		`{"and":[`+strings.Join(parts, ",")+`,`+nest("and", "or", 10)+`]}`,
		`{"and":[{"players":`+idList("p", 1000)+`},`+nest("and", "or", 10)+`]}`,
		`{"and":[{"server":`+idList("s", 1000)+`},`+nest("and", "or", 7)+`]}`,
		`{"and":[{"tag":"region","in":["eu"]},{"not":{"players":`+idList("p", 1000)+`}},`+nest("and", "or", 10)+`]}`,
	)
	for _, in := range ins {
		start := time.Now()
		_, err := segments.Resolve(mustRule(t, in), ruleTags, 3)
		if err != nil {
			require.ErrorIs(t, err, segments.ErrTooComplex)
		}
		require.Less(t, time.Since(start), 5*time.Second)
	}
}

// TestInTagValues: narrowed to tag values, a rule becomes one target per
// value with the rule as its filter; "everyone" needs no filter; member lists
// are refused.
func TestInTagValues(t *testing.T) {
	t.Parallel()
	level := protocol.Rule{Tag: "level", Between: &[2]int64{30, 39}}
	plan, err := segments.InTagValues(level, "tz", []string{"Asia.Shanghai", "Europe.Berlin"}, "audience")
	require.NoError(t, err)
	require.False(t, plan.Exact)
	require.Equal(t, int64(2), plan.Topics)
	require.Equal(t, []segments.Target{
		{Scope: protocol.ScopeTag, Keys: []string{"tz", "Asia.Shanghai"}, Filter: &level},
		{Scope: protocol.ScopeTag, Keys: []string{"tz", "Europe.Berlin"}, Filter: &level},
	}, plan.Targets)
	require.Nil(t, plan.Players, "players on tag topics are not counted")
	require.NotEmpty(t, plan.PlayersNote, "and the plan says why")

	plan, err = segments.InTagValues(protocol.Rule{Everyone: true}, "tz", []string{"UTC"}, "audience")
	require.NoError(t, err)
	require.True(t, plan.Exact)
	require.Nil(t, plan.Targets[0].Filter)

	_, err = segments.InTagValues(protocol.Rule{And: []protocol.Rule{{Members: true}, level}}, "tz", []string{"UTC"}, "audience")
	l, ok := fielderr.As(err)
	require.True(t, ok)
	require.Equal(t, "audience", l[0].Field)
}
