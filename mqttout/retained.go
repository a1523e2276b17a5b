package mqttout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// ErrNotConnected is returned by CheckRetained while the connection is down.
var ErrNotConnected = errors.New("mqttout: not connected")

// retainedSettle is how long CheckRetained still waits for a retained message
// once its probe is back. Mosquitto queues a subscription's retained messages
// before anything published after the SUBACK, but paho runs each message
// handler in a goroutine of its own (Conn does not ask for order), and EMQX's
// retainer sends retained messages asynchronously.
const retainedSettle = time.Second

// NextConnect returns a channel that is closed the next time the primary
// connection comes up (a first connect or a reconnect).
func (c *Conn) NextConnect() <-chan struct{} {
	return c.primary().nextConnect()
}

// CheckRetained reports whether the broker holds a retained message on topic,
// and returns its payload if so.
//
// A broker answers a SUBSCRIBE with the filter's retained messages, but never
// says that none is coming. So the check subscribes to topic and to probe at
// once and, after the SUBACK, publishes a plain message with a fresh payload to
// probe: a retained message of topic arrives before it. Once the probe is back
// the check waits a moment longer for a late retained message (see
// retainedSettle) before it reports none. It unsubscribes before it returns.
//
// topic and probe are topic names (no wildcards); probe must be this
// connection's alone, and one check at a time may use it. The broker must let
// this client read both. It returns ErrNotConnected, ErrInvalidMessage, ctx's
// error or ErrClosed (wrapped) when it cannot tell, so ctx bounds the check.
func (c *Conn) CheckRetained(ctx context.Context, topic, probe string) (payload []byte, found bool, err error) {
	for _, t := range []string{topic, probe} {
		if err := validTopic(t); err != nil {
			return nil, false, fmt.Errorf("check retained %q: %w", t, err)
		}
	}
	if !c.primary().client.IsConnectionOpen() {
		return nil, false, ErrNotConnected
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, false, fmt.Errorf("probe payload: %w", err)
	}
	nonce := hex.EncodeToString(b[:])
	retained := make(chan []byte, 1)
	probed := make(chan struct{}, 1)
	handle := func(_ mqtt.Client, m mqtt.Message) {
		switch {
		case m.Topic() == topic && m.Retained() && len(m.Payload()) > 0:
			select {
			case retained <- append([]byte(nil), m.Payload()...):
			default:
			}
		case m.Topic() == probe && string(m.Payload()) == nonce:
			select {
			case probed <- struct{}{}:
			default:
			}
		}
	}
	tok := c.primary().client.SubscribeMultiple(map[string]byte{topic: 0, probe: 0}, handle)
	defer c.unsubscribe(topic, probe)
	if err := c.waitToken(ctx, tok); err != nil {
		return nil, false, fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	for filter, code := range tok.(*mqtt.SubscribeToken).Result() {
		if code >= 0x80 {
			return nil, false, fmt.Errorf("subscribe to %s: refused by the broker (%#x)", filter, code)
		}
	}
	if err := c.waitToken(ctx, c.primary().client.Publish(probe, 1, false, nonce)); err != nil {
		return nil, false, fmt.Errorf("publish probe to %s: %w", probe, err)
	}
	select {
	case p := <-retained:
		return p, true, nil
	case <-probed:
	case <-ctx.Done():
		return nil, false, fmt.Errorf("wait for probe on %s: %w", probe, ctx.Err())
	case <-c.closed:
		return nil, false, ErrClosed
	}
	settle := time.NewTimer(retainedSettle)
	defer settle.Stop()
	select {
	case p := <-retained:
		return p, true, nil
	case <-settle.C:
		return nil, false, nil
	case <-ctx.Done():
		return nil, false, fmt.Errorf("wait for a retained message on %s: %w", topic, ctx.Err())
	case <-c.closed:
		return nil, false, ErrClosed
	}
}

// unsubscribe removes subscriptions of a check, waiting at most the publish
// timeout: a subscription left behind on a broken connection is gone anyway.
func (c *Conn) unsubscribe(filters ...string) {
	tok := c.primary().client.Unsubscribe(filters...)
	if !tok.WaitTimeout(c.publishTimeout) || tok.Error() != nil {
		c.log.Debug("unsubscribe after a retained check", "filters", filters, "err", tok.Error())
	}
}

// waitToken waits for tok to complete and returns its error, or ctx's error or
// ErrClosed if those come first.
func (c *Conn) waitToken(ctx context.Context, tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return ErrClosed
	}
}
