package client

import "context"

// pendingReceipt is a receipt waiting for the broker's acknowledgement.
type pendingReceipt struct {
	seq     uint64
	topic   string
	payload []byte
}

// queueReceipt is the session's Publish: receipts wait in c.pending until the
// broker has acknowledged them, so that those made while the connection is
// down are sent once it is back. Past maxPendingReceipts the oldest is dropped.
func (c *Client) queueReceipt(topic string, payload []byte) {
	c.mu.Lock()
	if len(c.pending) >= maxPendingReceipts {
		c.pending = c.pending[1:]
		c.dropped++
	}
	c.seq++
	c.pending = append(c.pending, pendingReceipt{seq: c.seq, topic: topic, payload: payload})
	c.mu.Unlock()
	signal(c.receipt)
}

// sendReceipts publishes pending receipts in order, one at a time, while the
// connection is up, until Close. A receipt whose publish fails stays first in
// line until the next connection; sending one twice is harmless (Herald counts
// each once).
func (c *Client) sendReceipts() {
	defer c.wg.Done()
	ctx := context.Background() // c.wait also ends on Close
	for {
		select {
		case <-c.closing:
			return
		case <-c.receipt:
		}
		for {
			c.mu.Lock()
			if !c.online || len(c.pending) == 0 {
				c.mu.Unlock()
				break
			}
			r := c.pending[0]
			c.mu.Unlock()
			if err := c.wait(ctx, c.mqtt.Publish(r.topic, 1, false, r.payload), operationTimeout); err != nil {
				c.log.Debug("herald: receipt not sent; kept for the next connection", "err", err)
				break
			}
			c.mu.Lock()
			if len(c.pending) > 0 && c.pending[0].seq == r.seq {
				c.pending = c.pending[1:]
			}
			c.mu.Unlock()
		}
	}
}
