package mqttout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// subscribeTimeout bounds each SUBSCRIBE, UNSUBSCRIBE and fence publish.
const subscribeTimeout = 10 * time.Second

// SubscriberConfig says where the broker is, who Herald is to it, and what to
// consume.
type SubscriberConfig struct {
	URL      string
	Username string
	Password string
	TLS      TLSConfig
	// ClientID defaults to herald-receipts-{hostname}-{random}; it must differ
	// from every other connection's.
	ClientID string
	Log      *slog.Logger // defaults to slog.Default()
	// Filter is what to consume, with QoS 1, such as Herald's receipts
	// subscription $share/herald/{prefix}/+/receipts/+.
	Filter string
	// Fence is a topic prefix this account may publish to and read and that
	// nobody else publishes to ({prefix}/$herald/fence for Herald): Stop
	// publishes a marker to Fence/{ClientID} to know when the broker has
	// handed over everything it routed to this subscriber.
	Fence string
}

// Subscriber is a connection of its own that consumes one QoS 1 subscription,
// handing each message to a handler one at a time on paho's router goroutine
// (OrderMatters). A handler that blocks stops paho reading the socket, which
// pushes back on the broker over TCP: the broker keeps what it has not sent in
// its queue for this client, rather than Herald piling up a goroutine per
// message as Conn's publishing connection does. paho acknowledges (PUBACK) a
// message when the handler returns.
//
// The session is clean: after every (re)connect the subscriptions are made
// again, and what the broker had queued for the previous connection is gone.
type Subscriber struct {
	client  mqtt.Client
	log     *slog.Logger
	filter  string
	fence   string
	handle  func(topic string, payload []byte)
	lastErr atomic.Pointer[error]

	// busy is held while handle runs, so that Stop can wait for a call in
	// progress; stopped, set under busy, ends the calls.
	busy    chan struct{}
	stopped bool

	mu         sync.Mutex
	stopping   bool
	fenceToken string        // the marker Stop waits for
	fenced     chan struct{} // closed when it arrives
	subscribed atomic.Bool
	startOnce  sync.Once
	stopOnce   sync.Once
}

// NewSubscriber checks cfg and returns a Subscriber that Start connects. It
// returns an error for an invalid Config, TLS files it cannot read included.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	tlsCfg, err := tlsFor(cfg.URL, cfg.TLS)
	if err != nil {
		return nil, err
	}
	if cfg.Filter == "" || cfg.Fence == "" {
		return nil, errors.New("mqttout: a subscriber needs a Filter and a Fence")
	}
	if cfg.ClientID == "" {
		if cfg.ClientID, err = defaultClientID("herald-receipts"); err != nil {
			return nil, err
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Subscriber{
		log: cfg.Log, filter: cfg.Filter, fence: cfg.Fence + "/" + cfg.ClientID,
		busy: make(chan struct{}, 1), fenced: make(chan struct{}),
	}
	if err := validTopic(s.fence); err != nil {
		return nil, fmt.Errorf("mqttout: fence topic %q: %w", s.fence, err)
	}
	opts := clientOptions(cfg.URL, cfg.Username, cfg.Password, cfg.ClientID, tlsCfg, cfg.Log, &s.lastErr).
		SetOrderMatters(true).
		SetResumeSubs(false).
		SetDefaultPublishHandler(s.deliver).
		SetOnConnectHandler(func(c mqtt.Client) {
			cfg.Log.Info("receipts connection up", "url", cfg.URL, "client_id", cfg.ClientID)
			s.subscribe(c)
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			s.subscribed.Store(false)
			cfg.Log.Warn("receipts connection lost", "url", cfg.URL, "err", err)
		})
	s.client = mqtt.NewClient(opts)
	return s, nil
}

// Start connects in the background, reconnecting on its own, and hands every
// message of the subscription to handle, one at a time. Only the first call
// has an effect.
func (s *Subscriber) Start(handle func(topic string, payload []byte)) {
	s.startOnce.Do(func() {
		s.handle = handle
		s.client.Connect() // with ConnectRetry it completes only once connected
	})
}

// Subscribed reports whether the subscription is in place now.
func (s *Subscriber) Subscribed() bool {
	return s.subscribed.Load()
}

// LastError returns why the latest connection attempt failed, or nil once one
// succeeded.
func (s *Subscriber) LastError() error {
	if err := s.lastErr.Load(); err != nil {
		return *err
	}
	return nil
}

// subscribe makes the subscriptions of a new connection (a clean session
// forgets them), trying again while the connection lasts.
func (s *Subscriber) subscribe(c mqtt.Client) {
	filters := map[string]byte{s.filter: 1, s.fence: 1}
	for c.IsConnectionOpen() {
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			return
		}
		tok := c.SubscribeMultiple(filters, nil)
		err := errors.New("timed out")
		if tok.WaitTimeout(subscribeTimeout) {
			err = tok.Error()
		}
		if err == nil {
			for f, code := range tok.(*mqtt.SubscribeToken).Result() {
				if code == 0x80 {
					err = fmt.Errorf("the broker refused %q", f)
				}
			}
		}
		if err == nil {
			s.subscribed.Store(true)
			s.log.Info("subscribed", "filter", s.filter)
			return
		}
		s.log.Warn("subscribe failed; trying again", "filter", s.filter, "err", err)
		time.Sleep(time.Second)
	}
}

// deliver is paho's handler for every message, run on its router goroutine.
func (s *Subscriber) deliver(_ mqtt.Client, m mqtt.Message) {
	if m.Topic() == s.fence {
		s.mu.Lock()
		if s.fenceToken != "" && string(m.Payload()) == s.fenceToken {
			close(s.fenced)
			s.fenceToken = ""
		}
		s.mu.Unlock()
		return
	}
	s.busy <- struct{}{}
	defer func() { <-s.busy }()
	if !s.stopped {
		s.handle(m.Topic(), m.Payload())
	}
}

// Stop ends the subscription without losing what the broker already routed
// to this subscriber: it unsubscribes (from then on the broker routes new
// messages to the group's other subscribers, or drops them if there are
// none), publishes a marker to its fence topic and waits for it to come back:
// the broker sends a connection's messages in order, so everything queued for
// this subscriber before the unsubscribe has been handed to the handler by
// then. Then it disconnects. Once Stop returns, the handler is not called
// again; if ctx ends first, Stop returns ctx's error, and a handler call in
// progress may still finish later. Stop may be called more than once.
func (s *Subscriber) Stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() { err = s.stop(ctx) })
	return err
}

func (s *Subscriber) stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	var drainErr error
	if s.client.IsConnectionOpen() {
		drainErr = s.drain(ctx)
	}
	s.subscribed.Store(false)
	s.client.Disconnect(250)
	select {
	case s.busy <- struct{}{}:
		s.stopped = true
		<-s.busy
	case <-ctx.Done():
		return fmt.Errorf("wait for the receipts handler: %w", ctx.Err())
	}
	return drainErr
}

// drain unsubscribes and waits for the fence marker.
func (s *Subscriber) drain(ctx context.Context) error {
	wait := func(tok mqtt.Token, what string) error {
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(subscribeTimeout):
			return fmt.Errorf("%s: timed out", what)
		}
	}
	if err := wait(s.client.Unsubscribe(s.filter), "unsubscribe "+s.filter); err != nil {
		return err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	s.mu.Lock()
	s.fenceToken = token
	s.mu.Unlock()
	if err := wait(s.client.Publish(s.fence, 1, false, token), "publish the fence"); err != nil {
		return err
	}
	select {
	case <-s.fenced:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the fence: %w", ctx.Err())
	case <-time.After(subscribeTimeout):
		return errors.New("wait for the fence: timed out (may this account read its fence topic?)")
	}
}
