package bench

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/heraldpush/herald/internal/sim"
)

// startSim connects players simulated players of game g1 (the project's own
// simulator, `herald sim`, over the Go SDK) to h's broker, perConn to an MQTT
// connection (the broker's account simgw; with one each, its own player's
// account), and returns once every one is online. They report displayed
// and clicked at the given rates; they leave when the test ends.
func startSim(t *testing.T, h *herald, players, perConn int, display, click float64) *sim.Sim {
	t.Helper()
	s, err := sim.New(sim.Config{
		Broker: h.broker.URL, Username: "simgw", Password: password, Game: "g1", Prefix: h.prefix,
		Players: players, PlayersPerConn: perConn,
		DisplayRate: display, ClickRate: click, Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Run(ctx)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("simulator: %v", err)
		}
	})
	watch := newStallWatch()
	for {
		sum := s.Snapshot()
		if sum.Failed > 0 {
			t.Fatalf("simulator: %d of %d players could not connect", sum.Failed, players)
		}
		if sum.Connected == int64(players) {
			return s
		}
		if watch.stalled(sum.Connected) {
			t.Fatalf("simulator: %d of %d players online, none more for a minute", sum.Connected, players)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// received is how many messages the simulated players accepted in all.
func received(s *sim.Sim) int64 {
	var n int64
	for _, k := range s.Snapshot().Received {
		n += k
	}
	return n
}
