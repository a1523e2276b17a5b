package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/client"
	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/protocol"
)

// A new descriptor: the client subscribes to what is new (and gets its
// retained messages) and unsubscribes from what is gone.
func TestDescriptorChangeResubscribes(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	h.descriptor(`{"region":{"values":["eu"]},"level":{"bands":[[30,39]]}}`)
	h.send("tag/region/na", env{ID: "na1"})
	rec := &recorder{}
	c := h.connect(rec, func(o *client.Options) { o.Tags = map[string]string{"region": "na", "level": "35"} })
	h.send("tag/level/30-39", env{ID: "band1"})
	rec.await(t, "message band1")
	require.False(t, rec.has("message na1"), "na is not in the descriptor yet")

	h.descriptor(`{"region":{"values":["eu","na"]},"level":{"bands":[[1,49]]}}`)
	rec.await(t, "message na1") // retained, on the new subscription
	eventually(t, "two descriptors", func() bool { return count(rec.lines(), "descriptor") == 2 })
	h.send("tag/level/30-39", env{ID: "band-old"}) // unsubscribed
	h.send("tag/level/1-49", env{ID: "band-new"})
	rec.await(t, "message band-new")
	h.marker(rec)
	require.False(t, rec.has("message band-old"), "still subscribed to a band the descriptor dropped")
	require.Zero(t, c.Stats().Invalid)
}

// The broker dies (kill -9, retained messages lost) and comes back: the client
// reconnects on its own, subscribes again to everything, tag topics included,
// and de-duplicates what it already showed. Then the broker stops cleanly:
// receipts made while it is down are sent once it is back.
func TestReconnectAfterBrokerRestart(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	h.descriptor(`{"region":{"values":["eu"]}}`)
	first := h.send("tag/region/eu", env{ID: "d1", Kind: protocol.KindNotice})
	rec := &recorder{}
	c := h.connect(rec)
	rec.await(t, "message d1")
	h.awaitReceipt("d1", protocol.EventDelivered) // before the kill, which could lose it on its way

	h.broker.Kill()
	h.broker.Start()
	eventually(t, "a second connection", func() bool { return c.Stats().Connects == 2 })
	// Herald re-sends the same send (the broker lost it) and a new one on the
	// tag topic, which the client knows from the descriptor it read before.
	h.send("tag/region/eu", first)
	h.send("tag/region/eu", env{ID: "d2"})
	rec.await(t, "message d2")
	eventually(t, "the re-sent copy", func() bool { return c.Stats().Duplicates == 1 })
	require.Equal(t, 1, count(rec.lines(), "message d1"))
	require.Equal(t, []string{protocol.EventDelivered}, h.receiptsOf("d1"))

	h.awaitSubscribed(h.resubscribed)
	h.broker.Stop() // saves Herald's persistent session for the receipts
	require.NoError(t, c.Displayed("d1"))
	h.broker.Start()
	eventually(t, "a third connection", func() bool { return c.Stats().Connects == 3 })
	h.awaitReceipt("d1", protocol.EventDisplayed)
	require.Equal(t, []string{protocol.EventDelivered, protocol.EventDisplayed}, h.receiptsOf("d1"))
}

func TestConnectRefusesBadOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []client.Options{
		{Game: "g1", Player: "p1"}, // no broker
		{Broker: "tcp://127.0.0.1:1", Game: "g1"},
		{Broker: "tcp://127.0.0.1:1", Game: "g1", Player: "p/1"},
		{Broker: "tcp://127.0.0.1:1", Game: "g#", Player: "p1"},
		{Broker: "tcp://127.0.0.1:1", Game: "g1", Player: "p1", Server: "s 1"},
		{Broker: "tcp://127.0.0.1:1", Game: "g1", Player: "p1", Prefix: "a//b"},
	} {
		_, err := client.Connect(context.Background(), o)
		require.Error(t, err, "%+v", o)
	}
}

// Without a broker, Connect keeps trying until its context ends.
func TestConnectGivesUpWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	attempts := make(chan float64, 100)
	go func() {
		for range 3 {
			<-attempts
		}
		cancel()
	}()
	_, err := client.Connect(ctx, client.Options{
		Broker: "tcp://127.0.0.1:" + itoa(brokertest.FreePort(t)), Game: "g1", Player: "p1", Log: quietLog(),
		Reconnect: client.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond, Rand: func() float64 {
			attempts <- 0.5
			return 0.5
		}},
	})
	require.ErrorIs(t, err, context.Canceled)
}

// Under the README's ACL with passwords, a player reads the descriptor and its
// topics and writes its receipts; a wrong password fails Connect at once instead of retrying.
func TestConnectUnderHeraldACL(t *testing.T) {
	t.Parallel()
	b := brokertest.StartWith(t, brokertest.Options{Listener: brokertest.Security{
		PasswordFile: brokertest.WritePasswordFile(t, map[string]string{"herald": "hpw", "p1": "secret"}),
		ACLFile:      brokertest.WriteFile(t, "herald.acl", brokertest.HeraldACL),
	}})
	h := newHeraldOn(t, b, "herald", "hpw")
	h.descriptor(`{"region":{"values":["eu"]}}`)
	h.send("tag/region/eu", env{ID: "d1"})
	h.send("player/p1", env{ID: "d2"})
	rec := &recorder{}
	h.connect(rec, func(o *client.Options) { o.Password = "secret" })
	rec.await(t, "descriptor") // the ACL lets players read it
	rec.await(t, "message d1") // so the client subscribed to its tag topic
	rec.await(t, "message d2")
	h.awaitReceipt("d2", protocol.EventDelivered)

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	_, err := client.Connect(ctx, client.Options{Broker: b.URL, Game: "g1", Player: "p1", Password: "wrong", Log: quietLog()})
	require.Error(t, err)
	require.False(t, errors.Is(err, context.DeadlineExceeded), "retried a refused password: %v", err)
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	lowest := func() float64 { return 0 }
	highest := func() float64 { return 0.9999999 }
	b := client.Backoff{Min: time.Second, Max: time.Minute}
	for n, base := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute} {
		b.Rand = lowest
		require.Equal(t, base/2, b.Delay(n), "attempt %d, lowest", n)
		b.Rand = highest
		d := b.Delay(n)
		require.True(t, d < base*3/2 && d > base*3/2-time.Millisecond, "attempt %d, highest: %s", n, d)
	}
	b.Rand = lowest
	require.Equal(t, 30*time.Second, b.Delay(1000), "no overflow on a long outage")

	// The defaults: 1 s to 60 s, with real randomness within [0.5, 1.5).
	var zero client.Backoff
	for range 1000 {
		d := zero.Delay(0)
		require.True(t, d >= 500*time.Millisecond && d < 1500*time.Millisecond, "%s", d)
		d = zero.Delay(30)
		require.True(t, d >= 30*time.Second && d < 90*time.Second, "%s", d)
	}
}
