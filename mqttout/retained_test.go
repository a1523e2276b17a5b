package mqttout

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
)

// checkRetained runs CheckRetained with a generous bound.
func checkRetained(t *testing.T, c *Conn, topic, probe string) ([]byte, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	payload, found, err := c.CheckRetained(ctx, topic, probe)
	require.NoError(t, err)
	return payload, found
}

// reconnected waits until next (a NextConnect channel taken before the
// broker went away) is closed and the connection is up.
func reconnected(t *testing.T, c *Conn, next <-chan struct{}) {
	t.Helper()
	select {
	case <-next:
	case <-time.After(30 * time.Second):
		t.Fatal("the connection did not come back")
	}
	waitUp(t, c)
}

// CheckRetained tells a retained message from none, and sees one lost by a
// broker killed with SIGKILL (Mosquitto then saves nothing) but kept across a
// clean stop; NextConnect tells when the connection is back.
func TestCheckRetainedAcrossBrokerRestarts(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	c := dialTest(t, Config{URL: b.URL})
	waitUp(t, c)
	prefix := "test/" + randomHex(t)
	topic, probe := prefix+"/$herald/sentinel", prefix+"/$herald/probe/"+randomHex(t)

	_, found := checkRetained(t, c, topic, probe)
	require.False(t, found, "nothing retained yet")
	publish(t, c, Message{Topic: topic, Payload: []byte("v1"), Retain: true})
	payload, found := checkRetained(t, c, topic, probe)
	require.True(t, found)
	require.Equal(t, "v1", string(payload))
	payload, found = checkRetained(t, c, topic, probe)
	require.True(t, found, "a second check on the same connection sees it again")
	require.Equal(t, "v1", string(payload))

	// Killed first: a later kill would bring back the file the clean stop saved.
	next := c.NextConnect()
	b.Kill()
	b.Start()
	reconnected(t, c, next)
	_, found = checkRetained(t, c, topic, probe)
	require.False(t, found, "lost with the killed broker")

	publish(t, c, Message{Topic: topic, Payload: []byte("v2"), Retain: true})
	next = c.NextConnect()
	b.Stop() // SIGTERM: Mosquitto saves its retained messages
	b.Start()
	reconnected(t, c, next)
	payload, found = checkRetained(t, c, topic, probe)
	require.True(t, found, "kept across a clean restart")
	require.Equal(t, "v2", string(payload))
}

// Without a connection, CheckRetained says it cannot tell.
func TestCheckRetainedNotConnected(t *testing.T) {
	t.Parallel()
	b := brokertest.New(t) // never started
	c := dialTest(t, Config{URL: b.URL})
	_, _, err := c.CheckRetained(context.Background(), "test/$herald/sentinel", "test/$herald/probe/x")
	require.ErrorIs(t, err, ErrNotConnected)
	_, _, err = c.CheckRetained(context.Background(), "test/+/sentinel", "test/$herald/probe/x")
	require.ErrorIs(t, err, ErrInvalidMessage)
}
