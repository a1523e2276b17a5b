// Package brokerlink is the one place the broker connection (mqttout) and the
// domain packages that publish meet: the fan-out (dispatch) and the game
// descriptors (games). dispatch declares its own message type so that it, and
// campaigns which records dispatches, import no broker library; Publisher
// hands those messages to mqttout. Kick-outs, a few messages each whose
// acknowledgements they wait on, take mqttout's own types (kickouts.Publisher).
package brokerlink

import (
	"context"

	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/mqttout"
)

// Publisher is a broker connection as the fan-out, the retained-store guard
// and the descriptor publisher see it (dispatch.Publisher,
// dispatch.SentinelBroker, games.DescriptorBroker).
type Publisher struct {
	*mqttout.Conn
}

// PublishAll publishes msgs through mqttout.Conn.PublishAll.
func (p Publisher) PublishAll(ctx context.Context, msgs []dispatch.Message) (dispatch.Result, error) {
	out := make([]mqttout.Message, len(msgs))
	for i, m := range msgs {
		out[i] = mqttout.Message(m)
	}
	res, err := p.Conn.PublishAll(ctx, out)
	return dispatch.Result(res), err
}

// PublishRetained publishes one retained message through mqttout.Conn.PublishAll.
func (p Publisher) PublishRetained(ctx context.Context, topic string, payload []byte) error {
	_, err := p.Conn.PublishAll(ctx, []mqttout.Message{{Topic: topic, Payload: payload, Retain: true}})
	return err
}
