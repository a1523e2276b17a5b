package mqttout

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
)

// The README's broker security, run: a private Mosquitto with a TLS listener,
// no anonymous clients, a password file (herald, p1, p2) and the README's ACL
// file. Herald publishes through it; a player reads its own and broadcast
// topics but not another player's, and cannot publish a fake receipt for
// another player nor a fake broadcast.
//
// Mosquitto 2.0's acl_file does not refuse a SUBSCRIBE (it grants it, SUBACK
// 0x00) and drops denied messages at delivery instead, and it acknowledges a
// denied QoS 1 PUBLISH like an allowed one. So absence is proved with fences:
// a message the observer may read, sent after the forbidden one on the same
// connection; Mosquitto hands a subscriber the messages of one connection in
// the order they came, so once the fence arrives the forbidden message, had it
// been let through, would have arrived before it.
func TestBrokerACLPlayersAndHerald(t *testing.T) {
	t.Parallel()
	files := brokertest.WriteTLSFiles(t)
	b := brokertest.StartWith(t, brokertest.Options{Listener: brokertest.Security{
		TLS: &files,
		PasswordFile: brokertest.WritePasswordFile(t, map[string]string{
			"herald": "herald-secret", "p1": "p1-secret", "p2": "p2-secret",
		}),
		ACLFile: brokertest.WriteFile(t, "herald.acl", brokertest.HeraldACL),
	}})
	require.True(t, strings.HasPrefix(b.URL, "mqtts://"), b.URL)
	ca := TLSConfig{CAFile: files.CAFile}

	// (a) Herald's Conn, with its user name, password and CA, publishes
	// retained messages and the broker acknowledges them.
	herald := dialTest(t, Config{URL: b.URL, Username: "herald", Password: "herald-secret", TLS: ca})
	publish(t, herald,
		Message{Topic: "herald/g1/player/p1/notice/x", Payload: []byte("for p1"), Retain: true},
		Message{Topic: "herald/g1/all/notice/y", Payload: []byte("for all"), Retain: true})

	// (b) p1 reads its own topic and the broadcast one.
	p1 := newRecorder()
	p1c := secureClient(t, b.URL, "p1", "p1-secret", ca, p1.handle)
	subscribeAll(t, p1c, "herald/g1/player/p1/#", "herald/g1/all/#")
	p1.waitFor(t, "herald/g1/player/p1/notice/x", "for p1")
	p1.waitFor(t, "herald/g1/all/notice/y", "for all")

	// (c) p2 subscribing to p1's topic gets neither its retained message nor a
	// live one: the retained broadcast, queued after p1's retained message
	// would have been, arrives; then a live message to p1, then a live fence.
	p2 := newRecorder()
	p2c := secureClient(t, b.URL, "p2", "p2-secret", ca, p2.handle)
	granted := subscribeAll(t, p2c, "herald/g1/player/p1/#", "herald/g1/all/#")
	t.Logf("SUBACK for p2's subscription to p1's topic: %#x (0x80 would be a refusal)", granted["herald/g1/player/p1/#"])
	p2.waitFor(t, "herald/g1/all/notice/y", "for all")
	publish(t, herald, Message{Topic: "herald/g1/player/p1/kickout/k1", Payload: []byte("kick p1")})
	publish(t, herald, Message{Topic: "herald/g1/all/notice/fence", Payload: []byte("fence")})
	p2.waitFor(t, "herald/g1/all/notice/fence", "fence")
	p1.waitFor(t, "herald/g1/player/p1/kickout/k1", "kick p1")
	assert.Empty(t, p2.under("herald/g1/player/"), "p2 read p1's messages")

	// (d) Herald's receipt subscription (the shared one of docs/brokers.md, with
	// Herald's account) gets p1's own receipt but not the fake one p1 sends
	// first for p2, and nobody gets the broadcast p1 tries to fake.
	receipts := newRecorder()
	hc := secureClient(t, b.URL, "herald", "herald-secret", ca, receipts.handle)
	subscribeAll(t, hc, "$share/herald/herald/+/receipts/+", "herald/g1/all/#")
	for _, m := range []struct{ topic, payload string }{
		{"herald/g1/all/notice/fake", "fake broadcast"},
		{"herald/g1/receipts/p2", "fake receipt"},
		{"herald/g1/receipts/p1", "genuine receipt"},
	} {
		tok := p1c.Publish(m.topic, 1, false, m.payload)
		require.True(t, tok.WaitTimeout(10*time.Second), "publish %s timed out", m.topic)
		require.NoError(t, tok.Error(), "Mosquitto acknowledges a denied QoS 1 publish like an allowed one")
	}
	receipts.waitFor(t, "herald/g1/receipts/p1", "genuine receipt")
	assert.Equal(t, []string{"herald/g1/receipts/p1"}, receipts.under("herald/g1/receipts/"))
	assert.NotContains(t, receipts.under("herald/g1/all/"), "herald/g1/all/notice/fake")
}

// Under the README's ACL, Herald's account checks and keeps its retained-store
// sentinel (herald/$herald/sentinel, with a probe under herald/$herald/probe/),
// while a player can neither read it nor overwrite it.
func TestBrokerACLSentinel(t *testing.T) {
	t.Parallel()
	b := brokertest.StartWith(t, brokertest.Options{Listener: brokertest.Security{
		PasswordFile: brokertest.WritePasswordFile(t, map[string]string{"herald": "herald-secret", "p1": "p1-secret"}),
		ACLFile:      brokertest.WriteFile(t, "herald.acl", brokertest.HeraldACL),
	}})
	const sentinel, probe = "herald/$herald/sentinel", "herald/$herald/probe/replica-1"
	herald := dialTest(t, Config{URL: b.URL, Username: "herald", Password: "herald-secret"})
	waitUp(t, herald)
	_, found := checkRetained(t, herald, sentinel, probe)
	require.False(t, found)
	publish(t, herald, Message{Topic: sentinel, Payload: []byte("s1"), Retain: true})
	payload, found := checkRetained(t, herald, sentinel, probe)
	require.True(t, found, "Herald reads its sentinel")
	require.Equal(t, "s1", string(payload))

	// p1 subscribes to everything: a broadcast Herald publishes after the SUBACK
	// arrives after the retained sentinel would have.
	p1 := newRecorder()
	p1c := secureClient(t, b.URL, "p1", "p1-secret", TLSConfig{}, p1.handle)
	subscribeAll(t, p1c, "herald/#")
	publish(t, herald, Message{Topic: "herald/g1/all/notice/fence", Payload: []byte("fence")})
	p1.waitFor(t, "herald/g1/all/notice/fence", "fence")
	assert.Empty(t, p1.under("herald/$herald/"), "a player read Herald's sentinel")

	// p1 tries to overwrite the sentinel, then sends a receipt of its own as a
	// fence: Herald's receipt subscription gets it after the forbidden publish.
	receipts := newRecorder()
	subscribeAll(t, secureClient(t, b.URL, "herald", "herald-secret", TLSConfig{}, receipts.handle), "herald/+/receipts/+")
	for _, m := range []struct{ topic, payload string }{{sentinel, "forged"}, {"herald/g1/receipts/p1", "fence"}} {
		tok := p1c.Publish(m.topic, 1, true, m.payload)
		require.True(t, tok.WaitTimeout(10*time.Second), "publish %s timed out", m.topic)
		require.NoError(t, tok.Error())
	}
	receipts.waitFor(t, "herald/g1/receipts/p1", "fence")
	payload, found = checkRetained(t, herald, sentinel, probe)
	require.True(t, found)
	require.Equal(t, "s1", string(payload), "a player cannot overwrite the sentinel")
}

// (e) and (f): a wrong password, an unknown user and an anonymous client are
// refused; so are a plain TCP client on the TLS listener and a client that
// trusts another CA than the one that signed the broker's certificate (with the
// TLS configuration Dial makes).
func TestBrokerRefusesWrongCredentialsAndUntrustedBroker(t *testing.T) {
	t.Parallel()
	files := brokertest.WriteTLSFiles(t)
	b := brokertest.StartWith(t, brokertest.Options{Listener: brokertest.Security{
		TLS:          &files,
		PasswordFile: brokertest.WritePasswordFile(t, map[string]string{"herald": "herald-secret"}),
		ACLFile:      brokertest.WriteFile(t, "herald.acl", brokertest.HeraldACL),
	}})
	ca := TLSConfig{CAFile: files.CAFile}

	for _, c := range []struct{ name, user, password string }{
		{"wrong password", "herald", "guess"},
		{"unknown user", "p9", "p9-secret"},
		{"anonymous", "", ""},
	} {
		err := connectErr(t, b.URL, c.user, c.password, ca)
		require.Error(t, err, c.name)
		assert.True(t, errors.Is(err, packets.ErrorRefusedNotAuthorised) || errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword),
			"%s: %v", c.name, err)
	}

	plain := "tcp://127.0.0.1" + b.URL[strings.LastIndex(b.URL, ":"):]
	require.Error(t, connectErr(t, plain, "herald", "herald-secret", TLSConfig{}), "plain TCP on the TLS listener")

	other := TLSConfig{CAFile: brokertest.WriteTLSFiles(t).CAFile}
	err := connectErr(t, b.URL, "herald", "herald-secret", other)
	var verr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &verr, "a broker certificate from another CA")
	// Not shown with a Conn: Close on a Conn that never connected returns after
	// its 1 s quiesce but leaves paho goroutines running for up to 2 s more,
	// which goleak reports when this test ends last.
}

// A listener that requires a client certificate takes Herald's Conn with its
// certificate and key, and refuses a client without one.
func TestDialTLSClientCertificate(t *testing.T) {
	t.Parallel()
	files := brokertest.WriteTLSFiles(t)
	b := brokertest.StartWith(t, brokertest.Options{Listener: brokertest.Security{
		TLS: &files, RequireCertificate: true,
		PasswordFile: brokertest.WritePasswordFile(t, map[string]string{"herald": "herald-secret"}),
		ACLFile:      brokertest.WriteFile(t, "herald.acl", brokertest.HeraldACL),
	}})
	withCert := TLSConfig{CAFile: files.CAFile, CertFile: files.ClientCertFile, KeyFile: files.ClientKeyFile}
	c := dialTest(t, Config{URL: b.URL, Username: "herald", Password: "herald-secret", TLS: withCert})
	publish(t, c, Message{Topic: "herald/g1/all/notice/cert", Payload: []byte("with a certificate")})

	require.Error(t, connectErr(t, b.URL, "herald", "herald-secret", TLSConfig{CAFile: files.CAFile}),
		"a client without a certificate")
}

// Several games on one broker, isolated as the README says: per-listener
// settings, a listener for Herald with the herald block of the ACL, and one
// listener per game with its own password file and the pattern lines with the
// game in place of "+". Player p1 of g1 and player p1 of g2 (two people, two
// passwords) each read only their own game's messages, and p1 of g1 cannot
// publish a receipt for g2.
func TestBrokerACLPerGameListeners(t *testing.T) {
	t.Parallel()
	files := brokertest.WriteTLSFiles(t)
	listener := func(acl string, users map[string]string) brokertest.Security {
		return brokertest.Security{
			TLS: &files, PasswordFile: brokertest.WritePasswordFile(t, users),
			ACLFile: brokertest.WriteFile(t, "herald.acl", acl),
		}
	}
	b := brokertest.StartWith(t, brokertest.Options{
		Listener: listener(heraldListenerACL(), map[string]string{"herald": "herald-secret"}),
		More: []brokertest.Security{
			listener(gameACL("g1"), map[string]string{"p1": "g1-p1-secret"}),
			listener(gameACL("g2"), map[string]string{"p1": "g2-p1-secret"}),
		},
	})
	heraldURL, g1URL, g2URL := b.Listeners[0], b.Listeners[1], b.Listeners[2]
	ca := TLSConfig{CAFile: files.CAFile}
	require.Error(t, connectErr(t, g1URL, "herald", "herald-secret", ca), "Herald's account exists only on its listener")
	require.Error(t, connectErr(t, g1URL, "p1", "g2-p1-secret", ca), "g2's p1 is not g1's")

	herald := dialTest(t, Config{URL: heraldURL, Username: "herald", Password: "herald-secret", TLS: ca})
	waitUp(t, herald)
	receipts := newRecorder()
	subscribeAll(t, secureClient(t, heraldURL, "herald", "herald-secret", ca, receipts.handle),
		"$share/herald/herald/+/receipts/+")

	players := map[string]*recorder{"g1": newRecorder(), "g2": newRecorder()}
	clients := map[string]mqtt.Client{}
	for game, url := range map[string]string{"g1": g1URL, "g2": g2URL} {
		clients[game] = secureClient(t, url, "p1", game+"-p1-secret", ca, players[game].handle)
		// Both games' topics: the ACL, not the client, keeps the other game out.
		subscribeAll(t, clients[game], "herald/+/player/p1/#", "herald/+/all/#")
	}
	publish(t, herald,
		Message{Topic: "herald/g1/player/p1/notice/x", Payload: []byte("g1 p1")},
		Message{Topic: "herald/g2/player/p1/notice/x", Payload: []byte("g2 p1")},
		Message{Topic: "herald/g1/all/notice/x", Payload: []byte("g1 all")},
		Message{Topic: "herald/g2/all/notice/x", Payload: []byte("g2 all")})
	publish(t, herald,
		Message{Topic: "herald/g1/all/notice/fence", Payload: []byte("fence")},
		Message{Topic: "herald/g2/all/notice/fence", Payload: []byte("fence")})
	for game, other := range map[string]string{"g1": "g2", "g2": "g1"} {
		r := players[game]
		r.waitFor(t, "herald/"+game+"/all/notice/fence", "fence")
		r.waitFor(t, "herald/"+game+"/player/p1/notice/x", game+" p1")
		r.waitFor(t, "herald/"+game+"/all/notice/x", game+" all")
		assert.Empty(t, r.under("herald/"+other+"/"), "%s's p1 read %s's messages", game, other)
	}

	for _, topic := range []string{"herald/g2/receipts/p1", "herald/g1/receipts/p1"} { // fake first
		tok := clients["g1"].Publish(topic, 1, false, "from g1's p1")
		require.True(t, tok.WaitTimeout(10*time.Second))
		require.NoError(t, tok.Error())
	}
	receipts.waitFor(t, "herald/g1/receipts/p1", "from g1's p1")
	assert.Equal(t, []string{"herald/g1/receipts/p1"}, receipts.under("herald/"))
}

// The README quotes the ACL file the tests run, and the per-game file derived
// from it for g1.
func TestREADMEQuotesACL(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	assert.Contains(t, string(readme), "```\n"+brokertest.HeraldACL+"```\n", "README's ACL differs from internal/brokertest/testdata/herald.acl")
	assert.Contains(t, string(readme), "```\n"+gameACL("g1")+"```\n", "README's per-game ACL differs from the one TestBrokerACLPerGameListeners runs")
}

// heraldListenerACL is the first block of the README's ACL file: Herald's
// account, for a listener only Herald uses.
func heraldListenerACL() string {
	block, _, _ := strings.Cut(brokertest.HeraldACL, "\n\n")
	return block + "\n"
}

// gameACL is the pattern lines of the README's ACL file with game in place of
// the "+" game level: the ACL of a listener that only game's clients use.
func gameACL(game string) string {
	var out strings.Builder
	for line := range strings.Lines(brokertest.HeraldACL) {
		if strings.HasPrefix(line, "pattern ") {
			out.WriteString(strings.Replace(line, "herald/+/", "herald/"+game+"/", 1))
		}
	}
	return out.String()
}

// publish sends msgs with PublishAll and requires every one acknowledged.
func publish(t *testing.T, c *Conn, msgs ...Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	res, err := c.PublishAll(ctx, msgs)
	require.NoError(t, err)
	require.Equal(t, len(msgs), res.Acked)
}

// connectErr connects a plain paho client and returns the error of its CONNECT.
func connectErr(t *testing.T, url, user, password string, tc TLSConfig) error {
	t.Helper()
	tlsCfg, err := tlsFor(url, tc)
	require.NoError(t, err)
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID("herald-test-" + randomHex(t)).
		SetUsername(user).SetPassword(password).SetTLSConfig(tlsCfg).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second), "connect timed out")
	if tok.Error() == nil {
		c.Disconnect(100)
	}
	return tok.Error()
}

// secureClient is a connected paho client with a user name, a password and TLS,
// passing what it receives to handle in order; disconnected at cleanup.
func secureClient(t *testing.T, url, user, password string, tc TLSConfig, handle mqtt.MessageHandler) mqtt.Client {
	t.Helper()
	tlsCfg, err := tlsFor(url, tc)
	require.NoError(t, err)
	return pahoClient(t, url, func(o *mqtt.ClientOptions) {
		o.SetUsername(user).SetPassword(password).SetTLSConfig(tlsCfg).SetDefaultPublishHandler(handle)
	})
}

// subscribeAll subscribes at QoS 1 to each filter in turn, each acknowledged
// before the next is sent, and returns the granted QoS (0x80: refused) per filter.
func subscribeAll(t *testing.T, c mqtt.Client, filters ...string) map[string]byte {
	t.Helper()
	granted := map[string]byte{}
	for _, f := range filters {
		tok := c.Subscribe(f, 1, nil)
		require.True(t, tok.WaitTimeout(10*time.Second), "subscribe %s timed out", f)
		require.NoError(t, tok.Error())
		for k, v := range tok.(*mqtt.SubscribeToken).Result() {
			granted[k] = v
		}
	}
	return granted
}

// recorder keeps the last payload received per topic.
type recorder struct {
	mu      sync.Mutex
	last    map[string]string
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{last: map[string]string{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) handle(_ mqtt.Client, m mqtt.Message) {
	r.mu.Lock()
	r.last[m.Topic()] = string(m.Payload())
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// under returns the topics received under prefix, sorted.
func (r *recorder) under(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for topic := range r.last {
		if strings.HasPrefix(topic, prefix) {
			out = append(out, topic)
		}
	}
	slices.Sort(out)
	return out
}

// waitFor waits until payload has been received on topic, failing after patience.
func (r *recorder) waitFor(t *testing.T, topic, payload string) {
	t.Helper()
	deadline := time.NewTimer(patience)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got, ok := r.last[topic]
		r.mu.Unlock()
		if ok && got == payload {
			return
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			require.FailNow(t, "message not received", "%q on %s (last: %q)", payload, topic, got)
		}
	}
}
