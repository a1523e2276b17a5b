package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	sdk "github.com/heraldpush/herald/client"
)

// kickoutLoad sends single-player kick-outs at a fixed sz.kickRate requests/s
// for sz.kickSecs (open loop) and reports latency p50 and p99 and the errors
// (a failed request, an answer other than 201 published, or none within
// 10 s). There is no baseline: the target is absolute (p99 <= 20 ms).
func kickoutLoad(t *testing.T, sz sizes, runs int, rec *recorder) {
	h := startHerald(t, 0)
	kick := func(i int) error {
		raw, err := h.do(http.StatusCreated, "POST", "/v1/games/g1/kickouts", map[string]any{
			"players": []string{fmt.Sprintf("p%d", i%5000)}, "reason": "login_elsewhere", "message": map[string]any{"en": "Logged in elsewhere"},
		})
		if err != nil {
			return err
		}
		var st struct{ State string }
		if err := json.Unmarshal(raw, &st); err != nil || st.State != "published" {
			return fmt.Errorf("not published: %s", raw)
		}
		return nil
	}
	for i := range 200 { // connections and caches warm
		if err := kick(i); err != nil {
			t.Fatal(err)
		}
	}
	h.http.Timeout = 10 * time.Second
	name := fmt.Sprintf("kick-outs at %s/s for %d s", number(float64(sz.kickRate)), sz.kickSecs)
	for range runs {
		cpu, machine := meterCPU(t, h.pid), meterMachine(t)
		lat, errs := openLoop(sz.kickRate, sz.kickSecs, kick)
		heraldCPU, machineCPU := cpu.cores()[0], machine.cores()
		for _, err := range errs[:min(3, len(errs))] {
			t.Logf("kick-out: %v", err)
		}
		slices.Sort(lat)
		rec.add(figure{row: name + ": p50", unit: "ms", herald: percentile(lat, 50), base: math.NaN()})
		rec.add(figure{row: name + ": p99", unit: "ms", herald: percentile(lat, 99), base: math.NaN(), goal: ptr(atMost(20, "ms"))})
		rec.add(figure{row: name + ": errors", unit: "", herald: float64(len(errs)), base: math.NaN(), goal: ptr(atMost(0, ""))})
		// What limits it: the cores Herald kept busy, and the machine's (Herald,
		// Postgres, the broker and this load generator) out of runtime.NumCPU.
		rec.add(figure{row: name + ": Herald's CPU", unit: "cores", herald: heraldCPU, base: math.NaN()})
		rec.add(figure{row: fmt.Sprintf("%s: the machine's CPU (of %d)", name, runtime.NumCPU()), unit: "cores", herald: machineCPU, base: math.NaN()})
	}
}

// waitedKickout kicks an online Go SDK player with ?wait=5s, one request at a
// time, and reports the latency until the answer says delivered, next to a
// bare round trip on the same broker: a paho QoS 1 publish to a paho
// "player" that answers with a QoS 1 receipt the publisher receives. The two
// take turns, sz.waited times each.
func waitedKickout(t *testing.T, sz sizes, runs int, rec *recorder) {
	h := startHerald(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	player, err := sdk.Connect(ctx, sdk.Options{Broker: h.broker.URL, Game: "g1", Player: "p1", Password: password, Prefix: h.prefix, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer player.Close()
	body := map[string]any{"players": []string{"p1"}, "reason": "login_elsewhere", "message": map[string]any{"en": "Logged in elsewhere"}}
	kick := func() time.Duration {
		t0 := time.Now()
		st := h.call(http.StatusCreated, "POST", "/v1/games/g1/kickouts?wait=5s", body)
		d := time.Since(t0)
		if st["state"] != "delivered" {
			t.Fatalf("not delivered within the wait: %v", st)
		}
		return d
	}
	for range 20 { // warm up
		kick()
	}
	bare := bareRoundTrip(t, h.broker.URL)
	commit := durableCommit(t, h.dbURL)
	name := "kick-out with wait to an online player"
	for range runs {
		var heraldLat, bareLat, commitLat []time.Duration
		for range sz.waited {
			heraldLat = append(heraldLat, kick())
			bareLat = append(bareLat, bare())
			commitLat = append(commitLat, commit())
		}
		slices.Sort(heraldLat)
		slices.Sort(bareLat)
		slices.Sort(commitLat)
		rec.add(figure{row: name + ": p50", unit: "ms", herald: percentile(heraldLat, 50), base: percentile(bareLat, 50)})
		rec.add(figure{row: name + ": p99", unit: "ms", herald: percentile(heraldLat, 99), base: percentile(bareLat, 99), goal: ptr(ratioAtMost(2))})
		// What limits it: a kick-out is stored before it is published (nothing
		// lost), so it pays at least one durable commit the bare round trip does
		// not; here one, timed alone on the same database.
		rec.add(figure{row: name + ": one durable commit alone, p50", unit: "ms", herald: percentile(commitLat, 50), base: math.NaN()})
		rec.add(figure{row: name + ": one durable commit alone, p99", unit: "ms", herald: percentile(commitLat, 99), base: math.NaN()})
	}
}

// durableCommit returns a measurement of one durable commit on the database
// at dbURL: a one-row INSERT in its own transaction, from a connection of its
// own, with the database's default synchronous_commit (as Herald's kick-out
// insert).
func durableCommit(t *testing.T, dbURL string) func() time.Duration {
	t.Helper()
	db := connect(t, dbURL)
	ctx := context.Background()
	if _, err := db.Exec(ctx, `CREATE TABLE bench_commits (id bigserial PRIMARY KEY, at timestamptz NOT NULL)`); err != nil {
		t.Fatalf("durable commit table: %v", err)
	}
	return func() time.Duration {
		t0 := time.Now()
		if _, err := db.Exec(ctx, `INSERT INTO bench_commits (at) VALUES (now())`); err != nil {
			t.Fatalf("durable commit: %v", err)
		}
		return time.Since(t0)
	}
}

// bareRoundTrip connects a paho "player" that answers each message on
// bare/player/p1/kickout/# with a QoS 1 receipt on bare/receipts/p1, and a
// paho "backend" that publishes to it and waits for the receipt; it returns
// one round trip's measurement.
func bareRoundTrip(t *testing.T, broker string) func() time.Duration {
	t.Helper()
	subscribe := func(c mqtt.Client, filter string, h mqtt.MessageHandler) {
		if tok := c.Subscribe(filter, 1, h); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", filter, tok.Error())
		}
	}
	player, backend := pahoClient(t, broker, "bare-player"), pahoClient(t, broker, "bare-backend")
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
			t.Fatalf("bare publish: %v", tok.Error())
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("bare round trip: no receipt in 10 s")
		}
		return time.Since(t0)
	}
}
