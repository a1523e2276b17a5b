package mqttout

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/heraldpush/herald/internal/brokertest"
)

// A broker that takes one connection of Herald's three refuses the others
// (Mosquitto's max_connections); publishing goes on over the one it took.
//
// Not parallel: it checks that every goroutine it started ends (but paho's, see
// ignorePahoDisconnect).
func TestPublishAllOverTheConnectionsThatAreUp(t *testing.T) {
	before := goleak.IgnoreCurrent()
	broker := brokertest.Start(t, "max_connections 1")
	c := dialTest(t, Config{URL: broker.URL, Connections: 3})
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	res, err := c.PublishAll(ctx, retainedBatch("test/"+randomHex(t), 500))
	require.NoError(t, err)
	require.Equal(t, 500, res.Acked)
	require.Zero(t, res.Failed)

	c.Close()
	broker.Kill()
	require.Eventually(t, func() bool { return goleak.Find(before, ignorePahoDisconnect) == nil }, patience,
		50*time.Millisecond, "goroutines left after Close")
}

func TestDialChecksConnections(t *testing.T) {
	t.Parallel()
	for _, n := range []int{-1, MaxConnections + 1} {
		_, err := Dial(Config{URL: "tcp://127.0.0.1:1", Connections: n})
		require.ErrorContains(t, err, "Connections", "%d connections", n)
	}
}
