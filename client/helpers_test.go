package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/heraldpush/herald/client"
	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// patience bounds every wait for progress: generous, for a loaded machine.
const patience = 60 * time.Second

// eventually polls cond until it holds, failing after patience.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", patience, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// herald plays Herald on a private broker: it publishes descriptors and
// envelopes in the exact shape of protocol.md and listens to receipts.
type herald struct {
	t      *testing.T
	broker *brokertest.Broker
	pub    mqtt.Client
	prefix string
	game   string
	schema *jsonschema.Schema

	// resubscribed gets a value each time the test client has subscribed to
	// receipts again after a reconnect.
	resubscribed chan struct{}

	mu       sync.Mutex
	receipts []receipt
}

type receipt struct {
	Topic string
	ID    string `json:"id"`
	E     string `json:"e"`
	T     int64  `json:"t"`
}

func newHerald(t *testing.T) *herald {
	return newHeraldOn(t, brokertest.Start(t), "", "")
}

// newHeraldOn connects to broker b as user (anonymous if empty): one client
// publishes, another listens to receipts.
func newHeraldOn(t *testing.T, b *brokertest.Broker, user, password string) *herald {
	t.Helper()
	h := &herald{t: t, broker: b, prefix: "herald", game: "g1", schema: envelopeSchema(t)}
	pub := mqtt.NewClientOptions().AddBroker(b.URL).SetClientID("herald-test-pub").
		SetUsername(user).SetPassword(password).
		SetAutoReconnect(true).SetMaxReconnectInterval(100 * time.Millisecond).SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond)
	h.pub = mqtt.NewClient(pub)
	require.True(t, h.pub.Connect().WaitTimeout(patience))
	t.Cleanup(func() { h.pub.Disconnect(100) })

	h.resubscribed = make(chan struct{}, 1)
	listen := mqtt.NewClientOptions().AddBroker(b.URL).SetClientID("herald-test-receipts").
		SetUsername(user).SetPassword(password).
		// A persistent session: receipts published while this client is away
		// wait for it, once the broker has saved the session (Stop, not Kill).
		// It never publishes, which keeps it clear of paho's resume of stored
		// publishes.
		SetCleanSession(false).
		SetAutoReconnect(true).SetMaxReconnectInterval(100 * time.Millisecond).SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond).SetOrderMatters(true).
		SetOnConnectHandler(func(c mqtt.Client) {
			tok := c.Subscribe(h.prefix+"/+/receipts/+", 1, func(_ mqtt.Client, m mqtt.Message) {
				var r receipt
				if err := json.Unmarshal(m.Payload(), &r); err != nil {
					t.Errorf("receipt %q: %v", m.Payload(), err)
				}
				r.Topic = m.Topic()
				h.mu.Lock()
				h.receipts = append(h.receipts, r)
				h.mu.Unlock()
			})
			go func() {
				tok.Wait()
				select {
				case h.resubscribed <- struct{}{}:
				default:
				}
			}()
		})
	receipts := mqtt.NewClient(listen)
	receipts.Connect()
	t.Cleanup(func() { receipts.Disconnect(100) })
	h.awaitSubscribed(h.resubscribed)
	return h
}

func (h *herald) awaitSubscribed(ch chan struct{}) {
	h.t.Helper()
	select {
	case <-ch:
	case <-time.After(patience):
		h.t.Fatal("the herald test client did not subscribe to receipts")
	}
}

// publish publishes payload to topic, QoS 1, and waits for the broker.
func (h *herald) publish(topic string, payload []byte, retain bool) {
	h.t.Helper()
	tok := h.pub.Publish(topic, 1, retain, payload)
	require.True(h.t, tok.WaitTimeout(patience), "publish to %s", topic)
	require.NoError(h.t, tok.Error())
}

// topic spells a message topic: scope is "all", "server/s1", "tag/level/30-39"
// or "player/p1".
func (h *herald) topic(scope string, kind protocol.Kind, msg string) string {
	return h.prefix + "/" + h.game + "/" + scope + "/" + string(kind) + "/" + msg
}

func (h *herald) descriptor(tags string) {
	h.t.Helper()
	d := fmt.Sprintf(`{"v":1,"game":%q,"prefix":%q,"default_locale":"en","tags":%s,"updated_at":%q}`,
		h.game, h.prefix, tags, time.Now().UTC().Format(time.RFC3339Nano))
	h.publish(protocol.DescriptorTopic(h.prefix, h.game), []byte(d), true)
}

// env is an envelope to encode as Herald does; zero fields get defaults.
type env struct {
	ID, Campaign string
	Kind         protocol.Kind
	Game         string
	SentAt       time.Time
	StartsAt     time.Time
	ExpiresAt    time.Time
	Priority     int
	Filter       string // raw JSON
	Content      string // raw JSON
	Test         bool   // a test send
}

// fill gives e's zero fields their defaults: a marquee of campaign c-{id},
// sent now, expiring in an hour.
func (h *herald) fill(e env) env {
	if e.Kind == "" {
		e.Kind = protocol.KindMarquee
	}
	if e.Campaign == "" {
		e.Campaign = "c-" + e.ID
	}
	if e.Game == "" {
		e.Game = h.game
	}
	if e.SentAt.IsZero() {
		e.SentAt = time.Now()
	}
	if e.ExpiresAt.IsZero() {
		e.ExpiresAt = e.SentAt.Add(time.Hour)
	}
	if e.Content == "" {
		e.Content = map[protocol.Kind]string{
			protocol.KindMarquee: `{"text":{"en":"Maintenance at 10:00 UTC","zh-CN":"10:00 维护"},"repeat":3,"interval_s":0}`,
			protocol.KindNotice:  `{"title":{"en":"Update"},"body":{"en":"v2 is out"},"link":"https://example.com"}`,
			protocol.KindAd:      `{"image_url":"https://cdn.example.com/a.png","placement":"center","display_s":5}`,
			protocol.KindKickout: `{"reason":"ban","message":{"en":"Banned"},"reconnect_after_s":30}`,
		}[e.Kind]
	}
	return e
}

// encode writes e in the member order of protocol.md section 3 and checks it
// against docs/schema/envelope.schema.json.
func (h *herald) encode(e env) []byte {
	h.t.Helper()
	e = h.fill(e)
	ts := func(t time.Time) string { return t.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano) }
	var b strings.Builder
	fmt.Fprintf(&b, `{"v":1,"id":%q,"campaign":%q,"kind":%q,"game":%q,"sent_at":%q,`, e.ID, e.Campaign, e.Kind, e.Game, ts(e.SentAt))
	if !e.StartsAt.IsZero() {
		fmt.Fprintf(&b, `"starts_at":%q,`, ts(e.StartsAt))
	}
	fmt.Fprintf(&b, `"expires_at":%q,"priority":%d,`, ts(e.ExpiresAt), e.Priority)
	if e.Filter != "" {
		fmt.Fprintf(&b, `"filter":%s,`, e.Filter)
	}
	fmt.Fprintf(&b, `"content":%s`, e.Content)
	if e.Test {
		b.WriteString(`,"test":true`)
	}
	b.WriteString("}")
	out := []byte(b.String())
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
	require.NoError(h.t, err)
	require.NoError(h.t, h.schema.Validate(inst), "%s", out)
	return out
}

// send publishes e, retained unless it is a kick-out, to scope.
func (h *herald) send(scope string, e env) env {
	h.t.Helper()
	e = h.fill(e)
	h.publish(h.topic(scope, e.Kind, e.Campaign), h.encode(e), e.Kind != protocol.KindKickout)
	return e
}

// receiptsOf returns the events received for id, in order.
func (h *herald) receiptsOf(id string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var events []string
	for _, r := range h.receipts {
		if r.ID == id {
			events = append(events, r.E)
		}
	}
	return events
}

// awaitReceipt waits for receipt event of id.
func (h *herald) awaitReceipt(id, event string) receipt {
	h.t.Helper()
	var got receipt
	eventually(h.t, event+" receipt of "+id, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, r := range h.receipts {
			if r.ID == id && r.E == event {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

func envelopeSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "docs", "schema", "envelope.schema.json"))
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("envelope.schema.json", doc))
	s, err := c.Compile("envelope.schema.json")
	require.NoError(t, err)
	return s
}

// recorder records what a client's callbacks are told, as lines:
// "message {id}", "remove {campaign} {reason}", "kickout {id}", "descriptor".
type recorder struct {
	mu       sync.Mutex
	events   []string
	messages map[string]client.Message
	at       map[string]time.Time // when each event line was recorded
	kickouts []client.Kickout
	// atKickout is Stats().ReceiptsSent seen from inside OnKickout.
	atKickout []int64
	c         *client.Client
}

func (r *recorder) add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, line)
	if r.at == nil {
		r.at = map[string]time.Time{}
	}
	r.at[line] = time.Now()
}

func (r *recorder) options(o client.Options) client.Options {
	o.OnMessage = func(m client.Message) {
		r.mu.Lock()
		if r.messages == nil {
			r.messages = map[string]client.Message{}
		}
		r.messages[m.ID] = m
		r.mu.Unlock()
		r.add("message " + m.ID)
	}
	o.OnRemove = func(campaign string, reason client.RemoveReason) { r.add("remove " + campaign + " " + string(reason)) }
	o.OnKickout = func(k client.Kickout) {
		r.mu.Lock()
		r.kickouts = append(r.kickouts, k)
		c := r.c
		r.mu.Unlock()
		if c != nil {
			r.mu.Lock()
			r.atKickout = append(r.atKickout, c.Stats().ReceiptsSent)
			r.mu.Unlock()
		}
		r.add("kickout " + k.ID)
	}
	o.OnDescriptor = func(protocol.Descriptor) { r.add("descriptor") }
	return o
}

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) has(line string) bool {
	return slices.Contains(r.lines(), line)
}

// await waits for line to be recorded.
func (r *recorder) await(t *testing.T, line string) {
	t.Helper()
	eventually(t, line, func() bool { return r.has(line) })
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// connect connects a client for player p1 on server s1 in region eu at level 35,
// with the recorder's callbacks; edit adjusts the options first.
func (h *herald) connect(rec *recorder, edit ...func(*client.Options)) *client.Client {
	h.t.Helper()
	o := client.Options{
		Broker: h.broker.URL, Game: h.game, Player: "p1", Server: "s1",
		Tags:   map[string]string{"region": "eu", "level": "35"},
		Prefix: h.prefix, Locale: "en",
		Reconnect: client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		Log:       quietLog(),
	}
	for _, f := range edit {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	c, err := client.Connect(ctx, rec.options(o))
	require.NoError(h.t, err)
	rec.mu.Lock()
	rec.c = c
	rec.mu.Unlock()
	h.t.Cleanup(c.Close)
	return c
}

// marker sends a message on all/ and waits for the client to show it: what
// Herald sent before it has been handled.
func (h *herald) marker(rec *recorder) {
	h.t.Helper()
	id := fmt.Sprintf("marker-%d", time.Now().UnixNano())
	h.send("all", env{ID: id, ExpiresAt: time.Now().Add(100 * 24 * time.Hour)}) // whatever the client's clock
	rec.await(h.t, "message "+id)
}
