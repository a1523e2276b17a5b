package sim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/sim"
	"github.com/heraldpush/herald/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const patience = 60 * time.Second

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", patience, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// heraldConn is the test's own connection, playing Herald: it publishes and
// collects the players who sent each receipt.
type heraldConn struct {
	t  *testing.T
	c  mqtt.Client
	mu sync.Mutex
	// receipts: "{id} {event}" -> players
	receipts map[string][]string
}

func dialHerald(t *testing.T, url string) *heraldConn {
	h := &heraldConn{t: t, receipts: map[string][]string{}}
	h.c = mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("herald-sim-test"))
	require.True(t, h.c.Connect().WaitTimeout(patience))
	t.Cleanup(func() { h.c.Disconnect(100) })
	tok := h.c.Subscribe("herald/+/receipts/+", 1, func(_ mqtt.Client, m mqtt.Message) {
		var r struct{ ID, E string }
		require.NoError(t, json.Unmarshal(m.Payload(), &r))
		player := m.Topic()[strings.LastIndexByte(m.Topic(), '/')+1:]
		h.mu.Lock()
		h.receipts[r.ID+" "+r.E] = append(h.receipts[r.ID+" "+r.E], player)
		h.mu.Unlock()
	})
	require.True(t, tok.WaitTimeout(patience))
	return h
}

func (h *heraldConn) publish(topic, payload string) {
	tok := h.c.Publish(topic, 1, true, payload)
	require.True(h.t, tok.WaitTimeout(patience))
	require.NoError(h.t, tok.Error())
}

func (h *heraldConn) players(id, event string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.receipts[id+" "+event]...)
}

// A broadcast with a residual filter reaches 200 simulated players spread over
// servers and tags: exactly those who match count it and acknowledge it, the
// others count it as filtered and send nothing. One player per connection, and
// players multiplexed over shared connections, give the same answer.
func TestBroadcastWithResidualFilter(t *testing.T) {
	for _, perConn := range []int{1, 20} {
		t.Run(fmt.Sprintf("%d players per connection", perConn), func(t *testing.T) {
			b := brokertest.Start(t)
			h := dialHerald(t, b.URL)
			h.publish("herald/g1/descriptor", `{"v":1,"game":"g1","prefix":"herald","default_locale":"en",
				"tags":{"region":{"values":["eu","na"]},"level":{"bands":[[1,29],[30,60]]}},"updated_at":"2026-11-27T10:00:00Z"}`)
			// Retained before the players come: on the tag topic of the band
			// 30-60, for players of region eu on s1 only.
			now := time.Now().UTC()
			ts := func(t time.Time) string { return t.Truncate(time.Millisecond).Format(time.RFC3339Nano) }
			h.publish("herald/g1/tag/level/30-60/notice/c0", fmt.Sprintf(`{"v":1,"id":"d0","campaign":"c0","kind":"notice","game":"g1",`+
				`"sent_at":%q,"expires_at":%q,"priority":1,"filter":{"and":[{"tag":"region","in":["eu"]},{"server":["s1"]}]},`+
				`"content":{"title":{"en":"T"},"body":{"en":"B"}}}`, ts(now), ts(now.Add(time.Hour))))

			s, err := sim.New(sim.Config{
				Broker: b.URL, Game: "g1", Players: 200, Servers: []string{"s1", "s2", "s3"},
				Tags:        []sim.TagSpread{mustSpread(t, "region=eu:60,na:40"), mustSpread(t, "level=1..60")},
				DisplayRate: 1, PlayersPerConn: perConn, Seed: 7,
			})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan sim.Summary, 1)
			go func() {
				sum, err := s.Run(ctx)
				if err != nil {
					t.Error(err)
				}
				done <- sum
			}()
			eventually(t, "200 players connected", func() bool { return s.Snapshot().Connected == 200 })

			// A broadcast to everyone in the game whose residual filter keeps
			// region eu at level 30 or more.
			h.publish("herald/g1/all/marquee/c1", fmt.Sprintf(`{"v":1,"id":"d1","campaign":"c1","kind":"marquee","game":"g1",`+
				`"sent_at":%q,"expires_at":%q,"priority":5,"filter":{"and":[{"tag":"region","in":["eu"]},{"tag":"level","between":[30,60]}]},`+
				`"content":{"text":{"en":"Hello"},"repeat":1,"interval_s":0}}`, ts(time.Now().UTC()), ts(time.Now().UTC().Add(time.Hour))))

			var want1, want0 []string
			for _, a := range s.Attributes() {
				level, _ := strconv.Atoi(a.Tags["level"])
				if a.Tags["region"] == "eu" && level >= 30 {
					want1 = append(want1, a.Player)
					if a.Server == "s1" {
						want0 = append(want0, a.Player)
					}
				}
			}
			require.NotEmpty(t, want0)
			require.Less(t, len(want1), 200)
			// Only band 30-60 players get c0; those of them not eu on s1 filter it.
			band := 0
			for _, a := range s.Attributes() {
				if level, _ := strconv.Atoi(a.Tags["level"]); level >= 30 {
					band++
				}
			}
			eventually(t, "every player to count the broadcast", func() bool {
				sum := s.Snapshot()
				return sum.Received[protocol.KindMarquee]+sum.Received[protocol.KindNotice]+sum.Filtered >= int64(200+band)
			})
			eventually(t, "the receipts", func() bool {
				return len(h.players("d1", "displayed")) == len(want1) && len(h.players("d0", "displayed")) == len(want0)
			})
			require.ElementsMatch(t, want1, h.players("d1", "delivered"))
			require.ElementsMatch(t, want1, h.players("d1", "displayed"))
			require.ElementsMatch(t, want0, h.players("d0", "delivered"))

			cancel()
			sum := <-done
			require.EqualValues(t, 200, sum.Connected)
			require.EqualValues(t, len(want1), sum.Received[protocol.KindMarquee])
			require.EqualValues(t, len(want0), sum.Received[protocol.KindNotice])
			require.EqualValues(t, 200-len(want1)+band-len(want0), sum.Filtered)
			require.EqualValues(t, 2*(len(want1)+len(want0)), sum.Receipts, "delivered and displayed, by the matching players only")
			require.EqualValues(t, len(want1)+len(want0), sum.Displayed)
			require.Zero(t, sum.Invalid+sum.Duplicates+sum.Expired)
			require.NotEmpty(t, sum.LatencyP50)
			require.EqualValues(t, (200+perConn-1)/perConn, sum.Connections)
		})
	}
}

func mustSpread(t *testing.T, s string) sim.TagSpread {
	ts, err := sim.ParseTagSpread(s)
	require.NoError(t, err)
	return ts
}

func TestParseSpreadsAndRamp(t *testing.T) {
	ts, err := sim.ParseTagSpread("region=eu:60,na:40,asia")
	require.NoError(t, err)
	require.Equal(t, sim.TagSpread{Name: "region", Values: []string{"eu", "na", "asia"}, Weights: []float64{60, 40, 1}}, ts)
	ts, err = sim.ParseTagSpread("level=1..60")
	require.NoError(t, err)
	require.Equal(t, sim.TagSpread{Name: "level", Lo: 1, Hi: 60}, ts)
	for _, bad := range []string{"region", "=eu", "region=", "region=eu:x", "region=eu:-1", "region=eu,,na", "level=9..1", "level=1..x"} {
		_, err := sim.ParseTagSpread(bad)
		require.Error(t, err, bad)
	}
	r, err := sim.ParseRamp("500/s")
	require.NoError(t, err)
	require.Equal(t, 500.0, r)
	_, err = sim.ParseRamp("fast")
	require.Error(t, err)

	// The spread is honoured: with a fixed seed, about 60% eu, levels in range.
	s, err := sim.New(sim.Config{Broker: "tcp://127.0.0.1:1", Game: "g", Players: 10000,
		Tags: []sim.TagSpread{mustSpread(t, "region=eu:60,na:40"), mustSpread(t, "level=1..60")}})
	require.NoError(t, err)
	eu := 0
	for _, a := range s.Attributes() {
		if a.Tags["region"] == "eu" {
			eu++
		}
		level, err := strconv.Atoi(a.Tags["level"])
		require.NoError(t, err)
		require.True(t, level >= 1 && level <= 60)
	}
	require.InDelta(t, 6000, eu, 300)
}
