package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/heraldpush/herald/protocol"
)

// Options say where the broker is, who the player is and what to call.
type Options struct {
	// Broker is the broker's URL: tcp://host:1883, ssl://host:8883,
	// ws://host/mqtt or wss://host/mqtt.
	Broker   string
	Username string // the MQTT user name; the player id if empty
	Password string // what the game's login gives
	ClientID string // unique per connection; {player}-{random} if empty

	Game   string
	Player string
	Server string            // the game server (shard); empty if the game has none
	Tags   map[string]string // a value per tag the player carries; a banded tag's number in decimal
	Prefix string            // Herald's topic prefix; "herald" if empty
	Locale string            // the player's locale, for Text: "zh-TW"
	TLS    *tls.Config       // for ssl:// and wss://; nil: the system's roots

	Reconnect Backoff          // waits between reconnect attempts
	Now       func() time.Time // the best clock the game has; time.Now if nil
	Log       *slog.Logger     // slog.Default() if nil
	// RecallGrace: after a reconnect, a message held whose retained copy has
	// not come back this long after the broker acknowledged the subscriptions
	// was recalled while the client was offline, and is removed
	// (RemoveRecalled). DefaultRecallGrace if zero.
	RecallGrace time.Duration

	// Callbacks, each optional. They run one at a time, in order, and should
	// return quickly: the next message waits for them.
	OnMessage    func(Message)                              // show it
	OnRemove     func(campaign string, reason RemoveReason) // hide the campaign's message
	OnKickout    func(Kickout)                              // log the account out
	OnDescriptor func(protocol.Descriptor)                  // the game's descriptor arrived or changed
}

// Timeouts of the broker operations a Client makes.
const (
	connectTimeout   = 10 * time.Second
	operationTimeout = 10 * time.Second
	// maxPendingReceipts bounds the receipts kept while the connection is down.
	maxPendingReceipts = 1024
)

// Client is one player's connection to Herald through the game's broker.
type Client struct {
	sess    *Session
	mqtt    mqtt.Client
	log     *slog.Logger
	backoff Backoff

	lost    chan struct{} // the connection was lost
	resub   chan struct{} // the session's subscriptions changed
	receipt chan struct{} // receipts are waiting, or the connection came up
	closing chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	mu         sync.Mutex
	online     bool
	want       []string         // the session's topic filters
	subscribed map[string]bool  // what the current connection subscribed to
	pending    []pendingReceipt // receipts not yet acknowledged by the broker
	seq        uint64
	connects   int64
	dropped    int64
}

// Connect connects to the broker, subscribes (protocol.md sections 1 and 2) and
// returns a Client that applies section 5 to each message and reconnects on its
// own until Close. It retries the first connection with Options.Reconnect until
// ctx is done, and returns at once an error for invalid Options or a broker that
// refuses the credentials or the client id. ctx bounds only Connect.
func Connect(ctx context.Context, opts Options) (*Client, error) {
	if opts.Broker == "" {
		return nil, errors.New("client: no Broker URL")
	}
	if opts.Username == "" {
		opts.Username = opts.Player
	}
	if opts.ClientID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		opts.ClientID = opts.Player + "-" + hex.EncodeToString(b[:])
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	c := &Client{
		log:        opts.Log.With("player", opts.Player, "broker", opts.Broker),
		backoff:    opts.Reconnect,
		lost:       make(chan struct{}, 1),
		resub:      make(chan struct{}, 1),
		receipt:    make(chan struct{}, 1),
		closing:    make(chan struct{}),
		subscribed: map[string]bool{},
	}
	sess, err := NewSession(SessionConfig{
		Game: opts.Game, Player: opts.Player, Server: opts.Server, Tags: opts.Tags,
		Prefix: opts.Prefix, Locale: opts.Locale, Now: opts.Now, Log: c.log, RecallGrace: opts.RecallGrace,
		OnMessage: opts.OnMessage, OnRemove: opts.OnRemove, OnKickout: opts.OnKickout, OnDescriptor: opts.OnDescriptor,
		Publish:         c.queueReceipt,
		OnSubscriptions: c.setSubscriptions,
	})
	if err != nil {
		return nil, err
	}
	c.sess, c.want = sess, sess.Subscriptions()
	mo := mqtt.NewClientOptions().
		AddBroker(opts.Broker).
		SetClientID(opts.ClientID).
		SetUsername(opts.Username).
		SetPassword(opts.Password).
		SetCleanSession(true).   // offline delivery is by retained messages only
		SetAutoReconnect(false). // paho's has no jitter: see reconnect
		SetConnectRetry(false).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(30 * time.Second).
		SetPingTimeout(10 * time.Second).
		SetWriteTimeout(operationTimeout).
		SetOrderMatters(true). // a removal must not overtake the message it removes
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { sess.Handle(m.Topic(), m.Payload()) }).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			c.log.Warn("herald: broker connection lost", "err", err)
			signal(c.lost)
		})
	if opts.TLS != nil {
		mo.SetTLSConfig(opts.TLS)
	}
	c.mqtt = mqtt.NewClient(mo)

	for attempt := 0; ; attempt++ {
		err := c.connect(ctx)
		if err == nil {
			break
		}
		if permanent(err) {
			sess.Close()
			return nil, fmt.Errorf("client: connect to %s: %w", opts.Broker, err)
		}
		wait := c.backoff.Delay(attempt)
		c.log.Info("herald: connection attempt failed", "err", err, "retry_in", wait.Round(time.Millisecond).String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			sess.Close()
			return nil, fmt.Errorf("client: connect to %s: %w (last attempt: %w)", opts.Broker, ctx.Err(), err)
		case <-t.C:
		}
	}
	c.wg.Add(2)
	go c.run()
	go c.sendReceipts()
	return c, nil
}

// permanent reports whether a connection attempt failed for a reason that
// waiting does not cure.
func permanent(err error) bool {
	return errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) ||
		errors.Is(err, packets.ErrorRefusedNotAuthorised) ||
		errors.Is(err, packets.ErrorRefusedIDRejected)
}

// signal wakes whoever waits on ch without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// connect makes one connection and subscribes to every filter the session
// wants, at once. What the session holds from an earlier connection must be
// confirmed by the retained copies this one brings (Session.Reconnected).
func (c *Client) connect(ctx context.Context) error {
	tok := c.mqtt.Connect()
	if err := c.wait(ctx, tok, connectTimeout+time.Second); err != nil {
		c.mqtt.Disconnect(0)
		return err
	}
	c.mu.Lock()
	want := slices.Clone(c.want)
	c.subscribed = map[string]bool{}
	c.mu.Unlock()
	c.sess.Reconnected()
	if err := c.subscribe(ctx, want); err != nil {
		c.mqtt.Disconnect(0)
		return err
	}
	c.sess.Subscribed()
	c.mu.Lock()
	c.online = true
	c.connects++
	c.mu.Unlock()
	signal(c.receipt)
	// Drain a loss of an earlier connection that raced with this one.
	select {
	case <-c.lost:
		if !c.mqtt.IsConnectionOpen() {
			signal(c.lost)
		}
	default:
	}
	c.log.Info("herald: connected", "subscriptions", len(want))
	return nil
}

// wait waits for tok, at most timeout, until ctx is done or Close is called.
func (c *Client) wait(ctx context.Context, tok mqtt.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("no answer from the broker in %s", timeout)
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closing:
		return errors.New("client closed")
	}
}

// subscribe subscribes to filters, QoS 1, in one SUBSCRIBE.
func (c *Client) subscribe(ctx context.Context, filters []string) error {
	if len(filters) == 0 {
		return nil
	}
	m := make(map[string]byte, len(filters))
	for _, f := range filters {
		m[f] = 1
	}
	tok := c.mqtt.SubscribeMultiple(m, nil)
	if err := c.wait(ctx, tok, operationTimeout); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code == 0x80 {
				c.log.Warn("herald: the broker refused a subscription", "filter", f)
			}
		}
	}
	c.mu.Lock()
	for _, f := range filters {
		c.subscribed[f] = true
	}
	c.mu.Unlock()
	return nil
}

// setSubscriptions is the session's OnSubscriptions: run resubscribes.
func (c *Client) setSubscriptions(filters []string) {
	c.mu.Lock()
	c.want = filters
	c.mu.Unlock()
	signal(c.resub)
}

// run reconnects after a loss and follows the session's subscriptions, until
// Close.
func (c *Client) run() {
	defer c.wg.Done()
	ctx := context.Background() // c.wait also ends on Close
	for {
		select {
		case <-c.closing:
			return
		case <-c.lost:
			if !c.mqtt.IsConnectionOpen() {
				c.reconnect(ctx)
			}
		case <-c.resub:
			c.resubscribe(ctx)
		}
	}
}

// reconnect connects again with backoff and jitter until it succeeds or Close.
func (c *Client) reconnect(ctx context.Context) {
	c.mu.Lock()
	c.online = false
	c.mu.Unlock()
	for attempt := 0; ; attempt++ {
		wait := c.backoff.Delay(attempt)
		c.log.Info("herald: reconnecting", "attempt", attempt+1, "in", wait.Round(time.Millisecond).String())
		t := time.NewTimer(wait)
		select {
		case <-c.closing:
			t.Stop()
			return
		case <-t.C:
		}
		err := c.connect(ctx)
		if err == nil {
			return
		}
		c.log.Warn("herald: reconnect failed", "attempt", attempt+1, "err", err)
	}
}

// resubscribe subscribes to the filters the session wants and the connection
// lacks, and unsubscribes from those it no longer wants. After a failure the
// next reconnect subscribes to everything anyway.
func (c *Client) resubscribe(ctx context.Context) {
	c.mu.Lock()
	if !c.online {
		c.mu.Unlock()
		return
	}
	var add, drop []string
	for _, f := range c.want {
		if !c.subscribed[f] {
			add = append(add, f)
		}
	}
	for f := range c.subscribed {
		if !slices.Contains(c.want, f) {
			drop = append(drop, f)
		}
	}
	c.mu.Unlock()
	// Unsubscribe first: once a new filter's retained messages arrive, the
	// old filters deliver nothing more.
	if len(drop) > 0 {
		if err := c.wait(ctx, c.mqtt.Unsubscribe(drop...), operationTimeout); err != nil {
			c.log.Warn("herald: unsubscribe failed", "err", err)
			return
		}
		c.mu.Lock()
		for _, f := range drop {
			delete(c.subscribed, f)
		}
		c.mu.Unlock()
	}
	if err := c.subscribe(ctx, add); err != nil {
		c.log.Warn("herald: subscribe to new topics failed", "err", err)
		return
	}
	c.log.Info("herald: subscriptions changed", "added", len(add), "removed", len(drop))
}

// Displayed reports that message id was shown: a "displayed" receipt, at most
// once per id. It returns ErrUnknownMessage for an id the client did not pass to
// OnMessage or OnKickout, or that has expired.
func (c *Client) Displayed(id string) error { return c.sess.Displayed(id) }

// Clicked reports that the player clicked message id: a "clicked" receipt, at
// most once per id.
func (c *Client) Clicked(id string) error { return c.sess.Clicked(id) }

// Dismissed reports that the player closed message id: a "dismissed" receipt, at
// most once per id.
func (c *Client) Dismissed(id string) error { return c.sess.Dismissed(id) }

// Text chooses from localized text the player's locale, else its language, else
// the game's default locale.
func (c *Client) Text(texts map[string]string) string { return c.sess.Text(texts) }

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	st := c.sess.Stats()
	c.mu.Lock()
	st.Connects, st.ReceiptsDropped = c.connects, c.dropped
	c.mu.Unlock()
	return st
}

// Close disconnects and stops the client's goroutines and timers; callbacks
// are not called once it returns, except one already running. Receipts not yet
// sent are lost. Close may be called more than once.
func (c *Client) Close() {
	c.once.Do(func() {
		close(c.closing)
		c.wg.Wait()
		c.sess.Close()
		c.mqtt.Disconnect(250)
	})
}
