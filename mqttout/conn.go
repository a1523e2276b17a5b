// Package mqttout owns how a message reaches the MQTT broker: Herald's
// long-lived publishing connections, their reconnects, and reliable QoS 1
// publishing over all of them (PublishAll). It knows topics and payloads, never
// campaigns or segments.
package mqttout

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Defaults for the publishing fields of Config.
const (
	DefaultMaxInFlight    = 1024
	DefaultPublishTimeout = 10 * time.Second
	DefaultConnections    = 2
	// maxInFlightLimit stays well under paho's 65,535 message ids, which it shares
	// with re-sends of its own after a reconnect (docs/brokers.md).
	maxInFlightLimit = 16384
	// MaxConnections bounds Config.Connections.
	MaxConnections = 16
)

// ErrClosed is returned by PublishAll once Close has been called.
var ErrClosed = errors.New("mqttout: connection closed")

// Config says where the broker is and who Herald is to it.
type Config struct {
	URL      string // tcp://host:1883, ssl://host:8883 or mqtts://host:8883
	Username string
	Password string
	// TLS names the CA and client certificate files for a TLS URL; naming any
	// with a plain URL is an error.
	TLS TLSConfig
	// ClientID defaults to herald-{hostname}-{random}: unique per replica, since a
	// broker disconnects the older of two clients with the same id. The second
	// and further connections add -1, -2, ... to it.
	ClientID string
	Log      *slog.Logger // defaults to slog.Default()
	// Connections is how many broker connections PublishAll spreads its
	// publishes over (default 2, at most 16): one paho connection writes and
	// reads on one goroutine each, short of what a broker takes.
	Connections int
	// MaxInFlight bounds the QoS 1 publishes awaiting their PUBACK, over all
	// callers of PublishAll and all connections together (default 1024, at most
	// 16384).
	MaxInFlight int
	// PublishTimeout is how long a publish may wait for its PUBACK before it is
	// sent again (default 10 s). It is also paho's write timeout.
	PublishTimeout time.Duration
}

// Conn is Herald's publishing connection to the broker: Config.Connections
// paho connections that PublishAll uses together. The first, the primary, is
// also the one the retained check (CheckRetained) uses and Connected, LastError
// and NextConnect report on. Conn connects in the background and reconnects on
// its own, so Herald starts and serves while the broker is down.
type Conn struct {
	links          []*link // links[0] is the primary
	log            *slog.Logger
	publishTimeout time.Duration

	// slots is the in-flight window shared by every PublishAll call: a publish
	// holds one slot from just before it is sent until its outcome is known.
	slots chan struct{}

	closeOnce sync.Once
	closed    chan struct{}

	acked, retried, failed atomic.Int64
	inFlight               atomic.Int64
}

// link is one paho connection of a Conn.
type link struct {
	client mqtt.Client
	name   string // its client id, for the logs

	// epoch changes whenever the connection may have been broken or replaced
	// (see epochStore and the handlers in dialLink). A publish whose token
	// completes in another epoch than the one it was sent in is unconfirmed
	// (docs/brokers.md).
	epoch atomic.Uint64

	lastErr atomic.Pointer[error] // why the latest connection attempt failed

	mu sync.Mutex
	up chan struct{} // closed and replaced each time the connection comes up
}

// Dial starts connecting to the broker and returns at once; Connected tells when
// the connection is up. It returns an error only for an invalid Config, which
// includes TLS files it cannot read or parse.
func Dial(cfg Config) (*Conn, error) {
	tlsCfg, err := tlsFor(cfg.URL, cfg.TLS)
	if err != nil {
		return nil, err
	}
	if cfg.ClientID == "" {
		id, err := defaultClientID("herald")
		if err != nil {
			return nil, err
		}
		cfg.ClientID = id
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	switch {
	case cfg.MaxInFlight == 0:
		cfg.MaxInFlight = DefaultMaxInFlight
	case cfg.MaxInFlight < 0 || cfg.MaxInFlight > maxInFlightLimit:
		return nil, fmt.Errorf("mqttout: MaxInFlight %d is outside 1..%d", cfg.MaxInFlight, maxInFlightLimit)
	}
	switch {
	case cfg.Connections == 0:
		cfg.Connections = DefaultConnections
	case cfg.Connections < 0 || cfg.Connections > MaxConnections:
		return nil, fmt.Errorf("mqttout: Connections %d is outside 1..%d", cfg.Connections, MaxConnections)
	}
	switch {
	case cfg.PublishTimeout == 0:
		cfg.PublishTimeout = DefaultPublishTimeout
	case cfg.PublishTimeout < 0:
		return nil, fmt.Errorf("mqttout: negative PublishTimeout %s", cfg.PublishTimeout)
	}
	c := &Conn{
		log:            cfg.Log,
		publishTimeout: cfg.PublishTimeout,
		slots:          make(chan struct{}, cfg.MaxInFlight),
		closed:         make(chan struct{}),
	}
	for i := range cfg.Connections {
		id := cfg.ClientID
		if i > 0 {
			id = fmt.Sprintf("%s-%d", cfg.ClientID, i)
		}
		c.links = append(c.links, dialLink(cfg, id, tlsCfg))
	}
	return c, nil
}

// dialLink starts connecting one paho connection of a Conn as clientID.
func dialLink(cfg Config, clientID string, tlsCfg *tls.Config) *link {
	l := &link{name: clientID, up: make(chan struct{})}
	opts := clientOptions(cfg.URL, cfg.Username, cfg.Password, clientID, tlsCfg, cfg.Log, &l.lastErr).
		SetWriteTimeout(cfg.PublishTimeout). // bounds a Publish blocked on a dead connection
		SetCustomOpenConnectionFn(openBuffered(cfg.PublishTimeout)).
		SetOrderMatters(false).
		SetStore(&epochStore{Store: mqtt.NewMemoryStore(), epoch: &l.epoch}).
		SetOnConnectHandler(func(mqtt.Client) {
			l.epoch.Add(1)
			cfg.Log.Info("broker connected", "url", cfg.URL, "client_id", clientID)
			l.mu.Lock()
			close(l.up)
			l.up = make(chan struct{})
			l.mu.Unlock()
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			l.epoch.Add(1)
			cfg.Log.Warn("broker connection lost", "url", cfg.URL, "client_id", clientID, "err", err)
		})
	l.client = mqtt.NewClient(opts)
	// With ConnectRetry the token completes only once connected (or on Disconnect),
	// so it is not waited for here.
	l.client.Connect()
	return l
}

// nextConnect returns a channel that is closed the next time l comes up.
func (l *link) nextConnect() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

// primary is the connection the retained check uses and the status reports on.
func (c *Conn) primary() *link { return c.links[0] }

// Connected reports whether the primary connection to the broker is up.
func (c *Conn) Connected() bool {
	return c.primary().client.IsConnectionOpen()
}

// LastError returns why the latest attempt of the primary connection failed,
// or nil once one succeeded.
func (c *Conn) LastError() error {
	if err := c.primary().lastErr.Load(); err != nil {
		return *err
	}
	return nil
}

// Close disconnects, giving in-flight work up to a second to finish; PublishAll
// calls still running then return ErrClosed. Close may be called more than once.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		var wg sync.WaitGroup
		for _, l := range c.links {
			wg.Go(func() { l.client.Disconnect(1000) })
		}
		wg.Wait()
		close(c.closed)
	})
}

// epochStore is paho's memory store with one addition: All, which paho calls
// (with a clean session) only to list the stored publishes it is about to
// re-send after a reconnect (resume), advances the connection epoch. paho then
// completes the tokens of those publishes without a PUBACK (messageIds.claimID),
// while the OnConnect handler runs in its own goroutine, possibly later. The
// epoch advances after the list is taken and before any of those tokens
// completes, and PublishAll reads the epoch before handing a publish to paho
// (which stores it): so a publish whose token resume completes always sees the
// epoch change between its send and its completion.
type epochStore struct {
	mqtt.Store
	epoch *atomic.Uint64
}

func (s *epochStore) All() []string {
	keys := s.Store.All()
	s.epoch.Add(1)
	return keys
}

// Put stores a copy of a publish: paho hands the same packet to its writer
// right after storing it, and the writer sets fields of it while it sends
// (Write fills in the remaining length), so the store must not share it.
func (s *epochStore) Put(key string, cp packets.ControlPacket) {
	if p, ok := cp.(*packets.PublishPacket); ok {
		own := *p
		cp = &own
	}
	s.Store.Put(key, cp)
}

// Get returns a copy of a stored publish. paho's resume sets the DUP flag on the
// packet it gets while the new connection's writer may still be sending the same
// packet (a publish made just after the reconnect, before resume listed the
// store): on a copy, the two never touch the same memory.
func (s *epochStore) Get(key string) packets.ControlPacket {
	cp := s.Store.Get(key)
	if p, ok := cp.(*packets.PublishPacket); ok {
		dup := *p
		return &dup
	}
	return cp
}

// clientOptions are the paho options every connection of Herald shares: a clean
// session (nothing is queued for Herald across sessions, docs/brokers.md), reconnects
// on its own with backoff, and failed attempts logged and kept in lastErr,
// since paho retries quietly and a wrong password or an untrusted certificate
// must be visible in the log and in /readyz.
func clientOptions(url, username, password, clientID string, tlsCfg *tls.Config, log *slog.Logger, lastErr *atomic.Pointer[error]) *mqtt.ClientOptions {
	opts := mqtt.NewClientOptions().
		AddBroker(url).
		SetClientID(clientID).
		SetUsername(username).
		SetPassword(password).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) {
			log.Info("broker reconnecting", "url", url, "client_id", clientID)
		}).
		SetConnectionNotificationHandler(func(_ mqtt.Client, n mqtt.ConnectionNotification) {
			switch n := n.(type) {
			case mqtt.ConnectionNotificationFailed:
				lastErr.Store(&n.Reason)
				log.Warn("broker connection attempt failed", "url", url, "client_id", clientID, "err", n.Reason)
			case mqtt.ConnectionNotificationConnected:
				lastErr.Store(nil)
			}
		})
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	return opts
}

// defaultClientID is {kind}-{hostname}-{random}: unique per replica and
// connection, since a broker disconnects the older of two clients with the
// same id.
func defaultClientID(kind string) (string, error) {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random client id: %w", err)
	}
	return kind + "-" + host + "-" + hex.EncodeToString(b[:]), nil
}
