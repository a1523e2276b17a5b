package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
)

func (h *herald) createGame() {
	h.call(http.StatusCreated, "POST", "/v1/games", map[string]any{
		"id": "g1", "name": "Game", "default_locale": "en",
		"tags": map[string]any{"region": map[string]any{"values": []string{"eu", "na"}}},
	})
}

// dispatch returns the campaign's only dispatch (an empty map before it has one).
func (h *herald) dispatch(campaign string) map[string]any {
	c := h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+campaign, nil)
	ds := c["dispatches"].([]any)
	if len(ds) == 0 {
		return map[string]any{}
	}
	require.Len(h.t, ds, 1)
	return ds[0].(map[string]any)
}

// onlyRetained subscribes a new client to filter and returns the retained
// messages it gets. Mosquitto queues every retained message of a subscription
// while handling the SUBSCRIBE, so a plain message published under the filter
// after the SUBACK (a marker) arrives after all of them: once it is in, nothing
// retained is still on its way.
func (h *herald) onlyRetained(filter string) []received {
	h.t.Helper()
	c := subscribe(h.t, h.broker, filter)
	defer c.conn.Disconnect(100) // at once: a subscriber left behind slows every later publish
	marker := strings.TrimSuffix(filter, "#") + markerLevel
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(h.broker).SetCleanSession(true))
	tok := pub.Connect()
	require.True(h.t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil)
	defer pub.Disconnect(100)
	tok = pub.Publish(marker, 1, false, "marker")
	require.True(h.t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil)
	checked := 0 // messages already looked at: the marker comes last
	waitProgress(h.t, "the marker", patience, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		require.NoError(h.t, c.lost, "the subscriber lost its connection after %d messages", len(c.got))
		for ; checked < len(c.got); checked++ {
			if c.got[checked].Topic == marker {
				return true
			}
		}
		return false
	}, func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.got)
	})
	return c.messages()
}

// markerLevel is the last topic level of onlyRetained's markers.
const markerLevel = "zz-marker"

func TestCampaignReachesItsAudienceOnlineAndLater(t *testing.T) {
	t.Parallel()
	h := startHeraldInProcess(t, brokertest.Start(t).URL)
	h.createGame()
	eu := subscribe(t, h.broker, h.prefix+"/g1/tag/region/eu/#")
	na := subscribe(t, h.broker, h.prefix+"/g1/tag/region/na/#")

	c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "notice", "name": "maintenance", "priority": 7,
		"audience": map[string]any{"rule": map[string]any{"tag": "region", "in": []string{"eu"}}},
		"content":  map[string]any{"title": map[string]any{"en": "Maintenance"}, "body": map[string]any{"en": "At 10:00 UTC"}},
	})
	id := c["id"].(string)
	require.Equal(t, "live", c["status"])
	require.Equal(t, map[string]any{"exact": true, "topics": 1.0, "players": 0.0}, c["plan"])

	waitFor(t, "the notice online", patience, func() bool { return len(eu.messages()) == 1 })
	got := eu.messages()[0]
	require.Equal(t, h.prefix+"/g1/tag/region/eu/notice/"+id, got.Topic)
	var env map[string]any
	require.NoError(t, json.Unmarshal(got.Payload, &env))
	d := h.dispatch(id)
	require.Equal(t, 1.0, env["v"])
	require.Equal(t, d["id"], env["id"])
	require.Equal(t, id, env["campaign"])
	require.Equal(t, "notice", env["kind"])
	require.Equal(t, "g1", env["game"])
	require.Equal(t, 7.0, env["priority"])
	require.NotContains(t, env, "filter", "an exact target carries no filter")
	require.Equal(t, map[string]any{"title": map[string]any{"en": "Maintenance"}, "body": map[string]any{"en": "At 10:00 UTC"}}, env["content"])
	expires, err := time.Parse(time.RFC3339, env["expires_at"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(7*24*time.Hour), expires, time.Minute, "a notice lives 7 days by default")

	waitFor(t, "the dispatch to be published", patience, func() bool { return h.dispatch(id)["state"] == "published" })
	d = h.dispatch(id)
	require.Equal(t, 1.0, d["acked"])
	require.Equal(t, 1.0, d["topics"])

	late := h.onlyRetained(h.prefix + "/g1/tag/region/eu/#")
	require.Len(t, late, 1, "a player connecting later gets it as retained")
	require.True(t, late[0].Retained)
	require.Equal(t, got.Payload, late[0].Payload)
	require.Empty(t, h.onlyRetained(h.prefix+"/g1/tag/region/na/#"), "nothing retained for na")
	require.Empty(t, na.messages(), "players outside the audience get nothing")
}

func TestCampaignExpiresAndClears(t *testing.T) {
	t.Parallel()
	h := startHeraldInProcess(t, brokertest.Start(t).URL)
	h.createGame()
	online := subscribe(t, h.broker, h.prefix+"/g1/all/#")
	expiresAt := time.Now().Add(2 * time.Second).UTC().Truncate(time.Millisecond)
	c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "marquee", "name": "soon gone", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
		"content": map[string]any{"text": map[string]any{"en": "Double XP tonight"}, "repeat": 3}, "expires_at": expiresAt,
	})
	id := c["id"].(string)
	topic := h.prefix + "/g1/all/marquee/" + id

	var clearedAt time.Time
	waitFor(t, "the envelope, then the empty payload that removes it", patience, func() bool {
		msgs := online.messages()
		if len(msgs) == 2 && clearedAt.IsZero() {
			clearedAt = time.Now()
		}
		return len(msgs) == 2
	})
	msgs := online.messages()
	require.Equal(t, topic, msgs[0].Topic)
	require.NotEmpty(t, msgs[0].Payload)
	require.Equal(t, topic, msgs[1].Topic)
	require.Empty(t, msgs[1].Payload, "expiry sends the empty payload")
	t.Logf("the expiry reached an online client %s after expires_at", clearedAt.Sub(expiresAt).Round(time.Millisecond))

	waitFor(t, "the campaign to be expired", patience, func() bool {
		return h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+id, nil)["status"] == "expired"
	})
	require.Equal(t, "expired", h.dispatch(id)["state"])
	require.Empty(t, h.onlyRetained(h.prefix+"/g1/all/#"), "nothing is left for players connecting later")
}

func TestCancelRecallsAtOnce(t *testing.T) {
	t.Parallel()
	h := startHeraldInProcess(t, brokertest.Start(t).URL)
	h.createGame()
	online := subscribe(t, h.broker, h.prefix+"/g1/all/#")
	c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "ad", "name": "wrong price", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
		"content":    map[string]any{"image_url": "https://cdn.example.com/a.png", "click_url": "https://shop.example.com"},
		"expires_at": time.Now().Add(time.Hour),
	})
	id := c["id"].(string)
	waitFor(t, "the ad", patience, func() bool { return len(online.messages()) == 1 })

	canceled := h.call(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+id+"/cancel", nil)
	require.Equal(t, "canceled", canceled["status"])
	waitFor(t, "the removal", patience, func() bool { return len(online.messages()) == 2 })
	require.Empty(t, online.messages()[1].Payload)
	waitFor(t, "the dispatch to be recalled", patience, func() bool { return h.dispatch(id)["state"] == "recalled" })
	require.Empty(t, h.onlyRetained(h.prefix+"/g1/all/#"))
	again := h.call(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+id+"/cancel", nil)
	require.Equal(t, "canceled", again["status"], "cancel is idempotent")
}

func TestScheduledCampaignCanBeCanceledBeforeItIsSent(t *testing.T) {
	t.Parallel()
	h := startHeraldInProcess(t, brokertest.Start(t).URL)
	h.createGame()
	online := subscribe(t, h.broker, h.prefix+"/g1/all/#")
	at := time.Now().Add(1500 * time.Millisecond)
	later := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "notice", "name": "later", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
		"content":  map[string]any{"title": map[string]any{"en": "t"}, "body": map[string]any{"en": "b"}},
		"schedule": map[string]any{"at": at},
	})
	never := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "notice", "name": "never", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
		"content":  map[string]any{"title": map[string]any{"en": "t"}, "body": map[string]any{"en": "b"}},
		"schedule": map[string]any{"at": at},
	})
	require.Equal(t, "scheduled", later["status"])
	require.Empty(t, later["dispatches"])
	h.call(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+never["id"].(string)+"/cancel", nil)

	waitFor(t, "the scheduled send", patience, func() bool { return len(online.messages()) >= 1 })
	require.Equal(t, h.prefix+"/g1/all/notice/"+later["id"].(string), online.messages()[0].Topic)
	require.False(t, time.Now().Before(at), "not sent before its time")
	waitFor(t, "the dispatch to be published", patience, func() bool { return h.dispatch(later["id"].(string))["state"] == "published" })
	require.Len(t, online.messages(), 1, "the canceled campaign never went out")
	c := h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+never["id"].(string), nil)
	require.Empty(t, c["dispatches"])
}

func TestMemberCampaignReachesEveryMemberOnce(t *testing.T) {
	t.Parallel()
	h := startHeraldInProcess(t, brokertest.Start(t).URL)
	h.createGame()
	seg := h.call(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "whales", "rule": map[string]any{"members": true}})
	const members = 10_000
	var list strings.Builder
	for i := range members {
		fmt.Fprintf(&list, "p%05d\n", i)
	}
	h.call(http.StatusOK, "PUT", "/v1/games/g1/segments/"+seg["id"].(string)+"/members", list.String())
	players := subscribe(t, h.broker, h.prefix+"/g1/player/+/notice/#")

	c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "notice", "name": "gift", "audience": map[string]any{"segment_id": seg["id"]},
		"content": map[string]any{"title": map[string]any{"en": "A gift"}, "body": map[string]any{"en": "For you"}},
	})
	require.Equal(t, map[string]any{"exact": true, "topics": float64(members), "players": float64(members)}, c["plan"])
	id := c["id"].(string)
	waitFor(t, "the dispatch to be published", 60*time.Second, func() bool { return h.dispatch(id)["state"] == "published" })
	waitProgress(t, "every member's message", patience, func() bool { return len(players.messages()) >= members },
		func() int { return len(players.messages()) })

	seen := map[string]int{}
	for _, m := range players.messages() {
		seen[m.Topic]++
	}
	require.Len(t, seen, members, "every member reached")
	for i := range members {
		topic := fmt.Sprintf("%s/g1/player/p%05d/notice/%s", h.prefix, i, id)
		require.Equal(t, 1, seen[topic], "member p%05d reached exactly once", i)
	}
	require.Equal(t, float64(members), h.dispatch(id)["acked"])
}
