package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/internal/sim"
)

// noticeToEveryone creates a notice to everyone in g1 and returns the
// campaign's id and its dispatch's (the envelope id clients acknowledge).
func (h *herald) noticeToEveryone() (campaign, dispatch string) {
	h.t.Helper()
	c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "notice", "name": "to all", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
		"content": map[string]any{"title": map[string]any{"en": "Hello"}, "body": map[string]any{"en": "Everyone"}},
	})
	ds := c["dispatches"].([]any)
	require.Len(h.t, ds, 1)
	return c["id"].(string), ds[0].(map[string]any)["id"].(string)
}

// players returns the campaign's stats' distinct players per event.
func (h *herald) players(campaign string) map[string]int {
	h.t.Helper()
	st := h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+campaign+"/stats", nil)
	out := map[string]int{}
	for e, n := range st["players"].(map[string]any) {
		out[e] = int(n.(float64))
	}
	return out
}

type receiptMsg struct {
	topic   string
	payload []byte
}

// receiptsFor is one receipt per player and event, players {player}1 to
// {player}{n}.
func receiptsFor(prefix, dispatch, player string, n int, events ...string) []receiptMsg {
	out := make([]receiptMsg, 0, n*len(events))
	t := time.Now().UnixMilli()
	for i := 1; i <= n; i++ {
		for _, e := range events {
			out = append(out, receiptMsg{
				topic:   fmt.Sprintf("%s/g1/receipts/%s%d", prefix, player, i),
				payload: fmt.Appendf(nil, `{"id":%q,"e":%q,"t":%d}`, dispatch, e, t),
			})
		}
	}
	return out
}

// publishReceipts publishes msgs with QoS 1 as fast as conns connections go,
// each keeping up to 1,000 publishes in flight, and returns once the broker
// acknowledged every one.
func publishReceipts(t testing.TB, broker string, msgs []receiptMsg, conns int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := range conns {
		client := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetCleanSession(true).
			SetAutoReconnect(false).SetClientID(fmt.Sprintf("burst-%d-%s", c, randomPrefix())))
		tok := client.Connect()
		require.True(t, tok.WaitTimeout(patience) && tok.Error() == nil, "connect: %v", tok.Error())
		wg.Go(func() {
			defer client.Disconnect(100)
			window := make(chan mqtt.Token, 1000)
			wait := func(tok mqtt.Token) bool {
				if !tok.WaitTimeout(patience) || tok.Error() != nil {
					errs <- fmt.Errorf("publish: %v", tok.Error())
					return false
				}
				return true
			}
			for i := c; i < len(msgs); i += conns {
				if len(window) == cap(window) && !wait(<-window) {
					return
				}
				window <- client.Publish(msgs[i].topic, 1, false, msgs[i].payload)
			}
			close(window)
			for tok := range window {
				if !wait(tok) {
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// A notice to 2,000 simulated players (the Go SDK's sessions, 50 to a
// connection) yields exactly 2,000 delivered players; displayed and clicked
// are what the simulator reported at its rates; receipts sent again count once.
func TestReceiptsFromSimulatedPlayers(t *testing.T) {
	t.Parallel()
	const players, displayRate, clickRate = 2000, 0.5, 0.2
	b := brokertest.Start(t)
	h := startHeraldWith(t, map[string]string{
		"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": b.URL, "HERALD_TOPIC_PREFIX": randomPrefix(),
	})
	h.createGame()
	h.descriptorOf("g1") // published: the SDK reads it to know its subscriptions

	region, err := sim.ParseTagSpread("region=eu,na")
	require.NoError(t, err)
	s, err := sim.New(sim.Config{
		Broker: b.URL, Game: "g1", Prefix: h.prefix, Players: players, PlayersPerConn: 50,
		Tags: []sim.TagSpread{region}, DisplayRate: displayRate, ClickRate: clickRate, Seed: 3,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	simDone := make(chan struct{})
	go func() {
		defer close(simDone)
		_, err := s.Run(ctx)
		assert.NoError(t, err)
	}()
	defer func() { cancel(); <-simDone }()
	waitProgress(t, "every player connected", patience, func() bool { return s.Snapshot().Connected == players },
		func() int { return int(s.Snapshot().Connected) })

	campaign, dispatch := h.noticeToEveryone()
	var got map[string]int
	waitProgress(t, "every receipt the simulator sent stored", patience, func() bool {
		got = h.players(campaign)
		sum := s.Snapshot()
		return got["delivered"] == players && int64(got["displayed"]) == sum.Displayed && int64(got["clicked"]) == sum.Clicked &&
			sum.Receipts == players+sum.Displayed+sum.Clicked
	}, func() int { return got["delivered"] + got["displayed"] + got["clicked"] })
	require.Equal(t, players, got["delivered"])
	// The simulator draws each display and click: five standard deviations
	// of the binomial around its rates.
	within := func(n, of int, rate float64) bool {
		return math.Abs(float64(n)-rate*float64(of)) <= 5*math.Sqrt(float64(of)*rate*(1-rate))
	}
	assert.True(t, within(got["displayed"], players, displayRate), "displayed %d of %d at rate %v", got["displayed"], players, displayRate)
	assert.True(t, within(got["clicked"], got["displayed"], clickRate), "clicked %d of %d displayed at rate %v", got["clicked"], got["displayed"], clickRate)
	assert.Zero(t, got["dismissed"])
	st := h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+campaign+"/dispatches/"+dispatch+"/stats", nil)
	assert.InDelta(t, float64(got["displayed"])/players, st["funnel"].(map[string]any)["displayed_per_delivered"], 0.0001)
	assert.EqualValues(t, players, st["latency"].(map[string]any)["receipts"])

	// Clients that send their receipts again (after a reconnect) change nothing.
	before := h.metric("herald_receipts_duplicates_total")
	publishReceipts(t, b.URL, receiptsFor(h.prefix, dispatch, "sim-", 100, "delivered"), 1)
	waitFor(t, "the duplicates counted", patience, func() bool { return h.metric("herald_receipts_duplicates_total") == before+100 })
	assert.Equal(t, got, h.players(campaign))
}

// Under the README's broker ACL a player can only publish receipts to its own
// receipts topic: p1's receipts on p2's topic never reach Herald, so nothing
// is stored for p2, while p1's own receipt, sent after them, is.
func TestReceiptsForgedForAnotherPlayerAreNeverStored(t *testing.T) {
	t.Parallel()
	b := brokertest.StartWith(t, brokertest.Options{Listener: brokertest.Security{
		PasswordFile: brokertest.WritePasswordFile(t, map[string]string{"herald": "herald-secret", "p1": "p1-secret", "p2": "p2-secret"}),
		ACLFile:      brokertest.WriteFile(t, "herald.acl", brokertest.HeraldACL),
	}})
	dbURL := dbtest.New(t)
	h := startHeraldWith(t, map[string]string{
		"HERALD_DATABASE_URL": dbURL, "HERALD_MQTT_URL": b.URL, "HERALD_TOPIC_PREFIX": "herald",
		"HERALD_MQTT_USERNAME": "herald", "HERALD_MQTT_PASSWORD": "herald-secret",
	})
	h.createGame()
	campaign, dispatch := h.noticeToEveryone()
	waitFor(t, "the receipts subscription", patience, func() bool { return h.metric("herald_receipts_subscribed") == 1 })

	p1 := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL).SetUsername("p1").SetPassword("p1-secret").
		SetClientID("p1-" + randomPrefix()).SetCleanSession(true))
	tok := p1.Connect()
	require.True(t, tok.WaitTimeout(patience) && tok.Error() == nil, "connect: %v", tok.Error())
	defer p1.Disconnect(100)
	for _, m := range []struct{ topic, event string }{
		{"herald/g1/receipts/p2", "delivered"}, // forged
		{"herald/g1/receipts/p2", "clicked"},   // forged
		{"herald/g1/receipts/p1", "delivered"}, // p1's own, after them
	} {
		tok := p1.Publish(m.topic, 1, false, fmt.Sprintf(`{"id":%q,"e":%q,"t":%d}`, dispatch, m.event, time.Now().UnixMilli()))
		require.True(t, tok.WaitTimeout(patience) && tok.Error() == nil, "Mosquitto acknowledges a denied publish too")
	}
	waitFor(t, "p1's receipt stored", patience, func() bool { return h.players(campaign)["delivered"] == 1 })
	assert.Equal(t, map[string]int{"delivered": 1, "displayed": 0, "clicked": 0, "dismissed": 0}, h.players(campaign))
	assert.EqualValues(t, 1, h.metric("herald_receipts_received_total"), "the broker handed Herald p1's own receipt only")

	conn, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var who []string
	rows, _ := conn.Query(context.Background(), `SELECT player_id FROM receipts`)
	who, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{"p1"}, who)
}

// A burst of 200,000 receipts, published as fast as four connections go, is
// stored completely: Herald's buffer pushes back on the broker instead of
// dropping.
func TestReceiptsBurstIsIngestedCompletely(t *testing.T) {
	t.Parallel()
	const players = 50_000 // times four events
	b := brokertest.Start(t)
	h := startHeraldWith(t, map[string]string{
		"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": b.URL, "HERALD_TOPIC_PREFIX": randomPrefix(),
	})
	h.createGame()
	campaign, dispatch := h.noticeToEveryone()
	waitFor(t, "the receipts subscription", patience, func() bool { return h.metric("herald_receipts_subscribed") == 1 })
	burst := receiptsFor(h.prefix, dispatch, "p", players, "delivered", "displayed", "clicked", "dismissed")
	start := time.Now()
	publishReceipts(t, b.URL, burst, 4)
	published := time.Since(start)
	stored := func() int { return int(h.metric("herald_receipts_stored_total")) }
	waitProgress(t, "200,000 receipts stored", patience, func() bool { return stored() == len(burst) }, stored)
	t.Logf("200,000 receipts published in %s, stored in %s", published.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	assert.Equal(t, map[string]int{"delivered": players, "displayed": players, "clicked": players, "dismissed": players}, h.players(campaign))
	assert.EqualValues(t, len(burst), h.metric("herald_receipts_received_total"))
	assert.Zero(t, h.metric("herald_receipts_duplicates_total"))
}

// A rolling restart loses no receipt: of two replicas sharing the receipts
// subscription, one stops (as on SIGTERM) in the middle of a burst; it hands
// over what the broker had routed to it and writes it before it exits, the
// other takes the rest.
func TestReceiptsRollingRestartLosesNothing(t *testing.T) {
	t.Parallel()
	const players = 5_000 // times four events
	b := brokertest.Start(t)
	vars := map[string]string{"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": b.URL, "HERALD_TOPIC_PREFIX": randomPrefix()}
	a := startHeraldWith(t, vars)
	other := startHeraldWith(t, vars)
	a.createGame()
	campaign, dispatch := a.noticeToEveryone()
	for _, h := range []*herald{a, other} {
		waitFor(t, "the receipts subscriptions", patience, func() bool { return h.metric("herald_receipts_subscribed") == 1 })
	}
	burst := receiptsFor(a.prefix, dispatch, "p", players, "delivered", "displayed", "clicked", "dismissed")
	published := make(chan struct{})
	go func() {
		defer close(published)
		publishReceipts(t, b.URL, burst, 2)
	}()
	stored := func() int {
		return int(a.metric("herald_receipts_stored_total") + other.metric("herald_receipts_stored_total"))
	}
	waitProgress(t, "a part of the burst stored", patience, func() bool { return stored() >= 2_000 }, stored)
	atStop, byIt := stored(), a.metric("herald_receipts_stored_total")
	a.stop()
	t.Logf("stopped one replica with %d of %d receipts stored (%v by it)", atStop, len(burst), byIt)
	<-published
	total := func() int {
		n := 0
		for _, c := range other.players(campaign) {
			n += c
		}
		return n
	}
	waitProgress(t, "every receipt stored", patience, func() bool { return total() == len(burst) }, total)
	assert.Equal(t, map[string]int{"delivered": players, "displayed": players, "clicked": players, "dismissed": players}, other.players(campaign))
}

// What a stop and a crash cost, with Postgres made to take no receipts (the
// table locked) so that Herald holds what it received, HERALD_RECEIPT_BUFFER
// of 500: it reads 500 receipts (a first batch waiting on the lock, the rest
// in the buffer) and acknowledges them to the broker. On SIGTERM it writes
// them all before it exits. On SIGKILL those it held are lost (it can hold at
// most the buffer plus two batches, 1,500 here); so are receipts published while
// no replica is subscribed, which the broker drops.
func TestReceiptsOnSIGTERMAndSIGKILL(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	bin := buildHerald(t)
	dbURL := dbtest.New(t)
	vars := map[string]string{"HERALD_DATABASE_URL": dbURL, "HERALD_MQTT_URL": b.URL, "HERALD_TOPIC_PREFIX": randomPrefix(),
		"HERALD_RECEIPT_BUFFER": "500"}
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer db.Close(ctx)
	count := func(players string) int {
		var n int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM receipts WHERE player_id LIKE $1`, players+"%").Scan(&n))
		return n
	}
	// start starts a herald process and returns it once it takes receipts.
	start := func() (*herald, *exec.Cmd) {
		base, cmd := startHeraldProcess(t, bin, vars)
		h := &herald{t: t, base: base, prefix: vars["HERALD_TOPIC_PREFIX"], broker: b.URL, key: adminKey(t, dbURL)}
		waitFor(t, "the receipts subscription", patience, func() bool { return h.metric("herald_receipts_subscribed") == 1 })
		return h, cmd
	}
	// holdReceipts locks the receipts table, publishes 500 receipts of
	// players {players}1... and waits until Herald holds them all: however
	// small the writers' first batches, they fit with the buffer.
	holdReceipts := func(h *herald, dispatch, players string) pgx.Tx {
		lock, err := db.Begin(ctx)
		require.NoError(t, err)
		_, err = lock.Exec(ctx, `LOCK TABLE receipts IN EXCLUSIVE MODE`)
		require.NoError(t, err)
		publishReceipts(t, b.URL, receiptsFor(h.prefix, dispatch, players, 500, "delivered"), 1)
		waitFor(t, "500 receipts held", patience, func() bool {
			return h.metric("herald_receipts_received_total") == 500 && h.metric("herald_receipts_buffered") == 500
		})
		return lock
	}

	h, first := start()
	h.createGame()
	_, dispatch := h.noticeToEveryone()
	// The day's partition exists before the table is locked (the scheduler
	// leader makes it at start).
	waitFor(t, "the receipts partitions", patience, func() bool {
		var n int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'receipts'::regclass`).Scan(&n))
		return n > 0
	})

	// SIGTERM: the HTTP server stops first (then /healthz no longer answers),
	// then ingestion, which waits for the lock to go and writes everything.
	lock := holdReceipts(h, dispatch, "term")
	require.NoError(t, first.Process.Signal(syscall.SIGTERM))
	waitFor(t, "the shutdown to begin", patience, func() bool {
		resp, err := http.Get(h.base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	})
	require.NoError(t, lock.Rollback(ctx))
	require.NoError(t, first.Wait(), "a clean exit")
	assert.Equal(t, 500, count("term"), "SIGTERM lost nothing Herald had received")

	// SIGKILL: what Herald held is gone.
	h, second := start()
	lock = holdReceipts(h, dispatch, "kill")
	require.NoError(t, second.Process.Signal(syscall.SIGKILL))
	_ = second.Wait()
	require.NoError(t, lock.Rollback(ctx))
	publishReceipts(t, b.URL, receiptsFor(h.prefix, dispatch, "nobody", 5, "delivered"), 1) // no replica subscribed

	h, _ = start()
	publishReceipts(t, b.URL, receiptsFor(h.prefix, dispatch, "after", 1, "delivered"), 1)
	waitFor(t, "a receipt after the restart stored", patience, func() bool { return count("after") == 1 })
	assert.Equal(t, 0, count("kill"), "SIGKILL lost the 500 receipts held")
	assert.Equal(t, 0, count("nobody"), "the broker dropped what came while no replica was subscribed")
	assert.Equal(t, 500, count("term"))
}
