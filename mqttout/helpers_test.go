package mqttout

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// patience is how long a test waits for something that takes a moment on an
// idle machine; generous, because the suite runs on loaded 2-core machines.
const patience = 60 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, ignorePahoDisconnect)
}

// ignorePahoDisconnect ignores the goroutine paho's Disconnect leaves behind
// when it is called while the client retries a connection the broker refuses
// (TestPublishAllOverTheConnectionsThatAreUp): it waits for the retry, which
// paho does not end. Herald calls Disconnect only when it shuts down.
var ignorePahoDisconnect = goleak.IgnoreTopFunction("github.com/eclipse/paho%2emqtt%2egolang.(*client).Disconnect.func1")

// sharedBrokerURL is the broker scripts/services.sh runs, or HERALD_MQTT_URL.
func sharedBrokerURL() string {
	if u := os.Getenv("HERALD_MQTT_URL"); u != "" {
		return u
	}
	return "tcp://127.0.0.1:1883"
}

// testLog discards, unless HERALD_TEST_LOG is set: paho's handlers may log after
// a test has ended, so t.Log cannot be the sink.
func testLog() *slog.Logger {
	if os.Getenv("HERALD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// dialTest dials cfg (its Log defaulting to testLog) and closes the Conn at cleanup.
func dialTest(t testing.TB, cfg Config) *Conn {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = testLog()
	}
	c, err := Dial(cfg)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func waitUp(t testing.TB, c *Conn) {
	t.Helper()
	require.Eventually(t, c.Connected, patience, 5*time.Millisecond, "broker connection not up")
}

func randomHex(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return hex.EncodeToString(b[:])
}

// retainedBatch is n retained messages to distinct topics under prefix.
func retainedBatch(prefix string, n int) []Message {
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{
			Topic:   prefix + "/" + strconv.Itoa(i),
			Payload: fmt.Appendf(nil, `{"v":1,"id":"%d"}`, i),
			Retain:  true,
		}
	}
	return msgs
}

// pahoClient is a plain paho client for checks, connected, disconnected at cleanup.
func pahoClient(t testing.TB, url string, opts ...func(*mqtt.ClientOptions)) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID("herald-test-" + randomHex(t)).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	for _, f := range opts {
		f(o)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second), "paho connect timed out")
	require.NoError(t, tok.Error())
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// subscriber records the last payload per topic of what it receives (QoS 0, so
// Mosquitto's per-client queue limit for QoS 1 does not cut retained floods).
type subscriber struct {
	mu      sync.Mutex
	last    map[string][]byte
	changed chan struct{}
}

// subscribe connects a new client to url and subscribes to filters in order,
// each acknowledged before the next is sent.
func subscribe(t testing.TB, url string, filters ...string) *subscriber {
	t.Helper()
	s := &subscriber{last: map[string][]byte{}, changed: make(chan struct{}, 1)}
	c := pahoClient(t, url, func(o *mqtt.ClientOptions) {
		o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			s.mu.Lock()
			s.last[m.Topic()] = m.Payload()
			s.mu.Unlock()
			select {
			case s.changed <- struct{}{}:
			default:
			}
		})
	})
	for _, f := range filters {
		tok := c.Subscribe(f, 0, nil)
		require.True(t, tok.WaitTimeout(10*time.Second), "subscribe %s timed out", f)
		require.NoError(t, tok.Error())
	}
	return s
}

// count returns how many topics under prefix last had a non-empty payload
// (full) and how many an empty one (cleared).
func (s *subscriber) count(prefix string) (full, cleared int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, p := range s.last {
		if len(topic) <= len(prefix) || topic[:len(prefix)] != prefix {
			continue
		}
		if len(p) > 0 {
			full++
		} else {
			cleared++
		}
	}
	return full, cleared
}

// waitFor waits until cond holds for the received messages. It fails only when
// nothing arrives for stall: a loaded machine that delivers slowly but steadily
// is not a failure.
func (s *subscriber) waitFor(t testing.TB, stall time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(stall)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-s.changed:
			deadline.Reset(stall)
		case <-deadline.C:
			require.FailNow(t, "subscriber timed out", "%s: nothing arrived for %s", what, stall)
		}
	}
}

// retainedUnder returns the retained messages a new subscriber to prefix/# is
// sent. To know it has them all, it then subscribes to a retained sentinel
// outside prefix: Mosquitto sends the retained messages of one SUBSCRIBE before
// those of the next on the same connection.
func retainedUnder(t testing.TB, url, prefix string) map[string][]byte {
	t.Helper()
	sentinel := "test-sentinel/" + randomHex(t)
	pub := pahoClient(t, url)
	tok := pub.Publish(sentinel, 1, true, "end")
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer func() { pub.Publish(sentinel, 1, true, []byte{}).WaitTimeout(5 * time.Second) }()

	s := subscribe(t, url, prefix+"/#", sentinel)
	s.waitFor(t, patience, "retained sentinel", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.last[sentinel]) > 0
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for topic, p := range s.last {
		if topic != sentinel {
			out[topic] = p
		}
	}
	return out
}
