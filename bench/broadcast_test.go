package bench

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"

	"github.com/heraldpush/herald/internal/sim"
	"github.com/heraldpush/herald/protocol"
)

// broadcast sends a notice to everyone with sz.players simulated players
// online, one MQTT connection each, and reports the time from the API call
// until 95 %, 99 % and 100 % of them accepted it (as the simulator counts),
// next to one bare paho QoS 1 publish of a valid envelope to the same
// players (the same "all" topic level), timed the same way.
func broadcast(t *testing.T, sz sizes, runs int, rec *recorder) {
	h := startHerald(t, sz.players)
	s := startSim(t, h, sz.players, 1, 0, 0)
	bare := pahoClient(t, h.broker.URL, "bare-publisher")
	name := fmt.Sprintf("broadcast to %s players online", number(float64(sz.players)))
	for run := range runs {
		machine := meterMachine(t)
		herald := reach(t, s, sz.players, func() {
			h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
				"kind": "notice", "name": fmt.Sprintf("broadcast %d", run), "audience": map[string]any{"rule": map[string]any{"everyone": true}},
				"content": map[string]any{"title": map[string]any{"en": "Season 4 starts"}, "body": map[string]any{"en": "Log in for your gift"}},
			})
		})
		heraldCPU := machine.cores()
		time.Sleep(time.Second) // the players' receipts of Herald's send are stored, not competing with the baseline
		machine = meterMachine(t)
		base := reach(t, s, sz.players, func() { barePublishToAll(t, bare, h.prefix) })
		baseCPU := machine.cores()
		rec.add(figure{row: name + ": 95 % delivered", unit: "ms", herald: herald[0], base: base[0]})
		rec.add(figure{row: name + ": 99 % delivered", unit: "ms", herald: herald[1], base: base[1], goal: ptr(ratioAtMost(1.3))})
		rec.add(figure{row: name + ": 100 % delivered", unit: "ms", herald: herald[2], base: base[2]})
		// What limits it: the machine's cores kept busy until everyone had it
		// (the simulator, the broker, Herald and Postgres share them).
		rec.add(figure{row: fmt.Sprintf("broadcast: the machine's CPU (of %d)", runtime.NumCPU()), unit: "cores", herald: heraldCPU, base: baseCPU})
	}
}

// reach calls send and returns the milliseconds until 95 %, 99 % and every
// one of players accepted one more message.
func reach(t *testing.T, s *sim.Sim, players int, send func()) [3]float64 {
	t.Helper()
	before := received(s)
	marks := [3]int64{int64(players) * 95 / 100, int64(players) * 99 / 100, int64(players)}
	var out [3]float64
	start := time.Now()
	send()
	next, watch := 0, newStallWatch()
	for next < len(marks) {
		n := received(s) - before
		for next < len(marks) && n >= marks[next] {
			out[next] = float64(time.Since(start)) / float64(time.Millisecond)
			next++
		}
		if watch.stalled(n) {
			t.Fatalf("%d of %d players got the message, none more for a minute", n, players)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return out
}

// barePublishToAll publishes one notice envelope, as Herald would write it,
// to the game's "all" level with QoS 1 and waits for the broker's
// acknowledgement.
func barePublishToAll(t *testing.T, c mqtt.Client, prefix string) {
	t.Helper()
	content, err := protocol.ParseContent(protocol.KindNotice, json.RawMessage(`{"title":{"en":"Season 4 starts"},"body":{"en":"Log in for your gift"}}`), "en")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	campaign := uuid.NewString()
	payload, err := protocol.EncodeEnvelope(protocol.Envelope{
		ID: uuid.NewString(), Campaign: campaign, Kind: protocol.KindNotice, Game: "g1",
		SentAt: now, ExpiresAt: now.Add(time.Hour), Content: content,
	}, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	topic := protocol.Message(protocol.Base(prefix, "g1", protocol.ScopeAll), protocol.KindNotice, campaign)
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Fatalf("bare publish: %v", tok.Error())
	}
}
