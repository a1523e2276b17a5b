package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	sdk "github.com/heraldpush/herald/client"
	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
)

// player is a game client on the Go SDK that records the kick-outs it gets.
type player struct {
	c     *sdk.Client
	mu    sync.Mutex
	kicks []sdk.Kickout
}

// connectPlayer connects the SDK as player id of g1 to h's broker until the
// test ends. The SDK sends the delivered receipt of a kick-out by itself.
func (h *herald) connectPlayer(id string) *player {
	h.t.Helper()
	return h.connectPlayerOn(id, "")
}

// connectPlayerOn is connectPlayer for a player on a game server.
func (h *herald) connectPlayerOn(id, server string) *player {
	h.t.Helper()
	p := &player{}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	c, err := sdk.Connect(ctx, sdk.Options{Broker: h.broker, Game: "g1", Player: id, Server: server, Prefix: h.prefix,
		Log: slog.New(slog.DiscardHandler), OnKickout: func(k sdk.Kickout) {
			p.mu.Lock()
			p.kicks = append(p.kicks, k)
			p.mu.Unlock()
		}})
	require.NoError(h.t, err)
	h.t.Cleanup(c.Close)
	p.c = c
	return p
}

func (p *player) kickouts() []sdk.Kickout {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]sdk.Kickout(nil), p.kicks...)
}

// kick posts a kick-out of g1 (query: "" or "?wait=..."), requiring want.
func (h *herald) kick(want int, query string, body map[string]any) map[string]any {
	h.t.Helper()
	return h.call(want, "POST", "/v1/games/g1/kickouts"+query, body)
}

// playerStatuses maps each player of a kick-out status to its status.
func playerStatuses(st map[string]any) map[string]string {
	out := map[string]string{}
	for _, p := range st["players"].([]any) {
		p := p.(map[string]any)
		out[p["player"].(string)] = p["status"].(string)
	}
	return out
}

func TestKickoutIsPublishedAtOnceNotRetainedAndAudited(t *testing.T) {
	t.Parallel()
	h := startHeraldInProcess(t, brokertest.Start(t).URL)
	h.createGame()
	online := subscribe(t, h.broker, h.prefix+"/g1/player/p1/#", h.prefix+"/g1/server/s1/#")

	st := h.kick(http.StatusCreated, "", map[string]any{
		"players": []string{"p1", "p2", "p1"}, "reason": "login_elsewhere",
		"message": map[string]any{"en": "You logged in on another device"}, "reconnect_after_s": 30,
	})
	id := st["id"].(string)
	require.Equal(t, "published", st["state"])
	require.Equal(t, map[string]string{"p1": "published", "p2": "published"}, playerStatuses(st), "a player named twice is kicked once")
	require.Equal(t, 60.0, st["ttl_s"], "the ttl is 60 s by default")
	require.Equal(t, map[string]any{"targeted": 2.0, "pending": 0.0, "published": 2.0, "delivered": 0.0, "not_delivered": 0.0}, st["counts"])

	waitFor(t, "the kick-out online", patience, func() bool { return len(online.messages()) == 1 })
	got := online.messages()[0]
	require.Equal(t, h.prefix+"/g1/player/p1/kickout/"+id, got.Topic)
	require.False(t, got.Retained)
	var env map[string]any
	require.NoError(t, json.Unmarshal(got.Payload, &env))
	require.Equal(t, id, env["id"])
	require.Equal(t, id, env["campaign"])
	require.Equal(t, "kickout", env["kind"])
	require.Equal(t, map[string]any{"reason": "login_elsewhere", "message": map[string]any{"en": "You logged in on another device"},
		"reconnect_after_s": 30.0}, env["content"])
	sent, err := time.Parse(time.RFC3339, env["sent_at"].(string))
	require.NoError(t, err)
	expires, err := time.Parse(time.RFC3339, env["expires_at"].(string))
	require.NoError(t, err)
	require.Equal(t, time.Minute, expires.Sub(sent), "the envelope expires at the ttl")

	require.Empty(t, h.onlyRetained(h.prefix+"/g1/player/#"), "a kick-out is never retained: a later login gets nothing")

	again := h.call(http.StatusOK, "GET", "/v1/games/g1/kickouts/"+id, nil)
	require.Equal(t, st["id"], again["id"])
	require.Equal(t, map[string]string{"p1": "published", "p2": "published"}, playerStatuses(again))

	srv := h.kick(http.StatusCreated, "", map[string]any{"server": "s1", "reason": "server_shutdown", "ttl_s": 120})
	waitFor(t, "the server kick-out", patience, func() bool { return len(online.messages()) == 2 })
	require.Equal(t, h.prefix+"/g1/server/s1/kickout/"+srv["id"].(string), online.messages()[1].Topic)
	require.Equal(t, "s1", srv["server"])
	require.Equal(t, []any{}, srv["players"], "no player confirmed yet")
	require.NotContains(t, srv["counts"], "targeted", "Herald does not know a server's players")

	audit := h.call(http.StatusOK, "GET", "/v1/audit?game=g1", nil)["items"].([]any)
	var actions []string
	for _, a := range audit {
		a := a.(map[string]any)
		if a["action"] == "kickout.create" {
			actions = append(actions, a["object_id"].(string))
		}
	}
	require.Equal(t, []string{id, srv["id"].(string)}, actions)
}

func TestKickoutOfAnOfflinePlayerIsNotDeliveredAfterItsTTL(t *testing.T) {
	t.Parallel()
	h := startHeraldInProcess(t, brokertest.Start(t).URL)
	h.createGame()

	// The request waits until the 2 s ttl passes: nobody can confirm it.
	st := h.kick(http.StatusCreated, "?wait=30s", map[string]any{"players": []string{"offline"}, "reason": "ban", "ttl_s": 2})
	require.Equal(t, "expired", st["state"])
	require.Equal(t, map[string]string{"offline": "not_delivered"}, playerStatuses(st))
	expires, err := time.Parse(time.RFC3339Nano, st["expires_at"].(string))
	require.NoError(t, err)
	require.False(t, time.Now().Before(expires), "answered once the ttl passed")

	// The player logs in later: nothing arrives.
	later := h.connectPlayer("offline")
	require.Empty(t, h.onlyRetained(h.prefix+"/g1/player/offline/#"))
	require.Empty(t, later.kickouts())
}

func TestKickoutRefusesInvalidRequests(t *testing.T) {
	t.Parallel()
	h := startHeraldInProcess(t, brokertest.Start(t).URL)
	h.createGame()
	many := make([]string, 10_001)
	for i := range many {
		many[i] = "p" + strings.Repeat("x", i%3)
	}
	for _, c := range []struct {
		query string
		body  map[string]any
		field string
	}{
		{"", map[string]any{"reason": "ban"}, "players"},
		{"", map[string]any{"players": []string{}, "reason": "ban"}, "players"},
		{"", map[string]any{"players": many, "reason": "ban"}, "players"},
		{"", map[string]any{"players": []string{"p1"}, "server": "s1", "reason": "ban"}, "server"},
		{"", map[string]any{"players": []string{"ok", "a/b"}, "reason": "ban"}, "players[1]"},
		{"", map[string]any{"players": []string{"p1"}}, "reason"},
		{"", map[string]any{"players": []string{"p1"}, "reason": "bored"}, "reason"},
		{"", map[string]any{"players": []string{"p1"}, "reason": "ban", "message": map[string]any{"fr": "Au revoir"}}, "message"},
		{"", map[string]any{"players": []string{"p1"}, "reason": "ban", "ttl_s": 601}, "ttl_s"},
		{"", map[string]any{"players": []string{"p1"}, "reason": "ban", "ttl_s": 0}, "ttl_s"},
		{"", map[string]any{"players": []string{"p1"}, "reason": "ban", "reconnect_after_s": -1}, "reconnect_after_s"},
		{"?wait=31s", map[string]any{"players": []string{"p1"}, "reason": "ban"}, "wait"},
		{"?wait=5", map[string]any{"players": []string{"p1"}, "reason": "ban"}, "wait"},
		{"?wait=-1s", map[string]any{"players": []string{"p1"}, "reason": "ban"}, "wait"},
	} {
		p := h.kick(http.StatusUnprocessableEntity, c.query, c.body)
		var fields []string
		for _, e := range p["errors"].([]any) {
			fields = append(fields, e.(map[string]any)["field"].(string))
		}
		require.Contains(t, fields, c.field, "%s %v: %v", c.query, c.body, p)
	}
	h.call(http.StatusNotFound, "POST", "/v1/games/nope/kickouts", map[string]any{"players": []string{"p1"}, "reason": "ban"})
	h.call(http.StatusNotFound, "GET", "/v1/games/g1/kickouts/0193a0c4-7f11-7c39-9a51-2f1d3b5e8a10", nil)
	h.call(http.StatusNotFound, "GET", "/v1/games/g1/kickouts/not-a-uuid", nil)
}

// TestKickoutRetriedWhileWaitingGetsTheFirstAnswer: a backend that times out
// and retries a waited kick-out with its Idempotency-Key kicks once, and the
// retry gets the first answer once that one is done.
func TestKickoutRetriedWhileWaitingGetsTheFirstAnswer(t *testing.T) {
	t.Parallel()
	h := startHeraldInProcess(t, brokertest.Start(t).URL)
	h.createGame()
	online := subscribe(t, h.broker, h.prefix+"/g1/player/#")
	body := `{"players":["offline"],"reason":"ban","ttl_s":3}`
	post := func() (*http.Response, []byte) {
		req, err := http.NewRequest("POST", h.base+"/v1/games/g1/kickouts?wait=30s", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+h.key)
		req.Header.Set("Idempotency-Key", "kick offline #1")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, raw
	}
	type result struct {
		resp *http.Response
		body []byte
	}
	first := make(chan result, 1)
	go func() {
		resp, raw := post()
		first <- result{resp, raw}
	}()
	// The first request waits for the ttl (nobody is online to confirm) once
	// it has published: then the retry comes.
	waitFor(t, "the first kick-out to be published", patience, func() bool { return len(online.messages()) == 1 })
	resp, raw := post()
	got := <-first
	require.Equal(t, http.StatusCreated, got.resp.StatusCode, "%s", got.body)
	require.Empty(t, got.resp.Header.Get("Idempotent-Replayed"))
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", raw)
	require.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))
	require.Equal(t, got.body, raw, "the first answer, after its wait")
	require.Equal(t, got.resp.Header.Get("Location"), resp.Header.Get("Location"))
	require.Len(t, online.messages(), 1, "kicked once")
	var st map[string]any
	require.NoError(t, json.Unmarshal(raw, &st))
	require.Equal(t, map[string]string{"offline": "not_delivered"}, playerStatuses(st))
}

// TestWaitedKickoutIsDeliveredOnlineAndNotDeliveredOffline: the Go SDK, online,
// confirms by itself; the request waits for it and for the ttl of the player
// who is not online.
func TestWaitedKickoutIsDeliveredOnlineAndNotDeliveredOffline(t *testing.T) {
	t.Parallel()
	h := startHeraldInProcess(t, brokertest.Start(t).URL)
	h.createGame()
	online := h.connectPlayer("p1")

	st := h.kick(http.StatusCreated, "?wait=30s", map[string]any{
		"players": []string{"p1"}, "reason": "login_elsewhere", "message": map[string]any{"en": "Logged in elsewhere"}, "reconnect_after_s": 30,
	})
	require.Equal(t, "delivered", st["state"], "answered once the client confirmed, long before the ttl")
	require.Equal(t, map[string]string{"p1": "delivered"}, playerStatuses(st))
	require.NotEmpty(t, st["players"].([]any)[0].(map[string]any)["delivered_at"])
	kicks := online.kickouts()
	require.Len(t, kicks, 1)
	require.Equal(t, st["id"], kicks[0].ID)
	require.Equal(t, "login_elsewhere", kicks[0].Reason)
	require.Equal(t, 30*time.Second, kicks[0].ReconnectAfter)

	both := h.kick(http.StatusCreated, "?wait=30s", map[string]any{"players": []string{"p1", "p2"}, "reason": "maintenance", "ttl_s": 2})
	require.Equal(t, "expired", both["state"], "p2 never confirms: the answer comes at the ttl")
	require.Equal(t, map[string]string{"p1": "delivered", "p2": "not_delivered"}, playerStatuses(both))
	require.Equal(t, map[string]any{"targeted": 2.0, "pending": 0.0, "published": 0.0, "delivered": 1.0, "not_delivered": 1.0}, both["counts"])

	// A server kick-out lists the players that confirmed.
	onS1 := h.connectPlayerOn("p3", "s1")
	srv := h.kick(http.StatusCreated, "?wait=30s", map[string]any{"server": "s1", "reason": "server_shutdown", "ttl_s": 2})
	require.Equal(t, "expired", srv["state"], "held until the ttl: Herald does not know who is on s1")
	require.Equal(t, map[string]string{"p3": "delivered"}, playerStatuses(srv))
	require.Len(t, onS1.kickouts(), 1)
	late := h.connectPlayerOn("p4", "s1")
	require.Empty(t, h.onlyRetained(h.prefix+"/g1/server/s1/#"))
	require.Empty(t, late.kickouts(), "connected after the kick-out: never gets it")
	require.Len(t, online.kickouts(), 2)
}

// TestKickoutOfTenThousandPlayers: the largest kick-out, 10,000 ids of the
// longest kind, is taken and published to every player at once.
func TestKickoutOfTenThousandPlayers(t *testing.T) {
	t.Parallel()
	h := startHeraldInProcess(t, brokertest.Start(t).URL)
	h.createGame()
	online := subscribe(t, h.broker, h.prefix+"/g1/player/#")
	players := make([]string, 10_000)
	for i := range players {
		players[i] = fmt.Sprintf("%0128d", i)
	}
	st := h.kick(http.StatusCreated, "", map[string]any{"players": players, "reason": "maintenance"})
	require.Equal(t, "published", st["state"])
	require.Equal(t, 10_000.0, st["counts"].(map[string]any)["published"])
	waitProgress(t, "every player's kick-out", patience, func() bool { return len(online.messages()) == len(players) },
		func() int { return len(online.messages()) })
}

// TestWaitedKickoutAnsweredWhenTheReceiptLandsOnAnotherReplica runs two
// replicas on one database and one broker. Replica A takes the kick-out and
// waits; the client's receipt can only reach replica B, because A reaches the
// broker through a link that refuses its receipts connection (/metrics shows
// A never subscribed; an ACL would not do: Mosquitto still hands a refused
// reader its share of a shared subscription, and drops it). B stores the
// receipt and notifies; A's listening connection wakes the waiting request.
func TestWaitedKickoutAnsweredWhenTheReceiptLandsOnAnotherReplica(t *testing.T) {
	t.Parallel()
	broker := brokertest.Start(t)
	link := startReceiptlessLink(t, "127.0.0.1:"+strconv.Itoa(broker.Port))
	dbURL, prefix := dbtest.New(t), randomPrefix()
	replica := func(url string) *herald {
		return startHeraldWith(t, map[string]string{"HERALD_DATABASE_URL": dbURL, "HERALD_MQTT_URL": url, "HERALD_TOPIC_PREFIX": prefix})
	}
	a, b := replica(link.URL), replica(broker.URL)
	a.broker = broker.URL
	a.createGame()
	waitFor(t, "B's receipts subscription", patience, func() bool { return b.metric("herald_receipts_subscribed") == 1 })
	p1 := a.connectPlayer("p1")

	st := a.kick(http.StatusCreated, "?wait=30s", map[string]any{"players": []string{"p1"}, "reason": "login_elsewhere"})
	require.Equal(t, "delivered", st["state"], "answered by A once B stored the receipt, long before the ttl")
	require.Equal(t, map[string]string{"p1": "delivered"}, playerStatuses(st))
	require.Len(t, p1.kickouts(), 1)
	require.Zero(t, a.metric("herald_receipts_subscribed"), "A never read a receipt")
	require.Zero(t, a.metric("herald_receipts_stored_total"))
	require.Equal(t, 1.0, b.metric("herald_receipts_stored_total"))
}
