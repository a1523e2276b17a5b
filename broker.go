package main

import (
	"context"

	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/mqttout"
)

// brokerPublisher is the broker connection as the fan-out and the retained-store
// guard see it (dispatch.Publisher, dispatch.SentinelBroker). dispatch declares
// its own message type so that it, and campaigns which records dispatches,
// import no broker library; this is the one place the two meet.
type brokerPublisher struct {
	*mqttout.Conn
}

// PublishAll publishes msgs through mqttout.Conn.PublishAll.
func (b brokerPublisher) PublishAll(ctx context.Context, msgs []dispatch.Message) (dispatch.Result, error) {
	out := make([]mqttout.Message, len(msgs))
	for i, m := range msgs {
		out[i] = mqttout.Message(m)
	}
	res, err := b.Conn.PublishAll(ctx, out)
	return dispatch.Result(res), err
}
