package client_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/client"
	"github.com/heraldpush/herald/protocol"
)

// FuzzSessionHandle: no topic or payload makes a session panic, and each
// message is counted once, as received or under the reason it was dropped.
func FuzzSessionHandle(f *testing.F) {
	now := time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)
	f.Add("herald/g1/all/marquee/c1", []byte(`{"v":1,"id":"d1","campaign":"c1","kind":"marquee","game":"g1","sent_at":"2026-11-25T10:00:00Z","expires_at":"2026-11-25T12:00:00Z","priority":5,"filter":{"tag":"level","between":[25,39]},"content":{"text":{"en":"x"},"repeat":3,"interval_s":0}}`))
	f.Add("herald/g1/player/p1/kickout/k1", []byte(`{"v":1,"id":"k1","campaign":"k1","kind":"kickout","game":"g1","sent_at":"2026-11-25T10:00:00Z","expires_at":"2026-11-25T12:00:00Z","priority":0,"content":{"reason":"ban","reconnect_after_s":-1}}`))
	f.Add("herald/g1/descriptor", []byte(`{"v":1,"game":"g1","prefix":"herald","tags":{"level":{"bands":[[30,39]]}}}`))
	f.Add("herald/g1/all/ad/c2", []byte{})
	f.Add("herald/g1", []byte(`{}`))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		s, err := client.NewSession(client.SessionConfig{
			Game: "g1", Player: "p1", Server: "s1", Tags: map[string]string{"level": "35"},
			Now: func() time.Time { return now }, Log: quietLog(),
			OnMessage: func(m client.Message) {}, OnRemove: func(string, client.RemoveReason) {},
			Publish: func(topic string, payload []byte) {},
		})
		require.NoError(t, err)
		defer s.Close()
		s.Handle(topic, payload)
		st := s.Stats()
		counted := st.Filtered + st.Duplicates + st.Expired + st.Invalid + st.Ignored + st.Superseded
		for _, n := range st.Received {
			counted += n
		}
		if len(payload) > 0 && topic != protocol.DescriptorTopic("herald", "g1") {
			require.EqualValues(t, 1, counted, "%s %q: %+v", topic, payload, st)
		}
		if !strings.HasPrefix(topic, "herald/g1/") {
			require.Empty(t, st.Received)
		}
	})
}

func TestNewSessionChecksIDs(t *testing.T) {
	t.Parallel()
	_, err := client.NewSession(client.SessionConfig{Game: "g1", Player: "p1", Prefix: "acme/herald"})
	require.NoError(t, err)
	for _, cfg := range []client.SessionConfig{
		{Game: "g1"}, {Player: "p1"}, {Game: "g1", Player: "p+"}, {Game: "g1", Player: "p1", Server: "#"},
		{Game: "g1", Player: "p1", Prefix: "/herald"},
	} {
		_, err := client.NewSession(cfg)
		require.Error(t, err, "%+v", cfg)
	}
}
