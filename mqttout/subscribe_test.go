package mqttout

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
)

// inbox records what a Subscriber hands its handler.
type inbox struct {
	mu      sync.Mutex
	got     []string // payloads, in order
	running atomic.Int32
	overlap atomic.Bool // two handler calls ran at once
	gate    chan struct{}
}

func (b *inbox) handle(_ string, payload []byte) {
	if b.running.Add(1) > 1 {
		b.overlap.Store(true)
	}
	defer b.running.Add(-1)
	if b.gate != nil {
		<-b.gate
	}
	b.mu.Lock()
	b.got = append(b.got, string(payload))
	b.mu.Unlock()
}

func (b *inbox) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.got)
}

func (b *inbox) waitCount(t testing.TB, n int) {
	t.Helper()
	last, deadline := b.count(), time.Now().Add(patience)
	for b.count() < n {
		if c := b.count(); c != last {
			last, deadline = c, time.Now().Add(patience)
		}
		require.False(t, time.Now().After(deadline), "received %d of %d messages, nothing more for %s", last, n, patience)
		time.Sleep(5 * time.Millisecond)
	}
}

func startSubscriber(t testing.TB, url, filter string, handle func(string, []byte)) *Subscriber {
	t.Helper()
	s, err := NewSubscriber(SubscriberConfig{URL: url, Log: testLog(), Filter: filter, Fence: "test/$herald/fence"})
	require.NoError(t, err)
	s.Start(handle)
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	require.Eventually(t, s.Subscribed, patience, 5*time.Millisecond, "never subscribed")
	return s
}

// publishN publishes n QoS 1 messages to topic from one connection, payloads
// "0" to "n-1", each acknowledged by the broker.
func publishN(t testing.TB, c mqtt.Client, topic string, n int) {
	t.Helper()
	toks := make([]mqtt.Token, n)
	for i := range n {
		toks[i] = c.Publish(topic, 1, false, strconv.Itoa(i))
	}
	for _, tok := range toks {
		require.True(t, tok.WaitTimeout(patience), "publish timed out")
		require.NoError(t, tok.Error())
	}
}

// A Subscriber hands messages to its handler one at a time, in the order one
// publisher sent them, and makes its subscription again after the broker
// restarts.
func TestSubscriberOneAtATimeAndAfterARestart(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	var in inbox
	s := startSubscriber(t, b.URL, "$share/herald/t/+/receipts/+", in.handle)
	pub := pahoClient(t, b.URL)
	publishN(t, pub, "t/g1/receipts/p1", 2000)
	in.waitCount(t, 2000)
	assert.False(t, in.overlap.Load(), "handler calls overlapped")
	for i, p := range in.got {
		require.Equal(t, strconv.Itoa(i), p, "out of order")
	}

	b.Stop()
	require.Eventually(t, func() bool { return !s.Subscribed() }, patience, 5*time.Millisecond)
	b.Start()
	require.Eventually(t, s.Subscribed, patience, 5*time.Millisecond, "not subscribed again after the restart")
	pub2 := pahoClient(t, b.URL)
	publishN(t, pub2, "t/g2/receipts/p2", 10)
	in.waitCount(t, 2010)
}

// The replicas of a shared subscription share the messages: each arrives at
// one of them.
func TestSubscriberSharesWithItsGroup(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	var a, c inbox
	startSubscriber(t, b.URL, "$share/herald/t/+/receipts/+", a.handle)
	startSubscriber(t, b.URL, "$share/herald/t/+/receipts/+", c.handle)
	publishN(t, pahoClient(t, b.URL), "t/g1/receipts/p1", 1000)
	waitTotal := func() int { return a.count() + c.count() }
	require.Eventually(t, func() bool { return waitTotal() >= 1000 }, patience, 5*time.Millisecond)
	assert.Equal(t, 1000, waitTotal(), "a message reached both")
	assert.NotZero(t, a.count())
	assert.NotZero(t, c.count())
}

// Stop loses nothing the broker routed to the subscriber before it: with the
// handler held up (back-pressure) and the broker holding thousands of
// messages for it, Stop returns only once every one was handled, and the
// handler is not called after.
func TestSubscriberStopHandsOverWhatTheBrokerHeld(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	in := inbox{gate: make(chan struct{})}
	s := startSubscriber(t, b.URL, "$share/herald/t/+/receipts/+", in.handle)
	pub := pahoClient(t, b.URL)
	publishN(t, pub, "t/g1/receipts/p1", 5000) // acknowledged: routed to s
	require.Eventually(t, func() bool { return in.running.Load() == 1 }, patience, 5*time.Millisecond)

	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(context.Background()) }()
	close(in.gate)
	require.NoError(t, <-stopped)
	assert.Equal(t, 5000, in.count())

	publishN(t, pub, "t/g1/receipts/p1", 10)
	fence := pahoClient(t, b.URL)
	got := make(chan struct{}, 1)
	tok := fence.Subscribe("t/g1/receipts/p1", 1, func(mqtt.Client, mqtt.Message) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	require.True(t, tok.WaitTimeout(patience))
	publishN(t, pub, "t/g1/receipts/p1", 1)
	<-got
	assert.Equal(t, 5000, in.count(), "handled after Stop")
}
