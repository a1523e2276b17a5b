package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	sdk "github.com/heraldpush/herald/client"
	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/internal/sim"
	"github.com/heraldpush/herald/protocol"
)

// The player side of issue 9 end to end: a real Herald, a private broker, and
// players that read the game's descriptor, subscribe, filter, de-duplicate,
// acknowledge and remove as docs/protocol.md says. The same scenario runs with
// the simulator's players (the Go SDK's per-player logic) and with the
// TypeScript client over WebSocket (players_js_e2e_test.go):
//
//   - a campaign whose plan needs a residual filter (region eu at levels 25-39:
//     the plan preview says it is not exact) reaches exactly the players the
//     rule matches: they count it and send a delivered receipt; the others on
//     its topics count it as filtered and send nothing;
//   - a campaign to server s2 or that same audience reaches the players in both
//     on two topics (one filtered) and is shown once;
//   - a campaign to region na expires while the players are connected;
//   - players connecting after the sends get what is still live (retained);
//   - the cancel of the first removes it at every player that held it, and the
//     expiry of the third at every player that held that.
//
// Each player's expected counts are computed from its attributes, the game's
// descriptor and the targets of Herald's plan preview; that the players
// reached are exactly those the audience rule matches is checked too.

// playerGame is the scenario's game: three regions, six level bands.
var playerGame = map[string]any{
	"id": "g1", "name": "Players", "default_locale": "en",
	"tags": map[string]any{
		"region": map[string]any{"values": []string{"eu", "na", "asia"}},
		"level":  map[string]any{"bands": [][2]int{{1, 9}, {10, 19}, {20, 29}, {30, 39}, {40, 49}, {50, 60}}},
	},
}

// playerServers are the scenario's game servers.
var playerServers = []string{"s1", "s2", "s3", "s4"}

// scenarioCampaign is one campaign of the scenario and the plan Herald
// previewed for its audience.
type scenarioCampaign struct {
	ID, Dispatch string
	Kind         protocol.Kind
	Rule         protocol.Rule
	Targets      []planTarget
	ExpiresAt    time.Time
}

type planTarget struct {
	Topic  string         `json:"topic"`
	Filter *protocol.Rule `json:"filter"`
}

// playerScenario is Herald, the game and the campaigns, with what each player
// should have seen of them.
type playerScenario struct {
	t        *testing.T
	h        *herald
	desc     protocol.Descriptor
	receipts *client // a plain subscriber to the game's receipts

	filtered, twoTopics, expiring scenarioCampaign
	canceled                      bool
}

// newPlayerScenario starts Herald on broker, creates the game and waits for
// its descriptor, and listens to the game's receipts.
func newPlayerScenario(t *testing.T, broker *brokertest.Broker) *playerScenario {
	t.Helper()
	h := startHeraldWith(t, map[string]string{
		"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": broker.URL, "HERALD_TOPIC_PREFIX": randomPrefix(),
	})
	h.call(http.StatusCreated, "POST", "/v1/games", playerGame)
	raw, err := json.Marshal(h.descriptorOf("g1"))
	require.NoError(t, err)
	desc, err := protocol.DecodeDescriptor(raw)
	require.NoError(t, err)
	return &playerScenario{t: t, h: h, desc: desc, receipts: subscribe(t, broker.URL, h.prefix+"/g1/receipts/+")}
}

// send creates the three campaigns: the one that expires first, since it
// expires 20 s after it is sent, while everything else is checked.
func (sc *playerScenario) send() {
	sc.t.Helper()
	eu2539 := `{"and":[{"tag":"region","in":["eu"]},{"tag":"level","between":[25,39]}]}`
	sc.expiring = sc.create(protocol.KindAd, `{"tag":"region","in":["na"]}`, map[string]any{
		"image_url": "https://cdn.example.com/na.png", "placement": "center", "display_s": 5,
	}, time.Now().Add(20*time.Second))
	sc.filtered = sc.create(protocol.KindNotice, eu2539, map[string]any{
		"title": map[string]any{"en": "For eu, levels 25-39"}, "body": map[string]any{"en": "b"},
	}, time.Now().Add(time.Hour))
	sc.twoTopics = sc.create(protocol.KindMarquee, `{"or":[{"server":["s2"]},`+eu2539+`]}`, map[string]any{
		"text": map[string]any{"en": "s2, or eu at levels 25-39"},
	}, time.Now().Add(time.Hour))
	require.False(sc.t, sc.filtered.exact(), "the plan needs a residual filter: %+v", sc.filtered.Targets)
	require.Greater(sc.t, len(sc.twoTopics.Targets), 1, "the plan has several topics")
}

// create previews the plan of rule, then creates a campaign of kind to it and
// waits for its dispatch.
func (sc *playerScenario) create(kind protocol.Kind, rule string, content map[string]any, expiresAt time.Time) scenarioCampaign {
	sc.t.Helper()
	c := scenarioCampaign{Kind: kind, ExpiresAt: expiresAt}
	require.NoError(sc.t, json.Unmarshal([]byte(rule), &c.Rule))
	plan := sc.h.call(http.StatusOK, "POST", "/v1/games/g1/plan", `{"rule":`+rule+`}`)
	raw, err := json.Marshal(plan["targets"])
	require.NoError(sc.t, err)
	require.NoError(sc.t, json.Unmarshal(raw, &c.Targets))
	created := sc.h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": kind, "name": string(kind) + " " + rule, "audience": map[string]any{"rule": json.RawMessage(rule)},
		"content": content, "expires_at": expiresAt,
	})
	c.ID = created["id"].(string)
	waitFor(sc.t, "the dispatch of "+c.ID, patience, func() bool { return sc.h.dispatch(c.ID)["id"] != nil })
	c.Dispatch = sc.h.dispatch(c.ID)["id"].(string)
	return c
}

// exact reports whether no target of the plan carries a filter.
func (c scenarioCampaign) exact() bool {
	for _, t := range c.Targets {
		if t.Filter != nil {
			return false
		}
	}
	return true
}

// copies counts the copies of c that reach a player with attributes a (on
// the topics it subscribes to, from the descriptor): those whose filter it
// passes, and those it filters out.
func (sc *playerScenario) copies(c scenarioCampaign, a protocol.Attributes) (passing, filtered int) {
	subs := map[string]bool{}
	for _, s := range protocol.Subscriptions(sc.desc, a) {
		subs[strings.TrimSuffix(s, "/#")] = true
	}
	for _, t := range c.Targets {
		switch {
		case !subs[t.Topic]:
		case t.Filter == nil || t.Filter.Matches(a):
			passing++
		default:
			filtered++
		}
	}
	return passing, filtered
}

// campaigns returns the scenario's campaigns, sent.
func (sc *playerScenario) campaigns() []scenarioCampaign {
	return []scenarioCampaign{sc.filtered, sc.twoTopics, sc.expiring}
}

// playerView is what one player counted, whichever client it is.
type playerView struct {
	Received             map[protocol.Kind]int64
	Filtered, Duplicates int64
	Removed              map[string]bool // campaigns removed (recalled or expired)
	Other                int64           // messages expired on arrival, invalid or ignored: never in this scenario
}

// expected is what a player with attributes a should have counted at now: each
// campaign that reaches it once per kind, every copy it filters, every extra
// copy that passes, and the removals of the canceled and the expired campaign
// it held.
func (sc *playerScenario) expected(a protocol.Attributes, now time.Time) playerView {
	v := playerView{Received: map[protocol.Kind]int64{}, Removed: map[string]bool{}}
	for _, c := range sc.campaigns() {
		passing, filtered := sc.copies(c, a)
		v.Filtered += int64(filtered)
		if passing == 0 {
			continue
		}
		v.Received[c.Kind]++
		v.Duplicates += int64(passing - 1)
		if (c.ID == sc.filtered.ID && sc.canceled) || (c.ID == sc.expiring.ID && !now.Before(c.ExpiresAt)) {
			v.Removed[c.ID] = true
		}
	}
	return v
}

// mismatch describes how got differs from what a player with attributes a
// should have counted, or returns "".
func (sc *playerScenario) mismatch(a protocol.Attributes, got playerView) string {
	want := sc.expected(a, time.Now())
	for _, k := range []protocol.Kind{protocol.KindMarquee, protocol.KindNotice, protocol.KindAd} {
		if got.Received[k] != want.Received[k] {
			return fmt.Sprintf("%s: %d %s received, want %d", a.Player, got.Received[k], k, want.Received[k])
		}
	}
	switch {
	case got.Filtered != want.Filtered:
		return fmt.Sprintf("%s: %d filtered, want %d", a.Player, got.Filtered, want.Filtered)
	case got.Duplicates != want.Duplicates:
		return fmt.Sprintf("%s: %d duplicates, want %d", a.Player, got.Duplicates, want.Duplicates)
	case got.Other != 0:
		return fmt.Sprintf("%s: %d messages expired on arrival, invalid or ignored", a.Player, got.Other)
	case len(got.Removed) != len(want.Removed):
		return fmt.Sprintf("%s: removed %v, want %v", a.Player, got.Removed, want.Removed)
	}
	for c := range want.Removed {
		if !got.Removed[c] {
			return fmt.Sprintf("%s: removed %v, want %v", a.Player, got.Removed, want.Removed)
		}
	}
	return ""
}

// awaitPlayers waits until every player in attrs has counted what it should,
// as view tells.
func (sc *playerScenario) awaitPlayers(what string, attrs []protocol.Attributes, view func() map[string]playerView) {
	sc.t.Helper()
	var last string
	progress := func() int {
		n := len(sc.receipts.messages())
		for _, v := range view() {
			n += int(v.Filtered+v.Duplicates) + len(v.Removed)
			for _, r := range v.Received {
				n += int(r)
			}
		}
		return n
	}
	defer func() {
		if sc.t.Failed() {
			sc.t.Logf("last mismatch: %s", last)
		}
	}()
	waitProgress(sc.t, what, patience, func() bool {
		views := view()
		for _, a := range attrs {
			got, ok := views[a.Player]
			if !ok {
				last = a.Player + " not connected"
				return false
			}
			if last = sc.mismatch(a, got); last != "" {
				return false
			}
		}
		return true
	}, progress)
}

// delivered returns the players who sent a delivered receipt for each
// dispatch, and fails on any other receipt.
func (sc *playerScenario) delivered() map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, m := range sc.receipts.messages() {
		var r struct{ ID, E string }
		require.NoError(sc.t, json.Unmarshal(m.Payload, &r), "%s", m.Payload)
		require.Equal(sc.t, protocol.EventDelivered, r.E, "the players report nothing displayed")
		player := m.Topic[strings.LastIndexByte(m.Topic, '/')+1:]
		if out[r.ID] == nil {
			out[r.ID] = map[string]int{}
		}
		out[r.ID][player]++
	}
	return out
}

// awaitReceipts waits until as many delivered receipts arrived as the players
// in attrs should send.
func (sc *playerScenario) awaitReceipts(attrs []protocol.Attributes) {
	sc.t.Helper()
	want := 0
	for _, c := range sc.campaigns() {
		for _, a := range attrs {
			if p, _ := sc.copies(c, a); p > 0 {
				want++
			}
		}
	}
	waitProgress(sc.t, "every delivered receipt", patience, func() bool {
		n := 0
		for _, players := range sc.delivered() {
			n += len(players)
		}
		return n >= want
	}, func() int { return len(sc.receipts.messages()) })
}

// requireReceipts checks that the delivered receipts of each campaign came
// from exactly the players in attrs its audience rule matches, and from each
// once; and that the scenario reached every case it is about.
func (sc *playerScenario) requireReceipts(attrs []protocol.Attributes) {
	sc.t.Helper()
	got := sc.delivered()
	cases := map[string]int{}
	for _, c := range sc.campaigns() {
		want := map[string]int{}
		for _, a := range attrs {
			passing, filtered := sc.copies(c, a)
			require.Equal(sc.t, c.Rule.Matches(a), passing > 0,
				"%s: Herald's plan reaches exactly the players the rule matches (%s)", a.Player, c.Rule)
			if passing > 0 {
				want[a.Player] = 1
			}
			if c.ID == sc.filtered.ID && filtered > 0 {
				cases["filtered out"]++
			}
			if passing > 1 {
				cases["two topics"]++
			}
		}
		require.Equal(sc.t, want, got[c.Dispatch], "the delivered receipts of %s %s", c.Kind, c.ID)
		cases["reached by "+string(c.Kind)] = len(want)
	}
	sc.t.Logf("players by case: %v", cases)
	for _, what := range []string{"filtered out", "two topics", "reached by notice", "reached by marquee", "reached by ad"} {
		require.NotZero(sc.t, cases[what], "no player of the scenario is %s", what)
	}
}

// cancel cancels the filtered campaign.
func (sc *playerScenario) cancel() {
	sc.t.Helper()
	sc.h.call(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+sc.filtered.ID+"/cancel", nil)
	sc.canceled = true
}

// simView turns the simulator's per-player counters into views.
func (sc *playerScenario) simView(sims ...*sim.Sim) func() map[string]playerView {
	return func() map[string]playerView {
		out := map[string]playerView{}
		for _, s := range sims {
			attrs := map[string]protocol.Attributes{}
			for _, a := range s.Attributes() {
				attrs[a.Player] = a
			}
			for player, st := range s.PlayerStats() {
				out[player] = sc.fromStats(attrs[player], st)
			}
		}
		return out
	}
}

// fromStats reads a simulated player's counters. They count removals, not
// which campaign was removed; but the canceled campaign (region eu) and the
// expiring one (region na) reach different players, so the count tells which.
func (sc *playerScenario) fromStats(a protocol.Attributes, st sdk.Stats) playerView {
	v := playerView{Received: st.Received, Filtered: st.Filtered, Duplicates: st.Duplicates,
		Removed: map[string]bool{}, Other: st.Expired + st.Invalid + st.Ignored}
	n := st.Removals
	for _, c := range []scenarioCampaign{sc.filtered, sc.expiring} {
		if passing, _ := sc.copies(c, a); passing > 0 && n > 0 {
			v.Removed[c.ID] = true
			n--
		}
	}
	if n > 0 {
		v.Removed["more removals than campaigns held"] = true
	}
	return v
}

// TestPlayersEndToEnd runs the scenario with the simulator's players and with
// the TypeScript client's.
func TestPlayersEndToEnd(t *testing.T) {
	t.Parallel()
	t.Run("simulated players", testSimulatedPlayers)
	t.Run("TypeScript client over WebSocket", testTypeScriptPlayers)
}

// testSimulatedPlayers runs the scenario with 2,000 simulated players over 20
// shared connections (100 players each, with a session of their own: what the
// simulator does for load tests, and fast to connect), then 40 more, each
// with a connection of its own (client.Client), after the sends.
func testSimulatedPlayers(t *testing.T) {
	t.Parallel()
	broker := brokertest.Start(t)
	sc := newPlayerScenario(t, broker)
	spread := func(s string) sim.TagSpread {
		ts, err := sim.ParseTagSpread(s)
		require.NoError(t, err)
		return ts
	}
	online := runSim(t, sim.Config{
		Broker: broker.URL, Game: "g1", Prefix: sc.h.prefix, Players: 2000, PlayersPerConn: 100,
		Servers: playerServers, Tags: []sim.TagSpread{spread("region=eu:50,na:30,asia:20"), spread("level=1..60")}, Seed: 9,
	})
	waitFor(t, "2,000 players connected", patience, func() bool { return online.Snapshot().Connected == 2000 })

	sc.send()
	sc.awaitPlayers("every player to count the sends", online.Attributes(), sc.simView(online))

	// Players who connect after the sends get them retained. They are all of
	// region eu, so that the campaign to na, which may expire meanwhile on a
	// slow machine, is none of their business.
	late := runSim(t, sim.Config{
		Broker: broker.URL, Game: "g1", Prefix: sc.h.prefix, Players: 40, PlayersPerConn: 1, PlayerPrefix: "late-",
		Servers: playerServers, Tags: []sim.TagSpread{spread("region=eu"), spread("level=20..40")}, Seed: 10,
	})
	all := append(append([]protocol.Attributes{}, online.Attributes()...), late.Attributes()...)
	sc.awaitPlayers("the players who came late to count the sends", late.Attributes(), sc.simView(late))
	sc.awaitReceipts(all)
	sc.requireReceipts(all)

	sc.cancel()
	sc.awaitPlayers("the cancel to remove it everywhere", all, sc.simView(online, late))
	sleepUntil(sc.expiring.ExpiresAt)
	sc.awaitPlayers("the expiry to remove it everywhere", all, sc.simView(online, late))
	sc.requireReceipts(all)
	sum := online.Snapshot()
	t.Logf("2,000 players over %d connections: %d connected/s, delivery latency p50 %s, p99 %s",
		sum.Connections, int(sum.ConnectRate), sum.LatencyP50, sum.LatencyP99)
}

// runSim runs a simulation until the test ends.
func runSim(t *testing.T, cfg sim.Config) *sim.Sim {
	t.Helper()
	s, err := sim.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := s.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("simulation: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return s
}
