package segments

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/protocol"
)

// MaxConjuncts bounds the disjunctive normal form of a rule. A rule whose normal
// form would be larger is refused with ErrTooComplex rather than turned into
// thousands of targets and filters.
const MaxConjuncts = 1024

// Work bounds, so that a rule within every limit still cannot make a preview take
// seconds: maxWork bounds the literals handled while normalizing (a full-size
// normal form, MaxConjuncts conjuncts of MaxNodes literals, several times over);
// maxPairs bounds the (conjunct, topic) pairs merged into a plan, e.g. 65 conjuncts
// each covered by a list of 1000 players.
const (
	maxWork  = 4 * MaxConjuncts * MaxNodes
	maxPairs = 1 << 16
)

// ErrTooComplex is returned (wrapped) by Resolve for a rule whose normal form has
// more than MaxConjuncts alternatives, whose resolution would cost too much, or
// whose residual filters cannot be kept within MaxNodes.
var ErrTooComplex = errors.New("segments: rule is too complex to resolve")

// Plan is how one rule reaches players: the topics to publish to and, where topics
// alone are too wide, the filter clients apply. Operators preview it before sending.
type Plan struct {
	// Exact is true when no target has a filter: topics alone select the audience.
	Exact bool `json:"exact"`
	// Topics is how many topics a send publishes to: one per non-member target,
	// plus one per member when a members target exists.
	Topics int64 `json:"topics"`
	// Players is the member count when a members target exists, else 0 (topic
	// audiences are not counted: Herald does not know who subscribes).
	Players int64 `json:"players"`
	// Targets are sorted by scope (all, server, tag, player), then keys, with the
	// members target last.
	Targets []Target `json:"targets"`
}

// Target is one topic base (see protocol.Base) and the residual filter clients on it
// evaluate against their own attributes.
type Target struct {
	// Scope and Keys name the topic base: all (no keys), server [server],
	// tag [tag, value or band name such as "30-39"], player [player id].
	Scope protocol.Scope `json:"scope"`
	Keys  []string       `json:"keys,omitempty"`
	// Members marks the target of the segment's uploaded member list: scope
	// player, no keys, one topic per member.
	Members bool `json:"members,omitempty"`
	// Filter is nil when everyone subscribed to the topic is in the audience.
	Filter *protocol.Rule `json:"filter,omitempty"`
}

// Resolve turns a rule into a delivery plan, as the README's "Audiences and
// plans" describes it. It is pure: the plan depends only on the rule, the
// game's tag schema and the member count of the segment's list (used when the
// rule names "members").
//
// The rule is put in negation normal form and then disjunctive normal form. Each
// conjunct gets one cover, the atom whose topics reach the fewest players, and the
// rest of the conjunct becomes its filter:
//   - "members" (never part of a filter: clients cannot evaluate it);
//   - else "players", one exact topic per id;
//   - else "server": servers are not declared by the game, so we assume a shard is
//     narrower than any tag value;
//   - else the tag atom covering the smallest share of its tag's declared values or
//     bands; a range is exact only when every band it overlaps lies inside it;
//   - else (negations only, everyone) the all topic.
//
// The union of conjuncts is de-duplicated per topic, or-ing filters. Resolve assumes
// a player subscribes to the band containing its value; a value outside every
// declared band is reached only through other topics.
//
// Resolve expects a rule that passed Validate, but refuses only what would make the
// plan wrong: "members" under "not" (a fielderr.List, as from Validate) and rules
// too complex to resolve (an error wrapping ErrTooComplex). Otherwise it degrades
// soundly, for instance after a schema change: an atom on an unknown tag, or a range
// overlapping no band, cannot be a cover and stays in the filter.
func Resolve(r protocol.Rule, tags map[string]games.Tag, memberCount int64) (Plan, error) {
	var l fielderr.List
	validateRule(&l, r, "rule", nil, false, 1) // structure and members polarity only
	if err := l.Err(); err != nil {
		return Plan{}, err
	}
	n := normalizer{}
	conjuncts, err := n.dnf(r, false)
	if err != nil {
		return Plan{}, err
	}
	m := merger{index: map[slotKey]*slot{}, filterIndex: map[string]int{}}
	for _, c := range conjuncts {
		// Literals in rule order, so that filters read like the rule.
		slices.SortStableFunc(c, func(a, b *literal) int { return cmp.Compare(a.pos, b.pos) })
		for _, cv := range cover(c, tags) {
			if err := m.add(cv); err != nil {
				return Plan{}, err
			}
		}
	}
	targets, err := m.targets(r)
	if err != nil {
		return Plan{}, err
	}
	plan := Plan{Exact: true, Targets: targets}
	for _, t := range targets {
		plan.Exact = plan.Exact && t.Filter == nil
		if t.Members {
			plan.Topics += max(memberCount, 0)
			plan.Players = max(memberCount, 0)
		} else {
			plan.Topics++
		}
	}
	return plan, nil
}

func tooComplex(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrTooComplex}, args...)...)
}

// coverage is the cover of one conjunct: the topics of one scope it publishes to
// (one per key; none for all and members) and the filter that remains.
type coverage struct {
	scope   protocol.Scope
	tag     string
	keys    []string
	members bool
	rest    residual
}

// cover chooses the topics of one conjunct, in the order the README's
// "Audiences and plans" gives. It returns one coverage, or two when a range
// covers some bands whole (no filter needed for them) and others only partly
// (the range stays in their filter).
func cover(c []*literal, tags map[string]games.Tag) []coverage {
	for i, l := range c {
		if !l.neg && l.form == protocol.FormMembers {
			return []coverage{{scope: protocol.ScopePlayer, members: true, rest: residual{c, i}}}
		}
	}
	for _, f := range []protocol.Form{protocol.FormPlayers, protocol.FormServer} {
		best := -1
		for i, l := range c {
			if !l.neg && l.form == f && (best < 0 || len(l.list()) < len(c[best].list())) {
				best = i
			}
		}
		if best >= 0 {
			scope := protocol.ScopePlayer
			if f == protocol.FormServer {
				scope = protocol.ScopeServer
			}
			return []coverage{{scope: scope, keys: c[best].list(), rest: residual{c, best}}}
		}
	}
	if tc, ok := bestTag(c, tags); ok {
		var out []coverage
		if len(tc.inside) > 0 {
			out = append(out, coverage{scope: protocol.ScopeTag, tag: tc.tag, keys: tc.inside, rest: residual{c, tc.i}})
		}
		if len(tc.partly) > 0 { // a partly covered band keeps the range in its filter
			out = append(out, coverage{scope: protocol.ScopeTag, tag: tc.tag, keys: tc.partly, rest: residual{c, -1}})
		}
		return out
	}
	return []coverage{{scope: protocol.ScopeAll, rest: residual{c, -1}}}
}

// tagCover is a candidate cover among the tag literals of a conjunct: literal i,
// reaching num of the den declared values or bands of its tag, through the topics
// of inside (values, or bands wholly inside the range) and partly (bands the
// range covers only in part).
type tagCover struct {
	i              int
	num, den       int64
	inside, partly []string
	tag            string
}

// better orders candidates: smaller share of the tag's domain, then fewer topics,
// then tag name, then position in the conjunct.
func (a tagCover) better(b tagCover) bool {
	return cmp.Or(
		cmp.Compare(a.num*b.den, b.num*a.den),
		cmp.Compare(len(a.inside)+len(a.partly), len(b.inside)+len(b.partly)),
		cmp.Compare(a.tag, b.tag),
		cmp.Compare(a.i, b.i),
	) < 0
}

// bestTag picks the tag cover of a conjunct. Atoms the schema cannot cover (an
// unknown tag, "in" on a banded tag, a range overlapping no band) are skipped.
func bestTag(c []*literal, tags map[string]games.Tag) (tagCover, bool) {
	var best tagCover
	found := false
	for i, l := range c {
		t, known := tags[l.atom.Tag]
		if l.neg || !known {
			continue
		}
		tc := tagCover{i: i, tag: l.atom.Tag}
		switch l.form {
		case protocol.FormIn:
			if len(t.Values) == 0 || len(t.Bands) > 0 {
				continue
			}
			tc.num, tc.den, tc.inside = int64(len(l.atom.In)), int64(len(t.Values)), l.atom.In
		case protocol.FormBetween:
			bands := overlapping(t.Bands, *l.atom.Between)
			if len(bands) == 0 {
				continue
			}
			tc.num, tc.den = int64(len(bands)), int64(len(t.Bands))
			for _, b := range bands {
				if l.atom.Between[0] <= b.Lo() && b.Hi() <= l.atom.Between[1] {
					tc.inside = append(tc.inside, b.Name())
				} else {
					tc.partly = append(tc.partly, b.Name())
				}
			}
		default:
			continue
		}
		if !found || tc.better(best) {
			best, found = tc, true
		}
	}
	return best, found
}

// residual is a conjunct without its cover, literal skip (-1: none): the filter of
// a coverage. It becomes a Rule only if the plan keeps it.
type residual struct {
	c    []*literal
	skip int
}

// key identifies the filter; nodes is its size in rule nodes, 0 for no filter.
func (r residual) key() (key string, nodes int) {
	var b strings.Builder
	for i, l := range r.c {
		if i == r.skip {
			continue
		}
		if nodes++; l.neg {
			nodes++
			b.WriteByte('!')
		}
		b.WriteString(l.json())
		b.WriteByte('\n')
	}
	if len(r.c) > 2 || len(r.c) == 2 && r.skip < 0 {
		nodes++ // the "and"
	}
	return b.String(), nodes
}

// rule is the filter: the remaining literal alone, or their "and".
func (r residual) rule() *protocol.Rule {
	var rs []protocol.Rule
	for i, l := range r.c {
		if i != r.skip {
			rs = append(rs, l.rule())
		}
	}
	if len(rs) == 1 {
		return &rs[0]
	}
	return &protocol.Rule{And: rs}
}
