package protocol_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/protocol"
)

func TestMatches(t *testing.T) {
	t.Parallel()
	full := protocol.Attributes{Player: "p1", Server: "s1", Tags: map[string]string{"region": "eu", "level": "35", "vip": "gold"}}
	bare := protocol.Attributes{Player: "p2"}
	tests := []struct {
		rule       string
		full, bare bool
	}{
		{`{"everyone":true}`, true, true},
		{`{"server":["s1","s2"]}`, true, false},
		{`{"server":["s2"]}`, false, false},
		{`{"server":[]}`, false, false},
		{`{"not":{"server":["s2"]}}`, true, true},
		{`{"players":["p1","p3"]}`, true, false},
		{`{"players":["p2"]}`, false, true},
		{`{"tag":"region","in":["eu","na"]}`, true, false},
		{`{"tag":"region","in":["na"]}`, false, false},
		{`{"not":{"tag":"region","in":["na"]}}`, true, true},
		{`{"tag":"level","between":[30,39]}`, true, false},
		{`{"tag":"level","between":[35,35]}`, true, false},
		{`{"tag":"level","between":[36,99]}`, false, false},
		{`{"tag":"level","between":[40,30]}`, false, false},
		{`{"tag":"vip","between":[0,9]}`, false, false}, // not a number: not carried as one
		{`{"not":{"tag":"level","between":[1,9]}}`, true, true},
		{`{"members":true}`, false, false},
		{`{"not":{"members":true}}`, true, true},
		{`{"and":[]}`, true, true},
		{`{"or":[]}`, false, false},
		{`{"and":[{"server":["s1"]},{"tag":"level","between":[30,39]}]}`, true, false},
		{`{"and":[{"server":["s1"]},{"tag":"level","between":[40,49]}]}`, false, false},
		{`{"or":[{"server":["s9"]},{"players":["p2"]}]}`, false, true},
		{`{"not":{"and":[{"server":["s1"]},{"everyone":true}]}}`, false, true},
	}
	for _, tt := range tests {
		var r protocol.Rule
		require.NoError(t, json.Unmarshal([]byte(tt.rule), &r), tt.rule)
		require.Equal(t, tt.full, r.Matches(full), "%s for %+v", tt.rule, full)
		require.Equal(t, tt.bare, r.Matches(bare), "%s for %+v", tt.rule, bare)
	}
}
