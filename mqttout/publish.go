package mqttout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// ErrInvalidMessage is returned (wrapped, naming the message) by PublishAll for a
// message the broker would refuse by dropping the connection: an empty topic,
// wildcards, NUL, invalid UTF-8 or a topic over 65,535 bytes. Nothing of the
// batch is sent then.
var ErrInvalidMessage = errors.New("mqttout: invalid message")

// Message is one publish.
type Message struct {
	Topic   string
	Payload []byte // empty + Retain clears a retained topic
	Retain  bool
}

// Result says what happened to a batch.
type Result struct {
	Acked             int       // messages the broker acknowledged (PUBACK) on an unbroken connection
	Retried           int       // re-sends: after a timeout, a publish error, or a reconnect between send and ack
	Failed            int       // messages given up on (only when ctx ended, or Close was called, first)
	FirstAck, LastAck time.Time // zero if none
	// Acks and Resent are per message, by index: when it was acknowledged
	// (zero if it was not) and how many times it was sent again; for a caller
	// that publishes the messages of several owners in one call.
	Acks   []time.Time
	Resent []uint8
}

// Counters are cumulative over the life of a Conn, for metrics.
type Counters struct {
	Acked    int64 // publishes acknowledged on an unbroken connection
	Retried  int64 // re-sends
	Failed   int64 // publishes given up on because ctx ended or Close was called
	InFlight int64 // publishes awaiting their outcome right now (a gauge)
}

// Counters returns the cumulative publish counters of c.
func (c *Conn) Counters() Counters {
	return Counters{
		Acked:    c.acked.Load(),
		Retried:  c.retried.Load(),
		Failed:   c.failed.Load(),
		InFlight: c.inFlight.Load(),
	}
}

const (
	retryBackoffMin = 50 * time.Millisecond
	retryBackoffMax = 2 * time.Second
)

// PublishAll publishes every message with QoS 1, many in flight at once (never
// publish-wait-publish) and spread over every connection of c that is up, and
// returns when the broker has acknowledged each one, or when ctx ends (then it
// returns ctx's error and counts the unacknowledged ones as Failed). It never
// gives up while ctx lives: while the broker is down it waits for a connection
// and re-sends with backoff. Messages are not ordered: each connection sends
// the next one due as soon as the window lets it.
//
// A publish counts as acknowledged only if its PUBACK arrived on the connection
// it was sent on, unbroken: paho completes the tokens of publishes it re-sends
// after a reconnect without waiting for their PUBACK (docs/brokers.md), so those
// are sent again, and a message may reach subscribers more than once.
//
// The in-flight window (Config.MaxInFlight) is shared by all concurrent callers.
// Errors: ErrInvalidMessage (nothing sent), ctx.Err() or ErrClosed, wrapped.
func (c *Conn) PublishAll(ctx context.Context, msgs []Message) (Result, error) {
	for i, m := range msgs {
		if err := validTopic(m.Topic); err != nil {
			return Result{}, fmt.Errorf("message %d (topic %q): %w", i, m.Topic, err)
		}
	}
	if len(msgs) == 0 {
		return Result{}, nil
	}
	b := &batch{
		c:        c,
		msgs:     msgs,
		attempts: make([]uint8, len(msgs)),
		acks:     make([]time.Time, len(msgs)),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	// Per connection, a sender and a collector of what it sent, in send order.
	var senders, collectors sync.WaitGroup
	stopErrs := make([]error, len(c.links))
	for k, l := range c.links {
		// A message has one attempt in flight at most, so a small batch (a
		// one-topic send) needs no window-sized buffer cleared on every call.
		inflight := make(chan flight, min(cap(c.slots), len(msgs)))
		collectors.Go(func() { b.collect(ctx, l, inflight) })
		senders.Go(func() {
			defer close(inflight)
			stopErrs[k] = b.send(ctx, l, inflight)
		})
	}
	senders.Wait()
	collectors.Wait()

	res := b.res
	res.Acked, res.Acks, res.Resent = b.acked, b.acks, b.attempts
	if res.Acked == len(msgs) {
		return res, nil
	}
	res.Failed = len(msgs) - res.Acked
	c.failed.Add(int64(res.Failed))
	stopErr := errors.New("publishing stopped early") // cannot stay: senders return nil only once all are acked
	for _, err := range stopErrs {
		if err != nil {
			stopErr = err
			break
		}
	}
	return res, fmt.Errorf("publish %d messages: %d unacknowledged: %w", len(msgs), res.Failed, stopErr)
}

// batch is the state of one PublishAll call. One sender goroutine per
// connection (send) takes the next message due and publishes it; one collector
// per connection (collect) waits for the outcomes of what that connection sent,
// in send order, and queues what must be re-sent.
type batch struct {
	c        *Conn
	msgs     []Message
	attempts []uint8     // re-sends per message, for the error backoff (capped at 255)
	acks     []time.Time // when each message was acknowledged

	mu    sync.Mutex
	next  int         // next message never sent yet
	retry []retryItem // FIFO of messages to send again
	acked int
	res   Result
	wake  chan struct{} // a re-send was queued

	done chan struct{} // closed once every message is acked
}

type retryItem struct {
	i         int
	notBefore time.Time
}

type flight struct {
	i        int
	tok      mqtt.Token
	epoch    uint64
	deadline time.Time
}

// send publishes messages on l until all are acked (nil) or ctx ends or c is
// closed (that error). It takes a message only while l is up, so that the
// other connections carry the batch while l is down. Each publish takes a
// slot of the shared window; l's collector frees it.
func (b *batch) send(ctx context.Context, l *link, inflight chan<- flight) error {
	c := b.c
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := c.waitConnected(ctx, l, b.done); err != nil {
			return err
		}
		select {
		case <-b.done:
			return nil
		default:
		}
		i, wait, ok := b.take(time.Now())
		if !ok {
			var after <-chan time.Time
			if wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				after = timer.C
			}
			select {
			case <-b.done:
				return nil
			case <-b.wake:
			case <-after:
			case <-ctx.Done():
				return ctx.Err()
			case <-c.closed:
				return ErrClosed
			}
			continue
		}
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closed:
			return ErrClosed
		}
		m := &b.msgs[i]
		// The epoch is read before the publish reaches paho's store, so any
		// reconnect that could complete its token falsely advances it after.
		epoch := l.epoch.Load()
		tok := l.client.Publish(m.Topic, 1, m.Retain, m.Payload)
		c.inFlight.Add(1)
		inflight <- flight{i: i, tok: tok, epoch: epoch, deadline: time.Now().Add(c.publishTimeout)}
	}
}

// take returns the next message to send: a due re-send first, then a new one.
// With nothing to send now it returns ok false and, if a re-send waits for its
// backoff, how long until it is due.
func (b *batch) take(now time.Time) (i int, wait time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.retry) > 0 {
		r := b.retry[0]
		if !r.notBefore.After(now) {
			b.retry = b.retry[1:]
			return r.i, 0, true
		}
		wait = r.notBefore.Sub(now)
	}
	if b.next < len(b.msgs) {
		b.next++
		return b.next - 1, 0, true
	}
	return -1, wait, false
}

// collect waits for the outcome of each flight l sent, in send order, frees its
// window slot, and counts it as acked or queues it to be sent again. After ctx
// ends or c is closed it only frees the slots of what is left.
func (b *batch) collect(ctx context.Context, l *link, inflight <-chan flight) {
	c := b.c
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	stopped := false
	for f := range inflight {
		completed := false
		if !stopped {
			select {
			case <-f.tok.Done():
				completed = true
			default:
				timer.Reset(time.Until(f.deadline))
				select {
				case <-f.tok.Done():
					completed = true
				case <-timer.C:
				case <-ctx.Done():
					stopped = true
				case <-c.closed:
					stopped = true
				}
				timer.Stop()
			}
		}
		// The epoch is read after the token completed: if paho completed it while
		// re-sending after a reconnect, the epoch moved on before (epochStore).
		sameConn := l.epoch.Load() == f.epoch
		c.inFlight.Add(-1) // before the slot is free, so the gauge never exceeds the window
		<-c.slots
		if stopped {
			continue
		}
		var err error
		if completed {
			err = f.tok.Error()
		}
		if completed && err == nil && sameConn {
			b.ack(f.i)
			continue
		}
		b.requeue(f.i, completed, err)
	}
}

func (b *batch) ack(i int) {
	now := time.Now()
	b.c.acked.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.acks[i] = now
	if b.acked == 0 || now.Before(b.res.FirstAck) {
		b.res.FirstAck = now
	}
	if now.After(b.res.LastAck) {
		b.res.LastAck = now
	}
	b.acked++
	if b.acked == len(b.msgs) {
		close(b.done)
	}
}

// requeue queues message i to be sent again: at once after a timeout or a
// reconnect, after a growing backoff after a publish error.
func (b *batch) requeue(i int, completed bool, err error) {
	b.c.retried.Add(1)
	b.mu.Lock()
	b.res.Retried++
	if b.attempts[i] < 255 {
		b.attempts[i]++
	}
	attempt := b.attempts[i]
	notBefore := time.Now()
	reason := "no PUBACK within the publish timeout"
	switch {
	case err != nil:
		reason = "publish error"
		notBefore = notBefore.Add(backoff(attempt))
	case completed:
		reason = "completed across a reconnect, unconfirmed"
	}
	b.retry = append(b.retry, retryItem{i: i, notBefore: notBefore})
	b.mu.Unlock()
	b.c.log.Debug("re-sending publish", "topic", b.msgs[i].Topic, "reason", reason,
		"attempt", int(attempt)+1, "err", err)
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// backoff is the pause before re-send number n (n >= 1) after a publish error.
func backoff(n uint8) time.Duration {
	d := retryBackoffMin
	for ; n > 1 && d < retryBackoffMax; n-- {
		d *= 2
	}
	return min(d, retryBackoffMax)
}

// waitConnected returns once l is open, checking again on each connect and with
// a backoff capped at a couple of seconds. It returns nil at once when done is
// closed (the batch needs l no more), and ctx's error or ErrClosed if those
// come first.
func (c *Conn) waitConnected(ctx context.Context, l *link, done <-chan struct{}) error {
	if l.client.IsConnectionOpen() {
		return nil
	}
	// While another connection is up it carries the publishing: that is no news.
	level, resumed := slog.LevelWarn, slog.LevelInfo
	if c.anyUp() {
		level, resumed = slog.LevelDebug, slog.LevelDebug
	}
	c.log.Log(ctx, level, "broker not connected; publishing waits for it", "client_id", l.name)
	start := time.Now()
	delay := retryBackoffMin
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		up := l.nextConnect()
		if l.client.IsConnectionOpen() {
			c.log.Log(ctx, resumed, "broker connected; publishing resumes", "client_id", l.name,
				"waited", time.Since(start).Round(time.Millisecond).String())
			return nil
		}
		select {
		case <-up:
		case <-timer.C:
			delay = min(2*delay, retryBackoffMax)
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closed:
			return ErrClosed
		}
		timer.Reset(delay)
	}
}

// anyUp reports whether any connection of c is up.
func (c *Conn) anyUp() bool {
	for _, l := range c.links {
		if l.client.IsConnectionOpen() {
			return true
		}
	}
	return false
}

// validTopic refuses what a broker answers by closing the connection, which
// PublishAll would otherwise re-send forever.
func validTopic(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("%w: empty topic", ErrInvalidMessage)
	case len(t) > 65535:
		return fmt.Errorf("%w: topic longer than 65535 bytes", ErrInvalidMessage)
	case strings.ContainsAny(t, "+#\x00"):
		return fmt.Errorf("%w: topic holds a wildcard or NUL", ErrInvalidMessage)
	case !utf8.ValidString(t):
		return fmt.Errorf("%w: topic is not UTF-8", ErrInvalidMessage)
	}
	return nil
}
