package segments

import (
	"cmp"
	"slices"

	"github.com/heraldpush/herald/protocol"
)

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
	scope   protocol.Scope
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
	if cv.scope == protocol.ScopeAll || cv.members {
		keys = []string{""}
	}
	if m.pairs += len(keys); m.pairs > maxPairs {
		return tooComplex("its plan has too many targets")
	}
	for _, k := range keys {
		key := slotKey{scope: cv.scope, k0: k, members: cv.members}
		if cv.scope == protocol.ScopeTag {
			key.k0, key.k1 = cv.tag, k
		}
		s, ok := m.index[key]
		if !ok {
			s = &slot{t: Target{Scope: cv.scope, Members: cv.members}}
			switch {
			case cv.scope == protocol.ScopeTag:
				s.t.Keys = []string{cv.tag, k}
			case cv.scope != protocol.ScopeAll && !cv.members:
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
func (m *merger) targets(r protocol.Rule) ([]Target, error) {
	out := make([]Target, 0, len(m.slots))
	for _, s := range m.slots {
		t := s.t
		switch {
		case s.open && t.Scope == protocol.ScopeAll:
			return []Target{t}, nil // everyone: nothing else matters
		case s.open:
		case s.nodes > MaxNodes:
			if UsesMembers(r) {
				return nil, tooComplex("a filter would have more than %d nodes", MaxNodes)
			}
			t.Filter = &r
		case len(s.fids) == 1:
			t.Filter = m.filters[s.fids[0]].rule()
		default:
			f := protocol.Rule{Or: make([]protocol.Rule, len(s.fids))}
			for i, fid := range s.fids {
				f.Or[i] = *m.filters[fid].rule()
			}
			t.Filter = &f
		}
		out = append(out, t)
	}
	rank := map[protocol.Scope]int{protocol.ScopeAll: 0, protocol.ScopeServer: 1, protocol.ScopeTag: 2, protocol.ScopePlayer: 3}
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
