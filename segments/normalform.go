package segments

import (
	"cmp"
	"slices"

	"github.com/heraldpush/herald/protocol"
)

// literal is an atom or a negated atom of the normal form, with what simplify
// needs computed once.
type literal struct {
	neg  bool
	atom protocol.Rule
	form protocol.Form
	kind string // the attribute the atom constrains, e.g. "server", "in\x00region"
	key  string // the atom's JSON, computed once (see json); "" until then
	pos  int    // position of the atom in the rule
}

func newLiteral(atom protocol.Rule, neg bool, pos int) *literal {
	l := &literal{neg: neg, atom: atom, form: atom.Form(), pos: pos}
	if neg {
		l.json() // the identity of a negated literal, see simplify
	}
	switch l.form {
	case protocol.FormServer:
		l.kind = "server"
	case protocol.FormPlayers:
		l.kind = "players"
	case protocol.FormIn:
		l.kind = "in\x00" + atom.Tag
	case protocol.FormBetween:
		l.kind = "between\x00" + atom.Tag
	case protocol.FormEveryone:
		l.kind = "everyone"
	default:
		l.kind = "members"
	}
	return l
}

// list is the ids of a server, players or in atom.
func (l *literal) list() []string {
	switch l.form {
	case protocol.FormServer:
		return l.atom.Server
	case protocol.FormPlayers:
		return l.atom.Players
	}
	return l.atom.In
}

// withList is a copy of positive l holding list instead of its own ids. Literals
// are shared between conjuncts, so they are never changed in place.
func (l literal) withList(list []string, pos int) *literal {
	switch l.form {
	case protocol.FormServer:
		l.atom = protocol.Rule{Server: list}
	case protocol.FormPlayers:
		l.atom = protocol.Rule{Players: list}
	default:
		l.atom = protocol.Rule{Tag: l.atom.Tag, In: list}
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
func (l *literal) rule() protocol.Rule {
	if l.neg {
		a := l.atom
		return protocol.Rule{Not: &a}
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
func (n *normalizer) dnf(r protocol.Rule, neg bool) ([][]*literal, error) {
	switch r.Form() {
	case protocol.FormNot:
		return n.dnf(*r.Not, !neg)
	case protocol.FormAnd, protocol.FormOr:
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
		case l.form == protocol.FormEveryone:
		case !dup:
			pos[l.kind] = len(out)
			out = append(out, l)
		case l.form == protocol.FormServer, l.form == protocol.FormPlayers, l.form == protocol.FormIn:
			n.work += len(out[i].list()) + len(l.list())
			kept := filterList(out[i].list(), l.list(), true)
			if len(kept) == 0 {
				return nil, false
			}
			out[i] = out[i].withList(kept, l.pos)
		case l.form == protocol.FormBetween:
			a, b := *out[i].atom.Between, *l.atom.Between
			rng := [2]int64{max(a[0], b[0]), min(a[1], b[1])}
			if rng[0] > rng[1] {
				return nil, false
			}
			merged := *out[i]
			merged.atom, merged.pos, merged.key = protocol.Rule{Tag: l.atom.Tag, Between: &rng}, min(merged.pos, l.pos), ""
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
		case l.form == protocol.FormEveryone:
			return nil, false
		case has && (l.form == protocol.FormServer || l.form == protocol.FormPlayers || l.form == protocol.FormIn):
			n.work += len(out[i].list()) + len(l.list())
			kept := filterList(out[i].list(), l.list(), false)
			if len(kept) == 0 {
				return nil, false
			}
			if len(kept) < len(out[i].list()) {
				out[i] = out[i].withList(kept, out[i].pos)
			}
			continue
		case has && l.form == protocol.FormBetween:
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
