package campaigns_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/protocol"
)

// marqueeEnvelope is a realistic marquee: UUID ids, short English text, a
// time zone other than UTC and sub-millisecond times.
func marqueeEnvelope(t *testing.T) campaigns.Envelope {
	t.Helper()
	content, err := campaigns.ParseContent(campaigns.KindMarquee,
		json.RawMessage(`{"text":{"en":"Server maintenance at 10:00 UTC, about 30 minutes."},"repeat":3}`), "en")
	require.NoError(t, err)
	shanghai := time.FixedZone("CST", 8*3600)
	return campaigns.Envelope{
		ID:        "0193a4f2-7c1e-7b3a-9d2e-5f6a7b8c9d0e",
		Campaign:  "0193a4f0-1111-7222-8333-944455556666",
		Kind:      campaigns.KindMarquee,
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
		change func(*campaigns.Envelope)
		want   string
	}{
		{
			name:   "exact target, no start",
			change: func(*campaigns.Envelope) {},
			want: `{"v":1,"id":"0193a4f2-7c1e-7b3a-9d2e-5f6a7b8c9d0e","campaign":"0193a4f0-1111-7222-8333-944455556666",` +
				`"kind":"marquee","game":"g1","sent_at":"2026-11-25T10:00:00Z","expires_at":"2026-11-25T12:00:00.999Z",` +
				`"priority":5,"content":{"text":{"en":"Server maintenance at 10:00 UTC, about 30 minutes."},"repeat":3,"interval_s":0}}`,
		},
		{
			name: "filter and start",
			change: func(e *campaigns.Envelope) {
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
			change: func(e *campaigns.Envelope) {
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
			got, err := campaigns.Encode(e, campaigns.DefaultMaxEnvelope)
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
	got, err := campaigns.Encode(e, campaigns.DefaultMaxEnvelope)
	require.NoError(t, err)
	require.Less(t, len(got), 512, "DESIGN 4 targets a marquee under 512 bytes: %s", got)
}

func TestEncodeNoHTMLEscaping(t *testing.T) {
	t.Parallel()
	e := marqueeEnvelope(t)
	e.Content = json.RawMessage(`{"text":{"en":"<b>Tom & Jerry</b>"},"repeat":1,"interval_s":0}`)
	e.Game = "a&b"
	got, err := campaigns.Encode(e, 0)
	require.NoError(t, err)
	require.Contains(t, string(got), `"game":"a&b"`)
	require.True(t, strings.HasSuffix(string(got), `"content":{"text":{"en":"<b>Tom & Jerry</b>"},"repeat":1,"interval_s":0}}`), "%s", got)
	require.NotContains(t, string(got), `\u003c`)
	require.NotContains(t, string(got), "\n")
}

func TestEncodeTooLarge(t *testing.T) {
	t.Parallel()
	e := marqueeEnvelope(t)
	exact, err := campaigns.Encode(e, 1<<20)
	require.NoError(t, err)
	n := len(exact)

	got, err := campaigns.Encode(e, n)
	require.NoError(t, err, "an envelope of exactly the limit fits")
	require.Equal(t, exact, got)

	_, err = campaigns.Encode(e, n-1)
	require.ErrorIs(t, err, campaigns.ErrTooLarge)

	// The default limit applies for max <= 0.
	text := strings.Repeat("x", 4000)
	content, err := campaigns.ParseContent(campaigns.KindMarquee,
		json.RawMessage(`{"text":{"en":"`+text+`","de":"`+text+`","fr":"`+text+`","es":"`+text+`","it":"`+text+`"}}`), "en")
	require.NoError(t, err)
	e.Content = content
	for _, max := range []int{0, -1, campaigns.DefaultMaxEnvelope} {
		_, err = campaigns.Encode(e, max)
		require.ErrorIs(t, err, campaigns.ErrTooLarge, "max %d", max)
		_, isList := fielderr.As(err)
		require.False(t, isList)
	}
	_, err = campaigns.Encode(e, 2*campaigns.DefaultMaxEnvelope)
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
		got, err := campaigns.Encode(e, 0)
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
	got, err := campaigns.Encode(e, 0)
	require.NoError(t, err)
	require.Contains(t, string(got), `"sent_at":"`+now.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)+`"`)
}

func TestEncodeRefusesBrokenEnvelopes(t *testing.T) {
	t.Parallel()
	tests := map[string]func(*campaigns.Envelope){
		"no id":             func(e *campaigns.Envelope) { e.ID = "" },
		"no campaign":       func(e *campaigns.Envelope) { e.Campaign = "" },
		"no game":           func(e *campaigns.Envelope) { e.Game = "" },
		"unknown kind":      func(e *campaigns.Envelope) { e.Kind = "banner" },
		"no sent_at":        func(e *campaigns.Envelope) { e.SentAt = time.Time{} },
		"no expires_at":     func(e *campaigns.Envelope) { e.ExpiresAt = time.Time{} },
		"year 10000":        func(e *campaigns.Envelope) { e.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"negative priority": func(e *campaigns.Envelope) { e.Priority = -1 },
		"priority 10":       func(e *campaigns.Envelope) { e.Priority = 10 },
		"no content":        func(e *campaigns.Envelope) { e.Content = nil },
		"content not JSON":  func(e *campaigns.Envelope) { e.Content = json.RawMessage(`{"text":`) },
		"content array":     func(e *campaigns.Envelope) { e.Content = json.RawMessage(`[1]`) },
		"filter no form":    func(e *campaigns.Envelope) { e.Filter = &protocol.Rule{} },
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := marqueeEnvelope(t)
			change(&e)
			got, err := campaigns.Encode(e, 0)
			require.Error(t, err)
			require.Nil(t, got)
			require.False(t, errors.Is(err, campaigns.ErrTooLarge))
		})
	}
}

func TestParseReceipt(t *testing.T) {
	t.Parallel()
	const id = "0193a4f2-7c1e-7b3a-9d2e-5f6a7b8c9d0e"
	at := time.Date(2026, 11, 25, 10, 0, 1, 234_000_000, time.UTC)
	tests := []struct {
		name    string
		payload string
		want    campaigns.Receipt
		field   string // when refused: the field of the first error
	}{
		{"delivered", `{"id":"` + id + `","e":"delivered","t":1795600801234}`, campaigns.Receipt{ID: id, Event: campaigns.EventDelivered, At: at}, ""},
		{"displayed", `{"id":"` + id + `","e":"displayed","t":1795600801234}`, campaigns.Receipt{ID: id, Event: campaigns.EventDisplayed, At: at}, ""},
		{"clicked", `{"e":"clicked","t":1795600801234,"id":"` + id + `"}`, campaigns.Receipt{ID: id, Event: campaigns.EventClicked, At: at}, ""},
		{"dismissed", ` {"id":"` + id + `","e":"dismissed","t":1795600801234} `, campaigns.Receipt{ID: id, Event: campaigns.EventDismissed, At: at}, ""},
		{"unknown members ignored", `{"id":"` + id + `","e":"clicked","t":1795600801234,"sdk":"2.1"}`, campaigns.Receipt{ID: id, Event: campaigns.EventClicked, At: at}, ""},
		{"fractional t truncated", `{"id":"` + id + `","e":"clicked","t":1795600801234.9}`, campaigns.Receipt{ID: id, Event: campaigns.EventClicked, At: at}, ""},
		{"exponent t", `{"id":"` + id + `","e":"clicked","t":1.795600801234e12}`, campaigns.Receipt{ID: id, Event: campaigns.EventClicked, At: at}, ""},
		{"first millisecond", `{"id":"d","e":"delivered","t":1}`, campaigns.Receipt{ID: "d", Event: campaigns.EventDelivered, At: time.UnixMilli(1).UTC()}, ""},

		{"empty", ``, campaigns.Receipt{}, "payload"},
		{"blank", " \n", campaigns.Receipt{}, "payload"},
		{"not JSON", `delivered`, campaigns.Receipt{}, "payload"},
		{"truncated", `{"id":"` + id + `","e":"delivered"`, campaigns.Receipt{}, "payload"},
		{"array", `[{"id":"` + id + `"}]`, campaigns.Receipt{}, "payload"},
		{"null", `null`, campaigns.Receipt{}, "id"},
		{"too large", `{"id":"` + id + `","e":"delivered","t":1,"pad":"` + strings.Repeat("x", 1024) + `"}`, campaigns.Receipt{}, "payload"},
		{"missing id", `{"e":"delivered","t":1795600801234}`, campaigns.Receipt{}, "id"},
		{"empty id", `{"id":"","e":"delivered","t":1795600801234}`, campaigns.Receipt{}, "id"},
		{"id with a slash", `{"id":"a/b","e":"delivered","t":1795600801234}`, campaigns.Receipt{}, "id"},
		{"id as number", `{"id":42,"e":"delivered","t":1795600801234}`, campaigns.Receipt{}, "id"},
		{"missing event", `{"id":"` + id + `","t":1795600801234}`, campaigns.Receipt{}, "e"},
		{"unknown event", `{"id":"` + id + `","e":"opened","t":1795600801234}`, campaigns.Receipt{}, "e"},
		{"event in upper case", `{"id":"` + id + `","e":"DELIVERED","t":1795600801234}`, campaigns.Receipt{}, "e"},
		{"missing t", `{"id":"` + id + `","e":"delivered"}`, campaigns.Receipt{}, "t"},
		{"null t", `{"id":"` + id + `","e":"delivered","t":null}`, campaigns.Receipt{}, "t"},
		{"zero t", `{"id":"` + id + `","e":"delivered","t":0}`, campaigns.Receipt{}, "t"},
		{"negative t", `{"id":"` + id + `","e":"delivered","t":-5}`, campaigns.Receipt{}, "t"},
		{"fraction below one", `{"id":"` + id + `","e":"delivered","t":0.5}`, campaigns.Receipt{}, "t"},
		{"t as string", `{"id":"` + id + `","e":"delivered","t":"1795600801234"}`, campaigns.Receipt{}, "t"},
		{"t after 9999", `{"id":"` + id + `","e":"delivered","t":253402300800000}`, campaigns.Receipt{}, "t"},
		{"t huge", `{"id":"` + id + `","e":"delivered","t":1e300}`, campaigns.Receipt{}, "t"},
		{"t overflowing int64", `{"id":"` + id + `","e":"delivered","t":99999999999999999999}`, campaigns.Receipt{}, "t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := campaigns.ParseReceipt([]byte(tt.payload))
			if tt.field == "" {
				require.NoError(t, err)
				require.Equal(t, tt.want, got)
				return
			}
			require.ErrorIs(t, err, campaigns.ErrBadReceipt)
			require.Equal(t, campaigns.Receipt{}, got)
			list, ok := fielderr.As(err)
			require.True(t, ok, "%v", err)
			require.Equal(t, tt.field, list[0].Field, "%v", err)
		})
	}
}

// FuzzParseReceipt checks that no payload makes ParseReceipt panic, that every
// refusal wraps ErrBadReceipt, and that what it accepts is a valid receipt.
func FuzzParseReceipt(f *testing.F) {
	for _, seed := range []string{
		`{"id":"d1","e":"delivered","t":1795600801234}`,
		`{"id":"d1","e":"clicked","t":1.5e12,"x":[1,{}]}`,
		`{"id":"d1","e":"opened","t":-1}`,
		`{"id":null,"e":5,"t":"1"}`,
		`[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := campaigns.ParseReceipt(payload)
		if err != nil {
			require.ErrorIs(t, err, campaigns.ErrBadReceipt)
			return
		}
		require.NotEmpty(t, r.ID)
		require.Contains(t, []string{"delivered", "displayed", "clicked", "dismissed"}, r.Event)
		require.True(t, r.At.After(time.Unix(0, 0)))
		require.Equal(t, time.UTC, r.At.Location())
	})
}
