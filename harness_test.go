package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/dbtest"
)

// herald is a real Herald started in-process by run, on its own database and
// topic prefix, spoken to over HTTP as a user would.
type herald struct {
	t      testing.TB
	base   string
	prefix string
	broker string
	stop   func() // stops an in-process herald; the test's end does too
	key    string // an admin API key
}

// adminKey creates an admin API key in the database at dbURL the way an operator
// bootstraps one, with `herald apikey create`, and returns its secret (the last
// line of output).
func adminKey(tb testing.TB, dbURL string) string {
	tb.Helper()
	var out bytes.Buffer
	err := run(context.Background(), []string{"apikey", "create", "--name", "test admin", "--role", "admin"},
		env(map[string]string{"HERALD_DATABASE_URL": dbURL}), &out, io.Discard)
	require.NoError(tb, err)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[len(lines)-1]
}

// startHeraldInProcess runs `herald serve` on a new database until the test ends.
func startHeraldInProcess(t testing.TB, broker string) *herald {
	t.Helper()
	return startHeraldWith(t, map[string]string{
		"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": broker, "HERALD_TOPIC_PREFIX": randomPrefix(),
	})
}

// startHeraldWith runs `herald serve` with the HERALD_* variables in vars (the
// database, the broker and the topic prefix at least) until the test ends or
// stop is called.
func startHeraldWith(t testing.TB, vars map[string]string) *herald {
	t.Helper()
	requirePrivateBroker(t, vars)
	h := &herald{t: t, prefix: vars["HERALD_TOPIC_PREFIX"], broker: vars["HERALD_MQTT_URL"], key: adminKey(t, vars["HERALD_DATABASE_URL"])}
	vars = maps.Clone(vars)
	if vars["HERALD_DISPATCH_LEASE"] == "" {
		vars["HERALD_DISPATCH_LEASE"] = "2s"
	}
	withTestDefaults(vars)
	ctx, cancel := context.WithCancel(context.Background())
	logs, logw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--http-addr", "127.0.0.1:0", "--log-level", "info"}, env(vars), io.Discard, logw)
		logw.Close()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "listening" {
				addr <- line["addr"].(string)
			}
			if lvl, _ := line["level"].(string); lvl == "ERROR" || os.Getenv("HERALD_TEST_LOGS") != "" {
				t.Logf("herald: %s", sc.Text())
			}
		}
	}()
	select {
	case a := <-addr:
		h.base = "http://" + a
	case err := <-done:
		t.Fatalf("serve stopped early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve never said where it listens")
	}
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Error("serve did not stop")
			}
		})
	}
	t.Cleanup(h.stop)
	return h
}

// call sends a JSON request and decodes the JSON answer, requiring status want.
func (h *herald) call(want int, method, path string, body any) map[string]any {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(h.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	require.NoError(h.t, err)
	req.Header.Set("Authorization", "Bearer "+h.key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	require.Equal(h.t, want, resp.StatusCode, "%s %s: %s", method, path, raw)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(h.t, json.Unmarshal(raw, &out))
	}
	return out
}

// patience is how long a test waits for something that takes a moment on an
// idle machine. It is generous because the suite runs on loaded 2-core
// machines; a passing test never waits it out.
const patience = 60 * time.Second

// sleepUntil waits for a moment on the wall clock, for a test that needs a time
// to pass (and nothing else to happen) while a fault lasts.
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	waitProgress(t, what, timeout, cond, func() int { return 0 })
}

// waitProgress polls cond until it holds. It gives up only when progress (a
// count that grows while work is under way, such as messages received) has not
// changed for stall: a slow machine that keeps making progress is never failed.
func waitProgress(t testing.TB, what string, stall time.Duration, cond func() bool, progress func() int) {
	t.Helper()
	last, deadline := progress(), time.Now().Add(stall)
	for !cond() {
		if n := progress(); n != last {
			last, deadline = n, time.Now().Add(stall)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: nothing changed for %s", what, stall)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// client is a game client: a paho subscriber that records what arrives.
type client struct {
	t    testing.TB
	conn mqtt.Client
	mu   sync.Mutex
	got  []received
	lost error // why the connection was lost, if it was
}

type received struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// subscribe connects a clean-session client to broker and subscribes to filters
// (QoS 0: a test's burst of retained messages must not hit Mosquitto's queue
// limit for QoS 1 subscribers).
func subscribe(t testing.TB, broker string, filters ...string) *client {
	t.Helper()
	c := &client{t: t}
	// Messages are handled in order, one at a time (paho would otherwise start a
	// goroutine for each of a flood of retained messages), and a long keepalive
	// keeps a subscriber on a loaded machine from being dropped mid-flood.
	opts := mqtt.NewClientOptions().AddBroker(broker).SetCleanSession(true).SetAutoReconnect(false).
		SetKeepAlive(2 * time.Minute).SetPingTimeout(time.Minute).
		SetOrderMatters(true).SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
		c.mu.Lock()
		c.got = append(c.got, received{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), Retained: m.Retained()})
		c.mu.Unlock()
	}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			c.mu.Lock()
			c.lost = err
			c.mu.Unlock()
		})
	c.conn = mqtt.NewClient(opts)
	tok := c.conn.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil, "connect: %v", tok.Error())
	subs := map[string]byte{}
	for _, f := range filters {
		subs[f] = 0
	}
	tok = c.conn.SubscribeMultiple(subs, nil)
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil, "subscribe: %v", tok.Error())
	t.Cleanup(func() { c.conn.Disconnect(100) })
	return c
}

// messages returns what arrived so far, leaving out the markers of onlyRetained.
func (c *client) messages() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []received
	for _, m := range c.got {
		if !strings.HasSuffix(m.Topic, markerLevel) {
			out = append(out, m)
		}
	}
	return out
}

// buildHerald builds the herald binary into a temporary directory.
func buildHerald(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "herald")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		tb.Fatalf("build herald: %v\n%s", err, out)
	}
	return bin
}

// withTestDefaults sets what the tests' Heralds run with unless a test says
// otherwise: a database time limit three times the default, because the suite
// runs many Heralds at once on a loaded 2-core machine, where a busy Postgres
// is not the unavailable one a 503 is for (the outage tests set their own).
func withTestDefaults(vars map[string]string) {
	if vars["HERALD_DB_TIMEOUT"] == "" {
		vars["HERALD_DB_TIMEOUT"] = "15s"
	}
}

// startHeraldProcess runs `bin serve` on a free port as a separate process with
// vars added to the environment, and returns its base URL once it listens. The
// process is interrupted (or killed, if the test did) when the test ends.
func startHeraldProcess(tb testing.TB, bin string, vars map[string]string) (string, *exec.Cmd) {
	tb.Helper()
	requirePrivateBroker(tb, vars)
	cmd := exec.Command(bin, "serve", "--http-addr", "127.0.0.1:0")
	cmd.Env = os.Environ()
	vars = maps.Clone(vars)
	withTestDefaults(vars)
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "listening" {
			go io.Copy(io.Discard, stderr) //nolint:errcheck // keep the pipe drained
			return "http://" + line["addr"].(string), cmd
		}
	}
	tb.Fatal("herald exited before listening")
	return "", nil
}

// requirePrivateBroker refuses to start a Herald without a broker of the
// test's own (internal/brokertest): whatever it retains (its sentinel, every
// send) would otherwise stay on the developer's shared broker.
func requirePrivateBroker(tb testing.TB, vars map[string]string) {
	tb.Helper()
	if vars["HERALD_MQTT_URL"] == "" {
		tb.Fatal("give Herald a private broker: HERALD_MQTT_URL = brokertest.Start(t).URL")
	}
}
