package segments_test

import (
	"encoding/json"
	"errors"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

// fuzzTags is ruleTags plus a banded tag with gaps between its bands.
var fuzzTags = func() map[string]games.Tag {
	tags := maps.Clone(ruleTags)
	tags["rank"] = games.Tag{Bands: []games.Band{{1, 10}, {20, 30}, {100, 100}}}
	return tags
}()

// FuzzResolve feeds arbitrary bytes through ParseRule, Validate and Resolve. None
// may panic; errors must be field errors (or ErrTooComplex); a parsed rule must
// round-trip; and every plan must keep its invariants and reach exactly the
// players its rule matches, for players derived from the rule's own vocabulary.
func FuzzResolve(f *testing.F) {
	for _, seed := range []string{
		`{"everyone":true}`,
		`{"server":["s1","s2"]}`,
		`{"tag":"region","in":["eu","na"]}`,
		`{"tag":"level","between":[25,39]}`,
		`{"tag":"rank","between":[5,25]}`,
		`{"players":["p1","p2"]}`,
		`{"and":[{"members":true},{"not":{"tag":"platform","in":["ios"]}}]}`,
		`{"or":[{"and":[{"tag":"region","in":["eu"]},{"tag":"level","between":[30,39]}]},{"not":{"server":["s1"]}},{"players":["p1"]}]}`,
		`{"not":{"and":[{"tag":"vip","between":[1,5]},{"or":[{"server":["s2"]},{"tag":"rank","between":[11,19]}]}]}}`,
		`{"and":[{"tag":"region","in":["eu","na"]},{"not":{"tag":"region","in":["eu"]}},{"tag":"level","between":[1,5]},{"tag":"level","between":[3,30]}]}`,
		`{"not":{"members":true}}`,
		`{"tag":"colour","in":["red"]}`,
		`{"tag":"level","between":[39,30]}`,
		`{"and":[],"colour":1}`,
		`{"server":["s1","s1"]}`,
		`{"not":{"not":{"not":{"not":{"everyone":true}}}}}`,
		`[1,{"a":null}]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkInput(t, data, data)
		// The same bytes read as a recipe for a rule reach the resolver far more
		// often than bytes that must first be valid JSON.
		b, err := json.Marshal(ruleFromBytes(&data, 1))
		require.NoError(t, err)
		checkInput(t, b, data)
	})
}

// checkInput runs one input through ParseRule, Validate and Resolve; seed varies
// the derived players.
func checkInput(t *testing.T, input, seed []byte) {
	r, err := segments.ParseRule(input, "rule")
	if err != nil {
		_, ok := fielderr.As(err)
		require.True(t, ok, "parse error is not a field error: %v", err)
		return
	}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	back, err := segments.ParseRule(b, "rule")
	require.NoError(t, err, "%s does not parse back", b)
	require.Equal(t, r, back)

	if err := segments.ValidateRule(r, "rule", fuzzTags); err != nil {
		_, ok := fielderr.As(err)
		require.True(t, ok, "validate error is not a field error: %v", err)
	}
	const memberCount = 3
	plan, err := segments.Resolve(r, fuzzTags, memberCount)
	if err != nil {
		_, ok := fielderr.As(err)
		require.True(t, ok || errors.Is(err, segments.ErrTooComplex), "resolve: %v", err)
		return
	}
	again, err := segments.Resolve(r, fuzzTags, memberCount)
	require.NoError(t, err)
	require.Equal(t, plan, again, "Resolve is not deterministic")
	checkPlan(t, r, plan, fuzzTags, memberCount, derivedPlayers(r, seed, fuzzTags))
}

// ruleFromBytes builds a rule from the bytes of *data, consuming them: one byte
// picks the form, the next ones its ids (a bit mask over a small vocabulary) or
// range. Lists never repeat an id, so most recipes parse.
func ruleFromBytes(data *[]byte, depth int) protocol.Rule {
	next := func() byte {
		if len(*data) == 0 {
			return 0
		}
		b := (*data)[0]
		*data = (*data)[1:]
		return b
	}
	pick := func(from []string) []string {
		mask := next()
		var out []string
		for i, s := range from {
			if mask&(1<<i) != 0 {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			out = from[:1]
		}
		return out
	}
	op := next()
	if depth >= segments.MaxDepth {
		op %= 7 // atoms only
	}
	switch op % 12 {
	case 0:
		return protocol.Rule{Everyone: true}
	case 1:
		return protocol.Rule{Server: pick(vocabServers)}
	case 2:
		return protocol.Rule{Players: pick(vocabPlayers)}
	case 3:
		return protocol.Rule{Members: true}
	case 4:
		tag := []string{"region", "platform", "colour"}[int(next())%3]
		vals := vocabEnums[tag]
		if vals == nil {
			vals = []string{"red", "blue"}
		}
		return protocol.Rule{Tag: tag, In: pick(vals)}
	case 5, 6:
		tag := []string{"level", "vip", "rank", "region"}[int(next())%4]
		lo := int64(int8(next()))
		return protocol.Rule{Tag: tag, Between: &[2]int64{lo, lo + int64(next()%64)}}
	case 7, 8:
		sub := ruleFromBytes(data, depth+1)
		return protocol.Rule{Not: &sub}
	default:
		subs := make([]protocol.Rule, 1+next()%4)
		for i := range subs {
			subs[i] = ruleFromBytes(data, depth+1)
		}
		if op%2 == 0 {
			return protocol.Rule{And: subs}
		}
		return protocol.Rule{Or: subs}
	}
}

// vocabulary is every id and number a rule mentions.
type vocabulary struct {
	servers, players []string
	nums             []int64
}

func (v *vocabulary) collect(r protocol.Rule) {
	v.servers = append(v.servers, r.Server...)
	v.players = append(v.players, r.Players...)
	if r.Between != nil {
		lo, hi := r.Between[0], r.Between[1]
		v.nums = append(v.nums, lo, hi, lo/2+hi/2)
		if lo > -1<<63 {
			v.nums = append(v.nums, lo-1)
		}
		if hi < 1<<63-1 {
			v.nums = append(v.nums, hi+1)
		}
	}
	for _, sub := range slices.Concat(r.And, r.Or) {
		v.collect(sub)
	}
	if r.Not != nil {
		v.collect(*r.Not)
	}
}

// derivedPlayers draws players that hit the edges of the rule: its servers and
// players plus strangers, every declared value, and numbers at and beside its
// range ends that lie inside a declared band, as a player's value always does.
func derivedPlayers(r protocol.Rule, data []byte, tags map[string]games.Tag) []testPlayer {
	var v vocabulary
	v.collect(r)
	v.servers = append(v.servers, "s-other")
	v.players = append(v.players, "p-other")
	h := fnv.New64a()
	h.Write(data)
	rng := rand.New(rand.NewPCG(h.Sum64(), 7))
	names := slices.Sorted(maps.Keys(tags))

	players := make([]testPlayer, 32)
	for i := range players {
		p := testPlayer{
			id:     v.players[rng.IntN(len(v.players))],
			server: v.servers[rng.IntN(len(v.servers))],
			enums:  map[string]string{},
			nums:   map[string]int64{},
			member: rng.IntN(2) == 0,
		}
		for _, name := range names {
			tag := tags[name]
			switch {
			case rng.IntN(5) == 0: // does not carry the tag
			case len(tag.Values) > 0:
				p.enums[name] = tag.Values[rng.IntN(len(tag.Values))]
			default:
				band := tag.Bands[rng.IntN(len(tag.Bands))]
				inBand := []int64{band.Lo(), band.Hi(), band.Lo()/2 + band.Hi()/2}
				for _, n := range v.nums {
					if band.Lo() <= n && n <= band.Hi() {
						inBand = append(inBand, n, n) // the rule's numbers, more often
					}
				}
				p.nums[name] = inBand[rng.IntN(len(inBand))]
			}
		}
		players[i] = p
	}
	return players
}
