package segments_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

// ruleTags is the tag schema the rule, resolve and fuzz tests check against.
var ruleTags = map[string]games.Tag{
	"region":   {Values: []string{"eu", "na", "asia", "sa"}},
	"platform": {Values: []string{"ios", "android", "pc"}},
	"level":    {Bands: []games.Band{{1, 9}, {10, 19}, {20, 29}, {30, 39}, {40, 49}, {50, 99}}},
	"vip":      {Bands: []games.Band{{0, 0}, {1, 5}, {6, 10}}},
}

// errFields returns the field paths of a fielderr.List error.
func errFields(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	l, ok := fielderr.As(err)
	require.True(t, ok, "want a fielderr.List, got %T: %v", err, err)
	fields := make([]string, len(l))
	for i, e := range l {
		fields[i] = e.Field
	}
	return fields
}

func idList(prefix string, n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprintf("%s%d", prefix, i))
	}
	return "[" + strings.Join(ids, ",") + "]"
}

func nestedNots(n int) string {
	return strings.Repeat(`{"not":`, n-1) + `{"everyone":true}` + strings.Repeat(`}`, n-1)
}

func orOf(n int) string {
	return `{"or":[` + strings.TrimSuffix(strings.Repeat(`{"everyone":true},`, n), ",") + `]}`
}

func TestParseRuleErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty input", ``, []string{"rule"}},
		{"bad JSON", `{"everyone":`, []string{"rule"}},
		{"trailing data", `{"everyone":true} {}`, []string{"rule"}},
		{"null", `null`, []string{"rule"}},
		{"array", `[]`, []string{"rule"}},
		{"string", `"everyone"`, []string{"rule"}},
		{"empty object", `{}`, []string{"rule"}},
		{"unknown key", `{"colour":"red"}`, []string{"rule.colour"}},
		{"unknown key nested", `{"and":[{"everyone":true},{"colour":1}]}`, []string{"rule.and[1].colour"}},
		{"unknown key beside a form", `{"and":[{"everyone":true,"colour":1}]}`, []string{"rule.and[0].colour"}},
		{"case matters", `{"Everyone":true}`, []string{"rule.Everyone"}},
		{"repeated key", `{"everyone":true,"everyone":true}`, []string{"rule.everyone"}},
		{"two forms", `{"everyone":true,"server":["s1"]}`, []string{"rule.server"}},
		{"everyone false", `{"everyone":false}`, []string{"rule.everyone"}},
		{"everyone number", `{"everyone":1}`, []string{"rule.everyone"}},
		{"everyone null", `{"everyone":null}`, []string{"rule.everyone"}},
		{"members false", `{"members":false}`, []string{"rule.members"}},
		{"server empty", `{"server":[]}`, []string{"rule.server"}},
		{"server null", `{"server":null}`, []string{"rule.server"}},
		{"server string", `{"server":"s1"}`, []string{"rule.server"}},
		{"server element number", `{"server":["s1",2]}`, []string{"rule.server[1]"}},
		{"server element null", `{"server":["s1",null]}`, []string{"rule.server[1]"}},
		{"server id slash", `{"server":["s1","s/2"]}`, []string{"rule.server[1]"}},
		{"server id dollar", `{"server":["$SYS"]}`, []string{"rule.server[0]"}},
		{"server id empty", `{"server":[""]}`, []string{"rule.server[0]"}},
		{"server id too long", `{"server":["` + strings.Repeat("s", 129) + `"]}`, []string{"rule.server[0]"}},
		{"server repeated", `{"server":["s1","s2","s1"]}`, []string{"rule.server[2]"}},
		{"server too many", `{"server":` + idList("s", segments.MaxListLen+1) + `}`, []string{"rule.server"}},
		{"tag without in", `{"tag":"region"}`, []string{"rule"}},
		{"in without tag", `{"in":["eu"]}`, []string{"rule.tag"}},
		{"between without tag", `{"between":[1,2]}`, []string{"rule.tag"}},
		{"in and between", `{"tag":"region","in":["eu"],"between":[1,2]}`, []string{"rule.between"}},
		{"tag with space", `{"tag":"re gion","in":["eu"]}`, []string{"rule.tag"}},
		{"tag number", `{"tag":7,"in":["eu"]}`, []string{"rule.tag"}},
		{"tag null", `{"tag":null,"in":["eu"]}`, []string{"rule.tag"}},
		{"in empty", `{"tag":"region","in":[]}`, []string{"rule.in"}},
		{"in bad value", `{"tag":"region","in":["eu","+"]}`, []string{"rule.in[1]"}},
		{"in repeated", `{"tag":"region","in":["eu","eu"]}`, []string{"rule.in[1]"}},
		{"in too many", `{"tag":"region","in":` + idList("v", segments.MaxListLen+1) + `}`, []string{"rule.in"}},
		{"between reversed", `{"tag":"level","between":[39,30]}`, []string{"rule.between"}},
		{"between one", `{"tag":"level","between":[1]}`, []string{"rule.between"}},
		{"between three", `{"tag":"level","between":[1,2,3]}`, []string{"rule.between"}},
		{"between empty", `{"tag":"level","between":[]}`, []string{"rule.between"}},
		{"between null", `{"tag":"level","between":null}`, []string{"rule.between"}},
		{"between object", `{"tag":"level","between":{"lo":1}}`, []string{"rule.between"}},
		{"between fraction", `{"tag":"level","between":[1.5,2]}`, []string{"rule.between[0]"}},
		{"between exponent", `{"tag":"level","between":[1,2e1]}`, []string{"rule.between[1]"}},
		{"between string", `{"tag":"level","between":[1,"2"]}`, []string{"rule.between[1]"}},
		{"between overflow", `{"tag":"level","between":[1,99999999999999999999]}`, []string{"rule.between[1]"}},
		{"players empty", `{"players":[]}`, []string{"rule.players"}},
		{"players bad id", `{"players":["p1","p 2"]}`, []string{"rule.players[1]"}},
		{"players repeated", `{"players":["p1","p1"]}`, []string{"rule.players[1]"}},
		{"players too many", `{"players":` + idList("p", segments.MaxPlayers+1) + `}`, []string{"rule.players"}},
		{"and empty", `{"and":[]}`, []string{"rule.and"}},
		{"and object", `{"and":{"everyone":true}}`, []string{"rule.and"}},
		{"or null", `{"or":null}`, []string{"rule.or"}},
		{"or null element", `{"or":[{"everyone":true},null]}`, []string{"rule.or[1]"}},
		{"not null", `{"not":null}`, []string{"rule.not"}},
		{"not array", `{"not":[{"everyone":true}]}`, []string{"rule.not"}},
		{"deep value", `{"and":[{"everyone":true},{"not":{"tag":"region","in":["eu","eu"]}}]}`, []string{"rule.and[1].not.in[1]"}},
		{"several errors", `{"and":[{"colour":1},{"server":[]},{"players":["ok","no/"]}]}`,
			[]string{"rule.and[0].colour", "rule.and[1].server", "rule.and[2].players[1]"}},
		{"too deep", nestedNots(segments.MaxDepth + 1), []string{"rule" + strings.Repeat(".not", segments.MaxDepth)}},
		{"too many nodes", orOf(segments.MaxNodes), []string{fmt.Sprintf("rule.or[%d]", segments.MaxNodes-1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := segments.ParseRule([]byte(tt.in), "rule")
			require.Equal(t, tt.want, errFields(t, err))
			require.Equal(t, protocol.Rule{}, r)
		})
	}
}

func TestParseRuleLimits(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		nestedNots(segments.MaxDepth),
		orOf(segments.MaxNodes - 1),
		`{"players":` + idList("p", segments.MaxPlayers) + `}`,
		`{"server":` + idList("s", segments.MaxListLen) + `}`,
		`{"tag":"level","between":[-9223372036854775808,9223372036854775807]}`,
	} {
		_, err := segments.ParseRule([]byte(in), "rule")
		require.NoError(t, err)
	}
}

func TestParseRulePath(t *testing.T) {
	t.Parallel()
	_, err := segments.ParseRule([]byte(`{"server":[]}`), "audience.rule")
	require.Equal(t, []string{"audience.rule.server"}, errFields(t, err))
}

func TestRuleRoundTrip(t *testing.T) {
	t.Parallel()
	canonical := []string{
		`{"everyone":true}`,
		`{"members":true}`,
		`{"server":["s2","s1"]}`,
		`{"players":["p1","p2"]}`,
		`{"tag":"region","in":["na","eu"]}`,
		`{"tag":"level","between":[-5,39]}`,
		`{"not":{"tag":"vip","between":[0,0]}}`,
		`{"and":[{"members":true},{"or":[{"server":["s1"]},{"not":{"players":["p~1"]}}]}]}`,
		`{"or":[{"and":[{"tag":"region","in":["eu"]},{"tag":"level","between":[30,39]}]},{"everyone":true}]}`,
	}
	for _, in := range canonical {
		r, err := segments.ParseRule([]byte(in), "rule")
		require.NoError(t, err, in)
		out, err := json.Marshal(r)
		require.NoError(t, err)
		require.Equal(t, in, string(out))
		require.Equal(t, in, r.String())

		var back segments.StrictRule
		require.NoError(t, json.Unmarshal(out, &back))
		require.Equal(t, r, back.Rule)
	}

	// Whitespace and key order (Postgres jsonb sorts keys) come back canonical.
	r, err := segments.ParseRule([]byte(" {\"in\" : [\"eu\"],\n \"tag\": \"region\"} "), "rule")
	require.NoError(t, err)
	require.Equal(t, `{"tag":"region","in":["eu"]}`, r.String())
}

func TestRuleUnmarshalJSON(t *testing.T) {
	t.Parallel()
	var req struct {
		Rule *segments.StrictRule `json:"rule"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"rule":{"server":["s1"]}}`), &req))
	require.Equal(t, &segments.StrictRule{Rule: protocol.Rule{Server: []string{"s1"}}}, req.Rule)

	err := json.Unmarshal([]byte(`{"rule":{"server":["s1","s1"]}}`), &req)
	require.Equal(t, []string{"rule.server[1]"}, errFields(t, err))
}

func TestRuleMarshalNoForm(t *testing.T) {
	t.Parallel()
	_, err := json.Marshal(protocol.Rule{})
	require.Error(t, err)
	_, err = json.Marshal(protocol.Rule{Everyone: true, Members: true})
	require.Error(t, err)
}

func TestRuleValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     []string // nil: valid
	}{
		{"everyone", `{"everyone":true}`, nil},
		{"declared values", `{"tag":"region","in":["eu","sa"]}`, nil},
		{"range inside bands", `{"tag":"level","between":[25,39]}`, nil},
		{"range partly outside bands", `{"tag":"level","between":[95,500]}`, nil},
		{"members", `{"and":[{"members":true},{"not":{"server":["s1"]}}]}`, nil},
		{"members under two nots", `{"not":{"not":{"members":true}}}`, nil},
		{"unknown tag", `{"tag":"colour","in":["red"]}`, []string{"rule.tag"}},
		{"unknown tag nested", `{"or":[{"everyone":true},{"and":[{"tag":"colour","between":[1,2]}]}]}`, []string{"rule.or[1].and[0].tag"}},
		{"undeclared value", `{"tag":"region","in":["eu","mars","na","moon"]}`, []string{"rule.in[1]", "rule.in[3]"}},
		{"range overlaps no band", `{"tag":"level","between":[100,200]}`, []string{"rule.between"}},
		{"range below every band", `{"not":{"tag":"vip","between":[-9,-1]}}`, []string{"rule.not.between"}},
		{"in on banded tag", `{"tag":"level","in":["30-39"]}`, []string{"rule.in"}},
		{"between on enumerated tag", `{"tag":"region","between":[1,2]}`, []string{"rule.between"}},
		{"members under not", `{"not":{"members":true}}`, []string{"rule.not.members"}},
		{"members under not and", `{"not":{"and":[{"members":true},{"server":["s1"]}]}}`, []string{"rule.not.and[0].members"}},
		{"members under not or", `{"or":[{"members":true},{"not":{"or":[{"players":["p1"]},{"members":true}]}}]}`, []string{"rule.or[1].not.or[1].members"}},
		{"members under three nots", `{"not":{"not":{"not":{"members":true}}}}`, []string{"rule.not.not.not.members"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := segments.ParseRule([]byte(tt.in), "rule")
			require.NoError(t, err)
			err = segments.ValidateRule(r, "rule", ruleTags)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Equal(t, tt.want, errFields(t, err))
		})
	}
}

func TestRuleValidateNoTags(t *testing.T) {
	t.Parallel()
	r := protocol.Rule{Tag: "region", In: []string{"eu"}}
	require.Equal(t, []string{"rule.tag"}, errFields(t, segments.ValidateRule(r, "rule", nil)))
	require.Equal(t, []string{"rule"}, errFields(t, segments.ValidateRule(protocol.Rule{}, "rule", ruleTags)))
}

func TestRuleUsesMembers(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		`{"everyone":true}`: false,
		`{"members":true}`:  true,
		`{"and":[{"server":["s1"]},{"or":[{"players":["p1"]},{"members":true}]}]}`: true,
		`{"not":{"not":{"members":true}}}`:                                         true,
		`{"or":[{"server":["s1"]},{"not":{"players":["p1"]}}]}`:                    false,
	} {
		r, err := segments.ParseRule([]byte(in), "rule")
		require.NoError(t, err)
		require.Equal(t, want, segments.UsesMembers(r), in)
	}
}
