package protocol_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

// sameAsSegments are rules in every form, as Herald's segments parse them.
// TestRuleJSONMatchesSegments keeps the strict parser of requests
// (segments.ParseRule) and the lenient decoder of clients in agreement: the
// same rule, and the same bytes when encoded again.
var sameAsSegments = []string{
	`{"everyone":true}`,
	`{"members":true}`,
	`{"server":["s1","s2"]}`,
	`{"players":["p1"]}`,
	`{"tag":"region","in":["eu","na"]}`,
	`{"tag":"level","between":[30,39]}`,
	`{"tag":"level","between":[-5,9223372036854775807]}`,
	`{"and":[{"server":["s1"]},{"not":{"tag":"level","between":[1,9]}}]}`,
	`{"or":[{"players":["a@b","c:d","e=f","g~h"]},{"and":[{"everyone":true},{"members":true}]}]}`,
	`{"not":{"not":{"or":[{"tag":"vip","in":["x.y_z-1"]}]}}}`,
}

func TestRuleJSONMatchesSegments(t *testing.T) {
	t.Parallel()
	for _, in := range sameAsSegments {
		seg, err := segments.ParseRule([]byte(in), "rule")
		require.NoError(t, err, in)
		want, err := seg.MarshalJSON()
		require.NoError(t, err)

		var r protocol.Rule
		require.NoError(t, json.Unmarshal([]byte(in), &r), in)
		got, err := json.Marshal(r)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))

		// The same rule built in Go encodes the same too.
		var viaSeg protocol.Rule
		require.NoError(t, json.Unmarshal(want, &viaSeg))
		require.Equal(t, r, viaSeg)
	}
}

func TestRuleMarshalBuiltInGo(t *testing.T) {
	t.Parallel()
	r := protocol.Rule{And: []protocol.Rule{
		{Tag: "level", Between: &[2]int64{30, 39}},
		{Not: &protocol.Rule{Server: []string{"s1"}}},
		{Or: []protocol.Rule{}},
	}}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	require.Equal(t, `{"and":[{"tag":"level","between":[30,39]},{"not":{"server":["s1"]}},{"or":[]}]}`, string(b))
	require.Equal(t, string(b), r.String())

	for _, bad := range []protocol.Rule{
		{},                                   // no form
		{Everyone: true, Server: []string{}}, // two forms
		{Tag: "level"},                       // a tag without in or between
		{And: []protocol.Rule{{}}},           // a sub-rule without a form
	} {
		_, err := json.Marshal(bad)
		require.Error(t, err, "%#v", bad)
	}
}

// TestRuleUnmarshalUnknownForms: what a later version may send decodes, and
// matches nothing, instead of dropping the envelope.
func TestRuleUnmarshalUnknownForms(t *testing.T) {
	t.Parallel()
	a := protocol.Attributes{Player: "p1", Server: "s1", Tags: map[string]string{"level": "35", "region": "eu"}}
	for _, in := range []string{
		`{}`,
		`{"near":{"lat":1,"lon":2}}`,
		`{"tag":"level","gt":3}`,
		`{"tag":"region","in":["eu"],"case":"fold"}`,
		`{"everyone":true,"server":["s1"]}`,
		`{"everyone":false}`,
		`{"everyone":null}`,
		`{"server":null}`,
		`{"and":null}`,
		`{"not":null}`,
		`{"tag":null,"in":["eu"]}`,
	} {
		var r protocol.Rule
		require.NoError(t, json.Unmarshal([]byte(in), &r), in)
		require.False(t, r.Matches(a), in)
		require.Equal(t, "<rule of no known form>", r.String())
		// Inside a not, the unknown atom is false, so the not is true.
		var not protocol.Rule
		require.NoError(t, json.Unmarshal([]byte(`{"not":`+in+`}`), &not), in)
		require.True(t, not.Matches(a), in)
	}
}

func TestRuleUnmarshalErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		``,
		`{"everyone":`,
		`[]`,
		`"everyone"`,
		`null`,
		`{"everyone":"yes"}`,
		`{"server":"s1"}`,
		`{"server":[1]}`,
		`{"tag":"region","in":"eu"}`,
		`{"tag":7,"in":["eu"]}`,
		`{"tag":"level","between":[1]}`,
		`{"tag":"level","between":[1,2,3]}`,
		`{"tag":"level","between":[1.5,2]}`,
		`{"tag":"level","between":["1","2"]}`,
		`{"and":{"everyone":true}}`,
		`{"and":[1]}`,
		`{"or":[{"server":"s1"}]}`,
		`{"not":[]}`,
		strings.Repeat(`{"not":`, protocol.MaxRuleDepth) + `{"everyone":true}` + strings.Repeat(`}`, protocol.MaxRuleDepth),
		`{"or":[` + strings.TrimSuffix(strings.Repeat(`{"everyone":true},`, protocol.MaxRuleNodes), ",") + `]}`,
	} {
		var r protocol.Rule
		require.Error(t, json.Unmarshal([]byte(in), &r), in)
	}
	// The limits themselves are allowed.
	var r protocol.Rule
	deepest := strings.Repeat(`{"not":`, protocol.MaxRuleDepth-1) + `{"everyone":true}` + strings.Repeat(`}`, protocol.MaxRuleDepth-1)
	require.NoError(t, json.Unmarshal([]byte(deepest), &r))
	largest := `{"or":[` + strings.TrimSuffix(strings.Repeat(`{"everyone":true},`, protocol.MaxRuleNodes-1), ",") + `]}`
	require.NoError(t, json.Unmarshal([]byte(largest), &r))
}
