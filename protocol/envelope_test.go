package protocol_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/protocol"
)

// marqueeEnvelope is a realistic marquee: UUID ids, short English text, a
// time zone other than UTC and sub-millisecond times.
func marqueeEnvelope(t *testing.T) protocol.Envelope {
	t.Helper()
	content, err := protocol.ParseContent(protocol.KindMarquee,
		json.RawMessage(`{"text":{"en":"Server maintenance at 10:00 UTC, about 30 minutes."},"repeat":3}`), "en")
	require.NoError(t, err)
	shanghai := time.FixedZone("CST", 8*3600)
	return protocol.Envelope{
		ID:        "0193a4f2-7c1e-7b3a-9d2e-5f6a7b8c9d0e",
		Campaign:  "0193a4f0-1111-7222-8333-944455556666",
		Kind:      protocol.KindMarquee,
		Game:      "g1",
		SentAt:    time.Date(2026, 11, 25, 18, 0, 0, 0, shanghai),
		ExpiresAt: time.Date(2026, 11, 25, 20, 0, 0, 999_999_999, shanghai),
		Priority:  5,
		Content:   content,
	}
}

func TestEncodeGolden(t *testing.T) {
	t.Parallel()
	filter := &protocol.Rule{Tag: "level", Between: &[2]int64{25, 39}}
	tests := []struct {
		name   string
		change func(*protocol.Envelope)
		want   string
	}{
		{
			name:   "exact target, no start",
			change: func(*protocol.Envelope) {},
			want: `{"v":1,"id":"0193a4f2-7c1e-7b3a-9d2e-5f6a7b8c9d0e","campaign":"0193a4f0-1111-7222-8333-944455556666",` +
				`"kind":"marquee","game":"g1","sent_at":"2026-11-25T10:00:00Z","expires_at":"2026-11-25T12:00:00.999Z",` +
				`"priority":5,"content":{"text":{"en":"Server maintenance at 10:00 UTC, about 30 minutes."},"repeat":3,"interval_s":0}}`,
		},
		{
			name: "filter and start",
			change: func(e *protocol.Envelope) {
				e.Filter = filter
				e.StartsAt = time.Date(2026, 11, 25, 10, 5, 0, 120_000_000, time.UTC)
			},
			want: `{"v":1,"id":"0193a4f2-7c1e-7b3a-9d2e-5f6a7b8c9d0e","campaign":"0193a4f0-1111-7222-8333-944455556666",` +
				`"kind":"marquee","game":"g1","sent_at":"2026-11-25T10:00:00Z","starts_at":"2026-11-25T10:05:00.12Z",` +
				`"expires_at":"2026-11-25T12:00:00.999Z","priority":5,"filter":{"tag":"level","between":[25,39]},` +
				`"content":{"text":{"en":"Server maintenance at 10:00 UTC, about 30 minutes."},"repeat":3,"interval_s":0}}`,
		},
		{
			name: "filter without start",
			change: func(e *protocol.Envelope) {
				e.Filter = &protocol.Rule{And: []protocol.Rule{
					{Tag: "region", In: []string{"eu"}},
					{Not: &protocol.Rule{Server: []string{"s1"}}},
				}}
				e.Priority = 0
			},
			want: `{"v":1,"id":"0193a4f2-7c1e-7b3a-9d2e-5f6a7b8c9d0e","campaign":"0193a4f0-1111-7222-8333-944455556666",` +
				`"kind":"marquee","game":"g1","sent_at":"2026-11-25T10:00:00Z","expires_at":"2026-11-25T12:00:00.999Z",` +
				`"priority":0,"filter":{"and":[{"tag":"region","in":["eu"]},{"not":{"server":["s1"]}}]},` +
				`"content":{"text":{"en":"Server maintenance at 10:00 UTC, about 30 minutes."},"repeat":3,"interval_s":0}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := marqueeEnvelope(t)
			tt.change(&e)
			got, err := protocol.EncodeEnvelope(e, protocol.DefaultMaxEnvelope)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
			require.True(t, json.Valid(got))
		})
	}
}

func TestEncodeMarqueeUnder512Bytes(t *testing.T) {
	t.Parallel()
	e := marqueeEnvelope(t)
	e.StartsAt = e.SentAt.Add(time.Minute + 123*time.Millisecond)
	e.Filter = &protocol.Rule{Tag: "level", Between: &[2]int64{25, 39}}
	got, err := protocol.EncodeEnvelope(e, protocol.DefaultMaxEnvelope)
	require.NoError(t, err)
	require.Less(t, len(got), 512, "protocol.md section 3 expects a marquee under 512 bytes: %s", got)
}

func TestEncodeNoHTMLEscaping(t *testing.T) {
	t.Parallel()
	e := marqueeEnvelope(t)
	e.Content = json.RawMessage(`{"text":{"en":"<b>Tom & Jerry</b>"},"repeat":1,"interval_s":0}`)
	e.Game = "a&b"
	got, err := protocol.EncodeEnvelope(e, 0)
	require.NoError(t, err)
	require.Contains(t, string(got), `"game":"a&b"`)
	require.True(t, strings.HasSuffix(string(got), `"content":{"text":{"en":"<b>Tom & Jerry</b>"},"repeat":1,"interval_s":0}}`), "%s", got)
	require.NotContains(t, string(got), `\u003c`)
	require.NotContains(t, string(got), "\n")
}

func TestEncodeTooLarge(t *testing.T) {
	t.Parallel()
	e := marqueeEnvelope(t)
	exact, err := protocol.EncodeEnvelope(e, 1<<20)
	require.NoError(t, err)
	n := len(exact)

	got, err := protocol.EncodeEnvelope(e, n)
	require.NoError(t, err, "an envelope of exactly the limit fits")
	require.Equal(t, exact, got)

	_, err = protocol.EncodeEnvelope(e, n-1)
	require.ErrorIs(t, err, protocol.ErrTooLarge)

	// The default limit applies for max <= 0.
	text := strings.Repeat("x", 4000)
	content, err := protocol.ParseContent(protocol.KindMarquee,
		json.RawMessage(`{"text":{"en":"`+text+`","de":"`+text+`","fr":"`+text+`","es":"`+text+`","it":"`+text+`"}}`), "en")
	require.NoError(t, err)
	e.Content = content
	for _, max := range []int{0, -1, protocol.DefaultMaxEnvelope} {
		_, err = protocol.EncodeEnvelope(e, max)
		require.ErrorIs(t, err, protocol.ErrTooLarge, "max %d", max)
		_, isList := fielderr.As(err)
		require.False(t, isList)
	}
	_, err = protocol.EncodeEnvelope(e, 2*protocol.DefaultMaxEnvelope)
	require.NoError(t, err)
}

func TestEncodeTimes(t *testing.T) {
	t.Parallel()
	tokyo := time.FixedZone("JST", 9*3600)
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), "2026-11-25T10:00:00Z"},
		{time.Date(2026, 11, 25, 19, 0, 0, 0, tokyo), "2026-11-25T10:00:00Z"},
		{time.Date(2026, 11, 25, 10, 0, 0, 123_456_789, time.UTC), "2026-11-25T10:00:00.123Z"},
		{time.Date(2026, 12, 31, 23, 59, 59, 999_999_999, time.UTC), "2026-12-31T23:59:59.999Z"}, // trimmed, not rounded into 2027
		{time.Date(2026, 11, 25, 10, 0, 0, 100_000_000, time.UTC), "2026-11-25T10:00:00.1Z"},
		{time.Date(2026, 11, 25, 10, 0, 0, 120_000_000, time.UTC), "2026-11-25T10:00:00.12Z"},
		{time.Date(2026, 11, 25, 10, 0, 0, 999_999, time.UTC), "2026-11-25T10:00:00Z"},
		{time.Date(2026, 11, 25, 10, 0, 0, 1_000_000, time.UTC), "2026-11-25T10:00:00.001Z"},
	}
	for _, tt := range tests {
		e := marqueeEnvelope(t)
		e.SentAt, e.StartsAt, e.ExpiresAt = tt.in, tt.in, tt.in
		got, err := protocol.EncodeEnvelope(e, 0)
		require.NoError(t, err)
		var wire struct {
			SentAt    string `json:"sent_at"`
			StartsAt  string `json:"starts_at"`
			ExpiresAt string `json:"expires_at"`
		}
		require.NoError(t, json.Unmarshal(got, &wire))
		require.Equal(t, tt.want, wire.SentAt, "%v", tt.in)
		require.Equal(t, tt.want, wire.StartsAt)
		require.Equal(t, tt.want, wire.ExpiresAt)
	}

	// A wall-clock time with a monotonic reading encodes like any other.
	now := time.Now()
	e := marqueeEnvelope(t)
	e.SentAt = now
	got, err := protocol.EncodeEnvelope(e, 0)
	require.NoError(t, err)
	require.Contains(t, string(got), `"sent_at":"`+now.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)+`"`)
}

func TestEncodeRefusesBrokenEnvelopes(t *testing.T) {
	t.Parallel()
	tests := map[string]func(*protocol.Envelope){
		"no id":             func(e *protocol.Envelope) { e.ID = "" },
		"no campaign":       func(e *protocol.Envelope) { e.Campaign = "" },
		"no game":           func(e *protocol.Envelope) { e.Game = "" },
		"unknown kind":      func(e *protocol.Envelope) { e.Kind = "banner" },
		"no sent_at":        func(e *protocol.Envelope) { e.SentAt = time.Time{} },
		"no expires_at":     func(e *protocol.Envelope) { e.ExpiresAt = time.Time{} },
		"year 10000":        func(e *protocol.Envelope) { e.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"negative priority": func(e *protocol.Envelope) { e.Priority = -1 },
		"priority 10":       func(e *protocol.Envelope) { e.Priority = 10 },
		"no content":        func(e *protocol.Envelope) { e.Content = nil },
		"content not JSON":  func(e *protocol.Envelope) { e.Content = json.RawMessage(`{"text":`) },
		"content array":     func(e *protocol.Envelope) { e.Content = json.RawMessage(`[1]`) },
		"filter no form":    func(e *protocol.Envelope) { e.Filter = &protocol.Rule{} },
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := marqueeEnvelope(t)
			change(&e)
			got, err := protocol.EncodeEnvelope(e, 0)
			require.Error(t, err)
			require.Nil(t, got)
			require.False(t, errors.Is(err, protocol.ErrTooLarge))
		})
	}
}
