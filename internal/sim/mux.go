package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/heraldpush/herald/client"
	"github.com/heraldpush/herald/protocol"
)

// mux carries many players over one MQTT connection: it subscribes to the
// union of their topic filters and hands each message to the sessions whose
// filters match its topic. Since the broker sends a filter's retained
// messages only to the first subscription of a connection, mux keeps the
// latest message of each topic (kick-outs aside, which are never retained)
// and replays the matching ones to a session that joins or subscribes later,
// as the broker would for a connection of its own.
type mux struct {
	mqtt mqtt.Client
	log  *slog.Logger
	base string // {prefix}/{game}/
	desc string // the descriptor topic

	// deliver serializes what sessions are handed: live messages and replays,
	// so that a replay never overtakes a newer message of its topic.
	deliver sync.Mutex

	mu      sync.Mutex
	routes  map[string]map[*client.Session]bool // filter -> sessions
	filters map[*client.Session][]string
	cache   map[string][]byte // topic -> latest payload
	toSub   map[string]bool   // filters to subscribe to
	toUnsub map[string]bool
	// resumed: the next subscribe is the one after a reconnect, whose
	// acknowledgement starts the sessions' recall grace.
	resumed bool

	connectedBefore atomic.Bool // set by the first connection
	ops             chan struct{}
	closing         chan struct{}
	wg              sync.WaitGroup
}

const muxTimeout = 10 * time.Second

// dialMux connects shared connection n.
func dialMux(ctx context.Context, cfg Config, n int) (*mux, error) {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	m := &mux{
		log:     cfg.Log,
		base:    cfg.Prefix + "/" + cfg.Game + "/",
		desc:    protocol.DescriptorTopic(cfg.Prefix, cfg.Game),
		routes:  map[string]map[*client.Session]bool{},
		filters: map[*client.Session][]string{},
		cache:   map[string][]byte{},
		toSub:   map[string]bool{},
		toUnsub: map[string]bool{},
		ops:     make(chan struct{}, 1),
		closing: make(chan struct{}),
	}
	opts := mqtt.NewClientOptions().AddBroker(cfg.Broker).
		SetClientID(fmt.Sprintf("%sconn-%d-%s", cfg.PlayerPrefix, n, hex.EncodeToString(rnd[:]))).
		SetUsername(cfg.Username).SetPassword(cfg.Password).
		SetCleanSession(true).SetAutoReconnect(true).SetMaxReconnectInterval(10 * time.Second).
		SetConnectTimeout(muxTimeout).SetWriteTimeout(muxTimeout).SetKeepAlive(30 * time.Second).
		SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, msg mqtt.Message) { m.handle(msg.Topic(), msg.Payload()) }).
		SetOnConnectHandler(func(mqtt.Client) {
			// A clean session forgets subscriptions: make them all again after a
			// reconnect. Not after the first connection: paho may call this
			// once players have joined, and subscribing again would make the
			// broker send its retained messages twice.
			if !m.connectedBefore.Swap(true) {
				return
			}
			m.reconnected()
		})
	m.mqtt = mqtt.NewClient(opts)
	tok := m.mqtt.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		m.mqtt.Disconnect(0)
		return nil, ctx.Err()
	case <-time.After(muxTimeout + time.Second):
		m.mqtt.Disconnect(0)
		return nil, fmt.Errorf("connect to %s: no answer in %s", cfg.Broker, muxTimeout)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.Broker, err)
	}
	m.wg.Add(1)
	go m.subscriber()
	return m, nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// filterOf returns the one filter of Herald's topic contract a topic falls
// under: the descriptor's own, all/#, server/{s}/#, tag/{t}/{v}/# or
// player/{p}/#; "" for anything else.
func (m *mux) filterOf(topic string) string {
	if topic == m.desc {
		return topic
	}
	rest, ok := strings.CutPrefix(topic, m.base)
	if !ok {
		return ""
	}
	levels := strings.Split(rest, "/")
	switch {
	case levels[0] == "all":
		return m.base + "all/#"
	case (levels[0] == "server" || levels[0] == "player") && len(levels) > 1:
		return m.base + levels[0] + "/" + levels[1] + "/#"
	case levels[0] == "tag" && len(levels) > 2:
		return m.base + "tag/" + levels[1] + "/" + levels[2] + "/#"
	}
	return ""
}

// handle routes one message from the broker.
func (m *mux) handle(topic string, payload []byte) {
	m.deliver.Lock()
	defer m.deliver.Unlock()
	m.mu.Lock()
	f := m.filterOf(topic)
	targets := slices.Collect(maps.Keys(m.routes[f]))
	if f != "" && !strings.Contains(topic, "/"+string(protocol.KindKickout)+"/") {
		if len(payload) == 0 {
			delete(m.cache, topic)
		} else {
			m.cache[topic] = payload
		}
	}
	m.mu.Unlock()
	for _, s := range targets {
		s.Handle(topic, payload)
	}
}

// join adds a session with its current filters.
func (m *mux) join(s *client.Session) {
	m.deliver.Lock()
	defer m.deliver.Unlock()
	m.update(s, s.Subscriptions())
}

// update sets a session's filters: the new ones are subscribed to (or, when
// another session has them already, their messages replayed to it), the ones
// gone are unsubscribed from when no session needs them any more. It runs with
// deliver held: from join, or from the session's OnSubscriptions while it is
// handed a descriptor.
func (m *mux) update(s *client.Session, filters []string) {
	m.mu.Lock()
	old := m.filters[s]
	m.filters[s] = filters
	var replay []string
	for _, f := range filters {
		if slices.Contains(old, f) {
			continue
		}
		if m.routes[f] == nil {
			m.routes[f] = map[*client.Session]bool{}
			m.toSub[f], m.toUnsub[f] = true, false
		} else {
			replay = append(replay, f)
		}
		m.routes[f][s] = true
	}
	for _, f := range old {
		if slices.Contains(filters, f) {
			continue
		}
		delete(m.routes[f], s)
		if len(m.routes[f]) == 0 {
			delete(m.routes, f)
			m.toSub[f], m.toUnsub[f] = false, true
			for topic := range m.cache {
				if m.filterOf(topic) == f {
					delete(m.cache, topic)
				}
			}
		}
	}
	// The descriptor first: it decides the tag topics.
	var topics []string
	for topic := range m.cache {
		if slices.Contains(replay, m.filterOf(topic)) {
			topics = append(topics, topic)
		}
	}
	slices.SortFunc(topics, func(a, b string) int {
		if (a == m.desc) != (b == m.desc) {
			if a == m.desc {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	payloads := make([][]byte, len(topics))
	for i, topic := range topics {
		payloads[i] = m.cache[topic]
	}
	m.mu.Unlock()
	signal(m.ops)
	for i, topic := range topics {
		s.Handle(topic, payloads[i])
	}
}

// subscriber makes the subscription changes update asks for, batched, until
// close.
func (m *mux) subscriber() {
	defer m.wg.Done()
	for {
		select {
		case <-m.closing:
			return
		case <-m.ops:
		}
		m.mu.Lock()
		subs := map[string]byte{}
		var unsubs []string
		for f, on := range m.toSub {
			if on {
				subs[f] = 1
			}
		}
		for f, on := range m.toUnsub {
			if on {
				unsubs = append(unsubs, f)
			}
		}
		clear(m.toSub)
		clear(m.toUnsub)
		resumed := m.resumed
		m.resumed = false
		m.mu.Unlock()
		if len(subs) > 0 && m.wait(m.mqtt.SubscribeMultiple(subs, nil), "subscribe") && resumed {
			m.mu.Lock()
			sessions := slices.Collect(maps.Keys(m.filters))
			m.mu.Unlock()
			for _, s := range sessions {
				s.Subscribed()
			}
		}
		if len(unsubs) > 0 {
			m.wait(m.mqtt.Unsubscribe(unsubs...), "unsubscribe")
		}
	}
}

// reconnected prepares a connection made again: a clean session forgot the
// subscriptions, so all are made again; the broker sends what it still holds
// retained, so the cache starts empty (a topic cleared meanwhile must not be
// replayed); and every session holds its messages unconfirmed until their
// copies come back (client.Session.Reconnected).
func (m *mux) reconnected() {
	m.mu.Lock()
	for f := range m.routes {
		m.toSub[f] = true
	}
	clear(m.cache)
	m.resumed = true
	sessions := slices.Collect(maps.Keys(m.filters))
	m.mu.Unlock()
	for _, s := range sessions {
		s.Reconnected()
	}
	signal(m.ops)
}

// wait waits for tok and reports whether it succeeded.
func (m *mux) wait(tok mqtt.Token, what string) bool {
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			m.log.Warn("sim: "+what+" failed", "err", err)
			return false
		}
		return true
	case <-time.After(muxTimeout):
		m.log.Warn("sim: "+what+": no answer", "timeout", muxTimeout.String())
	case <-m.closing:
	}
	return false
}

// publish is each session's Publish: receipts, QoS 1, not waited for.
func (m *mux) publish(topic string, payload []byte) {
	m.mqtt.Publish(topic, 1, false, payload)
}

func (m *mux) close() {
	close(m.closing)
	m.wg.Wait()
	m.mqtt.Disconnect(250)
	m.mu.Lock()
	sessions := slices.Collect(maps.Keys(m.filters))
	m.mu.Unlock()
	for _, s := range sessions {
		s.Close()
	}
}
