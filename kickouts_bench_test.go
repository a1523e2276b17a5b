package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	sdk "github.com/heraldpush/herald/client"
	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
)

// benchHerald runs a built herald as its own process on a new database and a
// private broker, with rate limits out of the way, and returns it with its
// game g1 created.
func benchHerald(b *testing.B) (*herald, *brokertest.Broker) {
	b.Helper()
	broker := brokertest.Start(b)
	dbURL := dbtest.New(b)
	h := &herald{t: b, prefix: randomPrefix(), broker: broker.URL, key: adminKey(b, dbURL)}
	h.base, _ = startHeraldProcess(b, buildHerald(b), map[string]string{
		"HERALD_DATABASE_URL": dbURL, "HERALD_MQTT_URL": broker.URL, "HERALD_TOPIC_PREFIX": h.prefix,
		"HERALD_RATE_LIMIT": "1000000", "HERALD_RATE_BURST": "1000000",
	})
	h.createGame()
	return h, broker
}

// benchEnv reads a positive whole number from the environment variable name,
// def if it is not set.
func benchEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

// percentile returns the p-th percentile (0-100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkKickoutLatency sends kick-outs to a real Herald process at a fixed
// 1,000 requests/s for 30 s (HERALD_BENCH_KICKOUT_RATE and _SECONDS change
// them), each request on its own schedule whatever the previous ones do (open
// loop), and reports the latency percentiles and the errors (a request that
// fails or takes over 10 s). Target: p99 <= 20 ms, no errors.
//
//	go test -run '^$' -bench KickoutLatency -benchtime 1x .
func BenchmarkKickoutLatency(b *testing.B) {
	rate, seconds := benchEnv(b, "HERALD_BENCH_KICKOUT_RATE", 1000), benchEnv(b, "HERALD_BENCH_KICKOUT_SECONDS", 30)
	h, _ := benchHerald(b)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	post := func(i int) error {
		body := fmt.Sprintf(`{"players":["p%d"],"reason":"login_elsewhere","message":{"en":"Logged in elsewhere"}}`, i%5000)
		req, err := http.NewRequest("POST", h.base+"/v1/games/g1/kickouts", bytes.NewReader([]byte(body)))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+h.key)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("status %d: %s", resp.StatusCode, raw)
		}
		var st struct{ State string }
		if err := json.Unmarshal(raw, &st); err != nil || st.State != "published" {
			return fmt.Errorf("not published: %s", raw)
		}
		return nil
	}
	for i := range 200 { // warm up connections and caches
		if err := post(i); err != nil {
			b.Fatal(err)
		}
	}

	var all []time.Duration
	errs := 0
	for b.Loop() {
		n := seconds * rate
		lat := make([]time.Duration, n)
		failed := make([]error, n)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range n {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
			wg.Go(func() {
				t0 := time.Now()
				failed[i] = post(i)
				lat[i] = time.Since(t0)
			})
		}
		wg.Wait()
		for i, err := range failed {
			if err != nil {
				if errs < 5 {
					b.Logf("request %d: %v", i, err)
				}
				errs++
				continue
			}
			all = append(all, lat[i])
		}
	}
	slices.Sort(all)
	b.ReportMetric(ms(percentile(all, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(all, 99)), "p99-ms")
	b.ReportMetric(ms(percentile(all, 100)), "max-ms")
	b.ReportMetric(float64(errs), "errors")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkWaitedKickout kicks an online Go SDK player with ?wait=5s, one
// request at a time, through a real Herald process, and reports the latency
// until the answer says delivered next to a bare paho round trip on the same
// broker: a QoS 1 publish to the player's topic, answered by a paho
// subscriber with a QoS 1 receipt the publisher receives. Target: Herald's
// p50 and p99 within twice the bare ones. HERALD_BENCH_WAITED_N sets the
// number of round trips of each (default 300).
//
//	go test -run '^$' -bench WaitedKickout -benchtime 1x .
func BenchmarkWaitedKickout(b *testing.B) {
	n := benchEnv(b, "HERALD_BENCH_WAITED_N", 300)
	h, broker := benchHerald(b)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	player, err := sdk.Connect(ctx, sdk.Options{Broker: broker.URL, Game: "g1", Player: "p1", Prefix: h.prefix, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer player.Close()
	body := map[string]any{"players": []string{"p1"}, "reason": "login_elsewhere", "message": map[string]any{"en": "Logged in elsewhere"}}
	kick := func() time.Duration {
		t0 := time.Now()
		st := h.call(http.StatusCreated, "POST", "/v1/games/g1/kickouts?wait=5s", body)
		d := time.Since(t0)
		if st["state"] != "delivered" {
			b.Fatalf("not delivered within the wait: %v", st)
		}
		return d
	}
	for range 20 { // warm up
		kick()
	}
	bare := bareRoundTrip(b, broker.URL)
	var heraldLat, bareLat []time.Duration
	for b.Loop() {
		for range n {
			heraldLat = append(heraldLat, kick())
			bareLat = append(bareLat, bare())
		}
	}
	slices.Sort(heraldLat)
	slices.Sort(bareLat)
	hp50, hp99 := percentile(heraldLat, 50), percentile(heraldLat, 99)
	bp50, bp99 := percentile(bareLat, 50), percentile(bareLat, 99)
	b.ReportMetric(ms(hp50), "herald-p50-ms")
	b.ReportMetric(ms(hp99), "herald-p99-ms")
	b.ReportMetric(ms(bp50), "bare-p50-ms")
	b.ReportMetric(ms(bp99), "bare-p99-ms")
	b.ReportMetric(float64(hp50)/float64(bp50), "p50-ratio")
	b.ReportMetric(float64(hp99)/float64(bp99), "p99-ratio")
	b.ReportMetric(0, "ns/op")
}

// bareRoundTrip connects two paho clients to broker: a "player" that answers
// each message on bare/player/p1/kickout/# with a QoS 1 receipt on
// bare/receipts/p1, and a "backend" that publishes to the player and waits for
// the receipt. It returns one round trip's measurement.
func bareRoundTrip(b *testing.B, broker string) func() time.Duration {
	b.Helper()
	connect := func(id string) mqtt.Client {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(true).SetOrderMatters(false))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("connect %s: %v", id, tok.Error())
		}
		b.Cleanup(func() { c.Disconnect(100) })
		return c
	}
	subscribe := func(c mqtt.Client, filter string, h mqtt.MessageHandler) {
		if tok := c.Subscribe(filter, 1, h); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("subscribe %s: %v", filter, tok.Error())
		}
	}
	player, backend := connect("bare-player"), connect("bare-backend")
	subscribe(player, "bare/player/p1/kickout/#", func(c mqtt.Client, m mqtt.Message) {
		c.Publish("bare/receipts/p1", 1, false, fmt.Sprintf(`{"id":%q,"e":"delivered","t":%d}`, m.Topic(), time.Now().UnixMilli()))
	})
	got := make(chan struct{}, 1)
	subscribe(backend, "bare/receipts/p1", func(mqtt.Client, mqtt.Message) { got <- struct{}{} })
	payload := make([]byte, 300) // about a kick-out's envelope
	return func() time.Duration {
		t0 := time.Now()
		tok := backend.Publish("bare/player/p1/kickout/k", 1, false, payload)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("publish: %v", tok.Error())
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			b.Fatal("no receipt")
		}
		return time.Since(t0)
	}
}
