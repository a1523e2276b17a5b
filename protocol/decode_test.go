package protocol_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/protocol"
)

// protocolEnvelope is the example of protocol.md section 3.
const protocolEnvelope = `{"v":1,"id":"0193a0c4-7f11-7c39-9a51-2f1d3b5e8a10","campaign":"0193a0c4-6b2e-7d4f-8e61-0c2a9b7d1e33",
 "kind":"marquee","game":"g1","sent_at":"2026-11-25T10:00:00Z","starts_at":"2026-11-25T10:05:00Z",
 "expires_at":"2026-11-25T12:00:00Z","priority":5,
 "filter":{"tag":"level","between":[25,39]},
 "content":{"text":{"en":"Maintenance at 10:00 UTC","zh-CN":"10:00 维护"},"repeat":3,"interval_s":0}}`

func TestDecodeEnvelope(t *testing.T) {
	t.Parallel()
	e, err := protocol.DecodeEnvelope([]byte(protocolEnvelope))
	require.NoError(t, err)
	require.Equal(t, protocol.Envelope{
		V: 1, ID: "0193a0c4-7f11-7c39-9a51-2f1d3b5e8a10", Campaign: "0193a0c4-6b2e-7d4f-8e61-0c2a9b7d1e33",
		Kind: protocol.KindMarquee, Game: "g1",
		SentAt:    time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		StartsAt:  time.Date(2026, 11, 25, 10, 5, 0, 0, time.UTC),
		ExpiresAt: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		Priority:  5,
		Filter:    &protocol.Rule{Tag: "level", Between: &[2]int64{25, 39}},
		Content:   json.RawMessage(`{"text":{"en":"Maintenance at 10:00 UTC","zh-CN":"10:00 维护"},"repeat":3,"interval_s":0}`),
	}, e)

	// Optional members absent or null, unknown members, millisecond times and
	// offsets, a filter of a form this version does not know.
	e, err = protocol.DecodeEnvelope([]byte(`{"v":1,"id":"d","campaign":"c","kind":"kickout","game":"g",
		"sent_at":"2026-11-25T10:00:00.123Z","starts_at":null,"expires_at":"2026-11-25T11:00:00+01:00","priority":0,
		"filter":null,"content":{"reason":"ban"},"hint":"later versions add members"}`))
	require.NoError(t, err)
	require.True(t, e.StartsAt.IsZero())
	require.Nil(t, e.Filter)
	require.Equal(t, time.Date(2026, 11, 25, 10, 0, 0, 123e6, time.UTC), e.SentAt)
	require.Equal(t, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), e.ExpiresAt)
	e, err = protocol.DecodeEnvelope([]byte(strings.Replace(protocolEnvelope, `{"tag":"level","between":[25,39]}`, `{"geo":"eu-west"}`, 1)))
	require.NoError(t, err)
	require.False(t, e.Filter.Matches(protocol.Attributes{Player: "p1", Tags: map[string]string{"level": "30"}}))
}

func TestDecodeEnvelopeRefuses(t *testing.T) {
	t.Parallel()
	replace := func(old, new string) string {
		require.Contains(t, protocolEnvelope, old)
		return strings.Replace(protocolEnvelope, old, new, 1)
	}
	tests := []struct {
		name, in string
		want     error
	}{
		{"not JSON", `hello`, protocol.ErrInvalidEnvelope},
		{"truncated", protocolEnvelope[:40], protocol.ErrInvalidEnvelope},
		{"an array", `[1]`, protocol.ErrInvalidEnvelope},
		{"null", `null`, protocol.ErrUnknownVersion},
		{"version 2", replace(`"v":1`, `"v":2`), protocol.ErrUnknownVersion},
		{"version as a string", replace(`"v":1`, `"v":"1"`), protocol.ErrInvalidEnvelope},
		{"no version", replace(`"v":1,`, ``), protocol.ErrUnknownVersion},
		{"no id", replace(`"id":"0193a0c4-7f11-7c39-9a51-2f1d3b5e8a10",`, ``), protocol.ErrInvalidEnvelope},
		{"an id with a slash", replace(`"id":"0193a0c4`, `"id":"a/b`), protocol.ErrInvalidEnvelope},
		{"an empty campaign", replace(`"campaign":"0193a0c4-6b2e-7d4f-8e61-0c2a9b7d1e33"`, `"campaign":""`), protocol.ErrInvalidEnvelope},
		{"a game of 129 bytes", replace(`"game":"g1"`, `"game":"`+strings.Repeat("g", 129)+`"`), protocol.ErrInvalidEnvelope},
		{"no kind", replace(`"kind":"marquee",`, ``), protocol.ErrInvalidEnvelope},
		{"an unknown kind", replace(`"kind":"marquee"`, `"kind":"survey"`), protocol.ErrUnknownKind},
		{"no sent_at", replace(`"sent_at":"2026-11-25T10:00:00Z",`, ``), protocol.ErrInvalidEnvelope},
		{"sent_at without a zone", replace(`"sent_at":"2026-11-25T10:00:00Z"`, `"sent_at":"2026-11-25T10:00:00"`), protocol.ErrInvalidEnvelope},
		{"starts_at a number", replace(`"starts_at":"2026-11-25T10:05:00Z"`, `"starts_at":1764064800`), protocol.ErrInvalidEnvelope},
		{"no expires_at", replace(`"expires_at":"2026-11-25T12:00:00Z",`, ``), protocol.ErrInvalidEnvelope},
		{"no priority", replace(`"priority":5,`, ``), protocol.ErrInvalidEnvelope},
		{"priority 10", replace(`"priority":5`, `"priority":10`), protocol.ErrInvalidEnvelope},
		{"priority 1.5", replace(`"priority":5`, `"priority":1.5`), protocol.ErrInvalidEnvelope},
		{"a malformed filter", replace(`"between":[25,39]`, `"between":[25]`), protocol.ErrInvalidEnvelope},
		{"a filter that is a list", replace(`{"tag":"level","between":[25,39]}`, `[]`), protocol.ErrInvalidEnvelope},
		{"no content", replace(`"content":{"text":{"en":"Maintenance at 10:00 UTC","zh-CN":"10:00 维护"},"repeat":3,"interval_s":0}`, `"content":null`), protocol.ErrInvalidEnvelope},
		{"content a string", replace(`"content":{"text":{"en":"Maintenance at 10:00 UTC","zh-CN":"10:00 维护"},"repeat":3,"interval_s":0}`, `"content":"hi"`), protocol.ErrInvalidEnvelope},
	}
	for _, tt := range tests {
		_, err := protocol.DecodeEnvelope([]byte(tt.in))
		require.Error(t, err, tt.name)
		require.True(t, errors.Is(err, tt.want), "%s: %v", tt.name, err)
		require.True(t, errors.Is(err, protocol.ErrInvalidEnvelope), "%s: %v", tt.name, err)
	}
}

func TestCheckIDExamples(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "Z9", "a.b_c~d:e@f=g-h", strings.Repeat("x", 128)} {
		require.NoError(t, protocol.CheckID(ok), ok)
	}
	for _, bad := range []string{"", strings.Repeat("x", 129), "a/b", "a+", "#", "$sys", "a b", "é", "a\x00"} {
		require.Error(t, protocol.CheckID(bad), bad)
	}
}

func TestKindKnown(t *testing.T) {
	t.Parallel()
	for _, k := range []protocol.Kind{protocol.KindMarquee, protocol.KindNotice, protocol.KindAd, protocol.KindKickout} {
		require.True(t, k.Known(), k)
	}
	require.False(t, protocol.Kind("survey").Known())
	require.False(t, protocol.Kind("").Known())
}

// FuzzDecodeEnvelope: no payload makes the decoder or a filter's evaluation panic.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(protocolEnvelope))
	f.Add([]byte(`{"v":1,"filter":{"and":[{"not":{"or":[]}}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := protocol.DecodeEnvelope(b)
		if err == nil && e.Filter != nil {
			e.Filter.Matches(protocol.Attributes{Player: "p", Server: "s", Tags: map[string]string{"level": "3"}})
		}
	})
}
