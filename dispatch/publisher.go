package dispatch

import (
	"context"
	"time"
)

// Message is one publish: QoS 1 to Topic. An empty Payload with Retain clears
// the topic's retained message.
type Message struct {
	Topic   string
	Payload []byte
	Retain  bool
}

// Result says what happened to a batch of messages.
type Result struct {
	Acked             int       // messages the broker acknowledged
	Retried           int       // re-sends: after a timeout, a publish error, or a reconnect between send and ack
	Failed            int       // messages given up on
	FirstAck, LastAck time.Time // zero if none
	// Acks and Resent are per message, by index: when it was acknowledged
	// (zero if it was not) and how many times it was sent again. Sends
	// published together (see Handoff) each take their own share (of).
	Acks   []time.Time
	Resent []uint8
}

// of is the part of r that concerns messages [from, to).
func (r Result) of(from, to int) Result {
	var out Result
	for i := from; i < to; i++ {
		if i < len(r.Resent) {
			out.Retried += int(r.Resent[i])
		}
		if i >= len(r.Acks) || r.Acks[i].IsZero() {
			out.Failed++
			continue
		}
		at := r.Acks[i]
		out.Acked++
		if out.FirstAck.IsZero() || at.Before(out.FirstAck) {
			out.FirstAck = at
		}
		if at.After(out.LastAck) {
			out.LastAck = at
		}
	}
	return out
}

// Publisher is what the fan-out needs of the broker: QoS 1 publishes that
// return once the broker acknowledged every one, or ctx ended (mqttout.Conn,
// through brokerlink.Publisher: this package imports no broker library, so neither
// does campaigns, which records dispatches).
type Publisher interface {
	PublishAll(ctx context.Context, msgs []Message) (Result, error)
}
