package segments

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/topics"
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

// Target is one topic base (see topics.Base) and the residual filter clients on it
// evaluate against their own attributes.
type Target struct {
	// Scope and Keys name the topic base: all (no keys), server [server],
	// tag [tag, value or band name such as "30-39"], player [player id].
	Scope topics.Scope `json:"scope"`
	Keys  []string     `json:"keys,omitempty"`
	// Members marks the target of the segment's uploaded member list: scope
	// player, no keys, one topic per member.
	Members bool `json:"members,omitempty"`
	// Filter is nil when everyone subscribed to the topic is in the audience.
	Filter *Rule `json:"filter,omitempty"`
}

// Resolve turns a rule into a delivery plan, following DESIGN section 5. It is pure:
// the plan depends only on the rule, the game's tag schema and the member count of
// the segment's list (used when the rule names "members").
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
func Resolve(r Rule, tags map[string]games.Tag, memberCount int64) (Plan, error) {
	var l fielderr.List
	r.validate(&l, "rule", nil, false, 1) // structure and members polarity only
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

// literal is an atom or a negated atom of the normal form, with what simplify
// needs computed once.
type literal struct {
	neg  bool
	atom Rule
	form form
	kind string // the attribute the atom constrains, e.g. "server", "in\x00region"
	key  string // the atom's JSON, computed once (see json); "" until then
	pos  int    // position of the atom in the rule
}

func newLiteral(atom Rule, neg bool, pos int) *literal {
	l := &literal{neg: neg, atom: atom, form: atom.form(), pos: pos}
	if neg {
		l.json() // the identity of a negated literal, see simplify
	}
	switch l.form {
	case formServer:
		l.kind = "server"
	case formPlayers:
		l.kind = "players"
	case formIn:
		l.kind = "in\x00" + atom.Tag
	case formBetween:
		l.kind = "between\x00" + atom.Tag
	case formEveryone:
		l.kind = "everyone"
	default:
		l.kind = "members"
	}
	return l
}

// list is the ids of a server, players or in atom.
func (l *literal) list() []string {
	switch l.form {
	case formServer:
		return l.atom.Server
	case formPlayers:
		return l.atom.Players
	}
	return l.atom.In
}

// withList is a copy of positive l holding list instead of its own ids. Literals
// are shared between conjuncts, so they are never changed in place.
func (l literal) withList(list []string, pos int) *literal {
	switch l.form {
	case formServer:
		l.atom = Rule{Server: list}
	case formPlayers:
		l.atom = Rule{Players: list}
	default:
		l.atom = Rule{Tag: l.atom.Tag, In: list}
	}
	l.pos, l.key = min(l.pos, pos), ""
	return &l
}

// json returns the JSON of l's atom, computing it once: literals are shared by
// many conjuncts, and long lists are costly to encode over and over.
func (l *literal) json() string {
	if l.key == "" {
		l.key = l.atom.String()
	}
	return l.key
}

// rule is the literal as it appears in a filter.
func (l *literal) rule() Rule {
	if l.neg {
		a := l.atom
		return Rule{Not: &a}
	}
	return l.atom
}

// normalizer computes normal forms, numbering atoms and counting its work.
type normalizer struct {
	atoms int
	work  int
}

// dnf returns the disjunctive normal form of r (of not r when neg): a list of
// conjuncts, each simplified. Pushing not inward on the way (not(and) = or(not),
// not(or) = and(not), not(not x) = x) gives the negation normal form at once.
func (n *normalizer) dnf(r Rule, neg bool) ([][]*literal, error) {
	switch r.form() {
	case formNot:
		return n.dnf(*r.Not, !neg)
	case formAnd, formOr:
	default:
		n.atoms++
		if c, ok := n.simplify([]*literal{newLiteral(r, neg, n.atoms)}); ok {
			return [][]*literal{c}, nil
		}
		return nil, nil
	}
	rules, isAnd := r.And, true
	if r.Or != nil {
		rules, isAnd = r.Or, false
	}
	parts := make([][][]*literal, len(rules))
	total := 0
	for i, sub := range rules {
		d, err := n.dnf(sub, neg)
		if err != nil {
			return nil, err
		}
		parts[i], total = d, total+len(d)
	}
	if isAnd == neg { // a disjunction: the union of its members' conjuncts
		if total > MaxConjuncts {
			return nil, tooComplex("its normal form has more than %d alternatives", MaxConjuncts)
		}
		return slices.Concat(parts...), nil
	}
	// A conjunction: the cross product. Single conjuncts first, so that the
	// product grows as late as possible; simplify keeps no order, Resolve sorts.
	slices.SortStableFunc(parts, func(a, b [][]*literal) int { return cmp.Compare(len(a), len(b)) })
	acc := [][]*literal{nil}
	for _, d := range parts {
		if len(acc)*len(d) > MaxConjuncts {
			return nil, tooComplex("its normal form has more than %d alternatives", MaxConjuncts)
		}
		next := make([][]*literal, 0, len(acc)*len(d))
		for _, a := range acc {
			for _, b := range d {
				c, ok := n.simplify(slices.Concat(a, b))
				if n.work > maxWork {
					return nil, tooComplex("normalizing it takes too long")
				}
				if ok {
					next = append(next, c)
				}
			}
		}
		if acc = next; len(acc) == 0 {
			return nil, nil // false
		}
	}
	return acc, nil
}

// simplify tidies one conjunct, reporting false when it can never hold. A player
// has one server, one id and one value per tag, so positive lists of the same kind
// intersect, ranges of the same tag intersect, and a negated list is subtracted
// from a positive list of the same kind. "everyone" is dropped (it is true); "not
// everyone", an empty intersection or a range excluded by its negation make the
// conjunct false. Repeated literals are dropped. Lists are copied, never changed.
// The literals and list entries handled count as work.
func (n *normalizer) simplify(c []*literal) ([]*literal, bool) {
	n.work += len(c)
	out := make([]*literal, 0, len(c))
	pos := make(map[string]int, len(c)) // index in out of the positive literal of each kind
	for _, l := range c {
		if l.neg {
			continue
		}
		i, dup := pos[l.kind]
		switch {
		case l.form == formEveryone:
		case !dup:
			pos[l.kind] = len(out)
			out = append(out, l)
		case l.form == formServer, l.form == formPlayers, l.form == formIn:
			n.work += len(out[i].list()) + len(l.list())
			kept := filterList(out[i].list(), l.list(), true)
			if len(kept) == 0 {
				return nil, false
			}
			out[i] = out[i].withList(kept, l.pos)
		case l.form == formBetween:
			a, b := *out[i].atom.Between, *l.atom.Between
			rng := [2]int64{max(a[0], b[0]), min(a[1], b[1])}
			if rng[0] > rng[1] {
				return nil, false
			}
			merged := *out[i]
			merged.atom, merged.pos, merged.key = Rule{Tag: l.atom.Tag, Between: &rng}, min(merged.pos, l.pos), ""
			out[i] = &merged
		}
	}
	seen := make(map[string]bool)
	for _, l := range c {
		if !l.neg {
			continue
		}
		i, has := pos[l.kind]
		switch {
		case l.form == formEveryone:
			return nil, false
		case has && (l.form == formServer || l.form == formPlayers || l.form == formIn):
			n.work += len(out[i].list()) + len(l.list())
			kept := filterList(out[i].list(), l.list(), false)
			if len(kept) == 0 {
				return nil, false
			}
			if len(kept) < len(out[i].list()) {
				out[i] = out[i].withList(kept, out[i].pos)
			}
			continue
		case has && l.form == formBetween:
			a, b := *out[i].atom.Between, *l.atom.Between
			if b[0] <= a[0] && a[1] <= b[1] {
				return nil, false
			}
		}
		if !seen[l.key] {
			seen[l.key] = true
			out = append(out, l)
		}
	}
	return out, true
}

// filterList returns the ids of list that are (keep) or are not (!keep) in other,
// as a new slice.
func filterList(list, other []string, keep bool) []string {
	in := slices.Contains[[]string]
	if len(list)*len(other) > 256 {
		set := make(map[string]bool, len(other))
		for _, s := range other {
			set[s] = true
		}
		in = func(_ []string, s string) bool { return set[s] }
	}
	var out []string
	for _, s := range list {
		if in(other, s) == keep {
			out = append(out, s)
		}
	}
	return out
}

// coverage is the cover of one conjunct: the topics of one scope it publishes to
// (one per key; none for all and members) and the filter that remains.
type coverage struct {
	scope   topics.Scope
	tag     string
	keys    []string
	members bool
	rest    residual
}

// cover chooses the topics of one conjunct, in the order of DESIGN section 5.
// It returns one coverage, or two when a range covers some bands whole (no filter
// needed for them) and others only partly (the range stays in their filter).
func cover(c []*literal, tags map[string]games.Tag) []coverage {
	for i, l := range c {
		if !l.neg && l.form == formMembers {
			return []coverage{{scope: topics.ScopePlayer, members: true, rest: residual{c, i}}}
		}
	}
	for _, f := range []form{formPlayers, formServer} {
		best := -1
		for i, l := range c {
			if !l.neg && l.form == f && (best < 0 || len(l.list()) < len(c[best].list())) {
				best = i
			}
		}
		if best >= 0 {
			scope := topics.ScopePlayer
			if f == formServer {
				scope = topics.ScopeServer
			}
			return []coverage{{scope: scope, keys: c[best].list(), rest: residual{c, best}}}
		}
	}
	if tc, ok := bestTag(c, tags); ok {
		var out []coverage
		if len(tc.inside) > 0 {
			out = append(out, coverage{scope: topics.ScopeTag, tag: tc.tag, keys: tc.inside, rest: residual{c, tc.i}})
		}
		if len(tc.partly) > 0 { // a partly covered band keeps the range in its filter
			out = append(out, coverage{scope: topics.ScopeTag, tag: tc.tag, keys: tc.partly, rest: residual{c, -1}})
		}
		return out
	}
	return []coverage{{scope: topics.ScopeAll, rest: residual{c, -1}}}
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
		case formIn:
			if len(t.Values) == 0 || len(t.Bands) > 0 {
				continue
			}
			tc.num, tc.den, tc.inside = int64(len(l.atom.In)), int64(len(t.Values)), l.atom.In
		case formBetween:
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
func (r residual) rule() *Rule {
	var rs []Rule
	for i, l := range r.c {
		if i != r.skip {
			rs = append(rs, l.rule())
		}
	}
	if len(rs) == 1 {
		return &rs[0]
	}
	return &Rule{And: rs}
}

// merger unions the coverages of all conjuncts, one slot per topic. Filters are
// interned, so that a filter shared by many topics is stored once.
type merger struct {
	index       map[slotKey]*slot
	slots       []*slot
	filters     []residual
	filterNodes []int
	filterIndex map[string]int
	pairs       int
}

type slotKey struct {
	scope   topics.Scope
	k0, k1  string
	members bool
}

type slot struct {
	t     Target // without its filter
	open  bool   // some conjunct reaches this topic without a filter
	fids  []int  // the distinct filters or-ed on this topic
	nodes int    // nodes of their "or"
}

func (m *merger) add(cv coverage) error {
	fid := -1
	if key, n := cv.rest.key(); n > 0 {
		var ok bool
		if fid, ok = m.filterIndex[key]; !ok {
			fid = len(m.filters)
			m.filterIndex[key] = fid
			m.filters = append(m.filters, cv.rest)
			m.filterNodes = append(m.filterNodes, n)
		}
	}
	keys := cv.keys
	if cv.scope == topics.ScopeAll || cv.members {
		keys = []string{""}
	}
	if m.pairs += len(keys); m.pairs > maxPairs {
		return tooComplex("its plan has too many targets")
	}
	for _, k := range keys {
		key := slotKey{scope: cv.scope, k0: k, members: cv.members}
		if cv.scope == topics.ScopeTag {
			key.k0, key.k1 = cv.tag, k
		}
		s, ok := m.index[key]
		if !ok {
			s = &slot{t: Target{Scope: cv.scope, Members: cv.members}}
			switch {
			case cv.scope == topics.ScopeTag:
				s.t.Keys = []string{cv.tag, k}
			case cv.scope != topics.ScopeAll && !cv.members:
				s.t.Keys = []string{k}
			}
			m.index[key] = s
			m.slots = append(m.slots, s)
		}
		switch {
		case fid < 0:
			s.open = true
		case s.open || s.nodes > MaxNodes || slices.Contains(s.fids, fid):
		default:
			s.fids = append(s.fids, fid)
			if s.nodes += m.filterNodes[fid]; len(s.fids) == 2 {
				s.nodes++ // the "or"
			}
		}
	}
	return nil
}

// targets returns the merged, sorted targets. A filter that would exceed MaxNodes
// is replaced by the whole rule, which is as sound (a player reached through any
// of the rule's topics gets the message exactly when the rule holds for it)
// unless the rule names members, which clients cannot evaluate.
func (m *merger) targets(r Rule) ([]Target, error) {
	out := make([]Target, 0, len(m.slots))
	for _, s := range m.slots {
		t := s.t
		switch {
		case s.open && t.Scope == topics.ScopeAll:
			return []Target{t}, nil // everyone: nothing else matters
		case s.open:
		case s.nodes > MaxNodes:
			if r.UsesMembers() {
				return nil, tooComplex("a filter would have more than %d nodes", MaxNodes)
			}
			t.Filter = &r
		case len(s.fids) == 1:
			t.Filter = m.filters[s.fids[0]].rule()
		default:
			f := Rule{Or: make([]Rule, len(s.fids))}
			for i, fid := range s.fids {
				f.Or[i] = *m.filters[fid].rule()
			}
			t.Filter = &f
		}
		out = append(out, t)
	}
	rank := map[topics.Scope]int{topics.ScopeAll: 0, topics.ScopeServer: 1, topics.ScopeTag: 2, topics.ScopePlayer: 3}
	slices.SortFunc(out, func(a, b Target) int {
		return cmp.Or(
			cmp.Compare(rank[a.Scope], rank[b.Scope]),
			boolCompare(a.Members, b.Members),
			slices.Compare(a.Keys, b.Keys),
		)
	})
	return out, nil
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// nodes counts the rule objects in r.
func nodes(r Rule) int {
	n := 1
	if r.Not != nil {
		n += nodes(*r.Not)
	}
	for _, sub := range slices.Concat(r.And, r.Or) {
		n += nodes(sub)
	}
	return n
}
