package mqttout

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
)

// Against the shared broker: 5,000 retained messages all arrive, then empty
// retained payloads clear every one, for online and for new subscribers.
func TestPublishAllRetainedThenCleared(t *testing.T) {
	t.Parallel()
	url := sharedBrokerURL()
	prefix := "test/" + randomHex(t)
	const n = 5000
	c := dialTest(t, Config{URL: url})
	online := subscribe(t, url, prefix+"/#") // before publishing, QoS 0 (docs/brokers.md: Mosquitto's queue limits)

	ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
	defer cancel()
	msgs := retainedBatch(prefix, n)
	res, err := c.PublishAll(ctx, msgs)
	require.NoError(t, err)
	assert.Equal(t, n, res.Acked)
	assert.Zero(t, res.Failed)
	assert.False(t, res.FirstAck.IsZero())
	assert.False(t, res.LastAck.Before(res.FirstAck))
	online.waitFor(t, patience, "5,000 distinct topics", func() bool {
		full, _ := online.count(prefix + "/")
		return full == n
	})
	assert.Len(t, retainedUnder(t, url, prefix), n, "a new subscriber gets every retained message")

	for i := range msgs {
		msgs[i].Payload = nil
	}
	res, err = c.PublishAll(ctx, msgs)
	require.NoError(t, err)
	assert.Equal(t, n, res.Acked)
	online.waitFor(t, patience, "5,000 clearing empty payloads", func() bool {
		_, cleared := online.count(prefix + "/")
		return cleared == n
	})
	assert.Empty(t, retainedUnder(t, url, prefix), "retained messages left after clearing")
	assert.Equal(t, int64(2*n), c.Counters().Acked)
}

// A broker stopped (SIGTERM) and restarted in the middle of 20,000 publishes:
// PublishAll re-sends what was not confirmed and returns once all are acked,
// and the restarted broker holds all 20,000 retained topics (kept across the
// clean stop by its persistence), so nothing was lost.
func TestPublishAllSurvivesBrokerRestart(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	c := dialTest(t, Config{URL: b.URL})
	waitUp(t, c)
	const n = 20000
	msgs := retainedBatch("test/"+randomHex(t), n)

	ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
	defer cancel()
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := c.PublishAll(ctx, msgs)
		done <- outcome{res, err}
	}()
	require.Eventually(t, func() bool { return c.Counters().Acked >= 2000 }, patience, time.Millisecond)
	b.Stop()
	require.Less(t, c.Counters().Acked, int64(n), "PublishAll finished before the broker stopped")
	time.Sleep(time.Second) // the broker stays down for a second
	b.Start()

	var o outcome
	select {
	case o = <-done:
	case <-time.After(patience):
		t.Fatal("PublishAll did not return after the broker came back")
	}
	require.NoError(t, o.err)
	assert.Equal(t, n, o.res.Acked)
	assert.Zero(t, o.res.Failed)
	require.Len(t, o.res.Acks, n)
	for i, at := range o.res.Acks { // each message's own acknowledgement, within the batch's
		assert.False(t, at.IsZero() || at.Before(o.res.FirstAck) || at.After(o.res.LastAck), "message %d acked at %v", i, at)
	}
	assert.Positive(t, o.res.Retried, "publishes in flight at the stop must have been re-sent")
	t.Logf("acked %d, retried %d", o.res.Acked, o.res.Retried)

	s := subscribe(t, b.URL, "#")
	s.waitFor(t, patience, "all 20,000 retained topics after the restart", func() bool {
		full, _ := s.count("test/")
		return full == n
	})
}

// PublishAll called while the broker is down waits, and completes once it is up.
func TestPublishAllWaitsForBrokerToStart(t *testing.T) {
	t.Parallel()
	b := brokertest.New(t) // not started yet
	c := dialTest(t, Config{URL: b.URL})
	const n = 1000
	prefix := "test/" + randomHex(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
	defer cancel()
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := c.PublishAll(ctx, retainedBatch(prefix, n))
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		t.Fatalf("PublishAll returned while the broker was down: %+v", o)
	case <-time.After(700 * time.Millisecond):
	}
	b.Start()
	var o outcome
	select {
	case o = <-done:
	case <-time.After(patience):
		t.Fatal("PublishAll did not return after the broker started")
	}
	require.NoError(t, o.err)
	assert.Equal(t, n, o.res.Acked)
	assert.Zero(t, o.res.Failed)
	assert.Len(t, retainedUnder(t, b.URL, prefix), n)
}

// With a broker that never comes up, PublishAll returns ctx's error promptly
// and counts every message as failed.
func TestPublishAllContextEnds(t *testing.T) {
	t.Parallel()
	c := dialTest(t, Config{URL: "tcp://127.0.0.1:" + itoa(brokertest.FreePort(t))})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := c.PublishAll(ctx, retainedBatch("test/"+randomHex(t), 100))
	elapsed := time.Since(start)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, elapsed, 1500*time.Millisecond, "PublishAll outlived its context")
	assert.Equal(t, Result{Failed: 100}, Result{Acked: res.Acked, Retried: res.Retried, Failed: res.Failed,
		FirstAck: res.FirstAck, LastAck: res.LastAck})
	assert.Equal(t, make([]time.Time, 100), res.Acks, "no message acknowledged")
	assert.Equal(t, Counters{Failed: 100}, c.Counters())
}

// Close ends PublishAll calls that are waiting for the broker; later calls fail at once.
func TestPublishAllClosed(t *testing.T) {
	t.Parallel()
	waiting := make(chan struct{}, 1)
	log := slog.New(onMessage{msg: "broker not connected; publishing waits for it", seen: waiting})
	c, err := Dial(Config{URL: "tcp://127.0.0.1:" + itoa(brokertest.FreePort(t)), Log: log})
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		_, err := c.PublishAll(context.Background(), retainedBatch("test/"+randomHex(t), 10))
		errc <- err
	}()
	select {
	case <-waiting:
	case <-time.After(patience):
		t.Fatal("PublishAll never waited for the broker")
	}
	c.Close()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, ErrClosed)
	case <-time.After(patience):
		t.Fatal("PublishAll still running a minute after Close")
	}
	res, err := c.PublishAll(context.Background(), retainedBatch("test/x", 3))
	require.ErrorIs(t, err, ErrClosed)
	assert.Equal(t, 3, res.Failed)
	c.Close() // twice is fine
}

// Several callers share one window: the publishes awaiting their outcome never
// exceed MaxInFlight, and every caller's messages are acked.
func TestPublishAllConcurrentCallersShareWindow(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	const window, callers, each = 16, 8, 1500
	c := dialTest(t, Config{URL: b.URL, MaxInFlight: window})
	waitUp(t, c)
	prefix := "test/" + randomHex(t)

	stop := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		var max int64
		for {
			select {
			case <-stop:
				peak <- max
				return
			default:
			}
			if n := c.Counters().InFlight; n > max {
				max = n
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, callers)
	results := make([]Result, callers)
	for i := range callers {
		wg.Go(func() {
			results[i], errs[i] = c.PublishAll(ctx, retainedBatch(prefix+"/"+itoa(i), each))
		})
	}
	wg.Wait()
	close(stop)
	for i := range callers {
		require.NoError(t, errs[i])
		assert.Equal(t, each, results[i].Acked)
	}
	p := <-peak
	assert.LessOrEqual(t, p, int64(window))
	assert.Positive(t, p)
	got := c.Counters()
	assert.Equal(t, int64(callers*each), got.Acked)
	assert.Zero(t, got.InFlight)
	assert.Len(t, retainedUnder(t, b.URL, prefix), callers*each)
}

// Pins the paho behaviour of docs/brokers.md that PublishAll's epochs exist for: after
// a reconnect paho completes the tokens of the QoS 1 publishes it re-sends,
// without error, although the broker never acknowledged (nor here even received)
// them. If this test fails, paho changed and the epoch logic deserves a look.
func TestPahoCompletesUnackedTokensOnReconnect(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	p := startFaultProxy(t, strings.TrimPrefix(b.URL, "tcp://"))
	client := pahoClient(t, p.URL, func(o *mqtt.ClientOptions) {
		o.SetAutoReconnect(true).SetMaxReconnectInterval(time.Second)
	})
	prefix := "test/" + randomHex(t)

	p.SetDrop(true)
	toks := make([]mqtt.Token, 10)
	for i := range toks {
		toks[i] = client.Publish(prefix+"/"+itoa(i), 1, true, "x")
	}
	require.Eventually(t, func() bool { return p.Swallowed() == 10 }, patience, time.Millisecond)
	for _, tok := range toks {
		require.False(t, tok.WaitTimeout(10*time.Millisecond), "token completed without a PUBACK")
	}
	p.Cut() // drop mode stays on: the re-sends after the reconnect are swallowed too
	for i, tok := range toks {
		require.True(t, tok.WaitTimeout(patience), "token %d never completed", i)
		assert.NoError(t, tok.Error(), "token %d", i)
	}
	assert.Eventually(t, func() bool { return p.Swallowed() == 20 }, patience, time.Millisecond,
		"paho re-sends each publish once after the reconnect")
	p.SetDrop(false)
	client.Disconnect(100)
	assert.Empty(t, retainedUnder(t, b.URL, prefix), "the broker never got these publishes")
}

// PublishAll does not take those completions as acknowledgements: it re-sends,
// and returns only once the broker really acknowledged every message.
func TestPublishAllResendsTokensCompletedByReconnect(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	p := startFaultProxy(t, strings.TrimPrefix(b.URL, "tcp://"))
	c := dialTest(t, Config{URL: p.URL, PublishTimeout: time.Hour}) // no retry by timeout here
	waitUp(t, c)
	prefix := "test/" + randomHex(t)
	const n = 10

	p.SetDrop(true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
	defer cancel()
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := c.PublishAll(ctx, retainedBatch(prefix, n))
		done <- outcome{res, err}
	}()
	require.Eventually(t, func() bool { return p.Swallowed() == n }, patience, time.Millisecond)
	p.Cut() // paho re-sends (swallowed) and completes the tokens
	require.Eventually(t, func() bool { return c.Counters().Retried >= n }, patience, time.Millisecond,
		"PublishAll took tokens completed by a reconnect for acknowledgements")
	assert.Zero(t, c.Counters().Acked)
	select {
	case o := <-done:
		t.Fatalf("PublishAll returned although the broker has nothing: %+v", o)
	default:
	}
	p.SetDrop(false)
	p.Cut() // a clean connection now: the next re-sends arrive and are acked

	var o outcome
	select {
	case o = <-done:
	case <-time.After(patience):
		t.Fatal("PublishAll did not return once the network healed")
	}
	require.NoError(t, o.err)
	assert.Equal(t, n, o.res.Acked)
	assert.GreaterOrEqual(t, o.res.Retried, n)
	assert.Len(t, retainedUnder(t, b.URL, prefix), n)
}

func TestPublishAllRefusesInvalidTopics(t *testing.T) {
	t.Parallel()
	c := dialTest(t, Config{URL: "tcp://127.0.0.1:" + itoa(brokertest.FreePort(t))})
	for _, topic := range []string{"", "a/+/b", "a/#", "a\x00b", "a\xffb", strings.Repeat("a", 65536)} {
		res, err := c.PublishAll(context.Background(), []Message{{Topic: "ok/1"}, {Topic: topic}})
		require.ErrorIs(t, err, ErrInvalidMessage, "topic %q", topic)
		assert.Contains(t, err.Error(), "message 1")
		assert.Equal(t, Result{}, res)
	}
	res, err := c.PublishAll(context.Background(), nil)
	require.NoError(t, err)
	assert.Equal(t, Result{}, res)
}

func TestDialRefusesBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{URL: "tcp://127.0.0.1:1", MaxInFlight: -1},
		{URL: "tcp://127.0.0.1:1", MaxInFlight: maxInFlightLimit + 1},
		{URL: "tcp://127.0.0.1:1", PublishTimeout: -time.Second},
	} {
		_, err := Dial(cfg)
		assert.Error(t, err, "%+v", cfg)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	assert.Equal(t, 50*time.Millisecond, backoff(1))
	assert.Equal(t, 100*time.Millisecond, backoff(2))
	assert.Equal(t, 1600*time.Millisecond, backoff(6))
	assert.Equal(t, 2*time.Second, backoff(7))
	assert.Equal(t, 2*time.Second, backoff(255))
}

func itoa(i int) string { return strconv.Itoa(i) }

// onMessage is a log handler that signals seen (without blocking) each time msg
// is logged.
type onMessage struct {
	msg  string
	seen chan struct{}
}

func (h onMessage) Enabled(context.Context, slog.Level) bool { return true }

func (h onMessage) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.seen <- struct{}{}:
		default:
		}
	}
	return nil
}

func (h onMessage) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h onMessage) WithGroup(string) slog.Handler      { return h }
