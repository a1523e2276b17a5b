package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/dbtest"
)

// sleepUntil waits for a moment on the wall clock: these tests are about Herald
// being down while time passes.
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

func TestRestartClearsWhatExpiredWhileDown(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": mqttURL(), "HERALD_TOPIC_PREFIX": randomPrefix()}
	h := startHeraldWith(t, vars)
	h.createGame()
	online := subscribe(t, h.broker, h.prefix+"/g1/all/#")
	expiresAt := time.Now().Add(1500 * time.Millisecond)
	c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "marquee", "name": "short", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
		"content": map[string]any{"text": map[string]any{"en": "Flash sale"}}, "expires_at": expiresAt,
	})
	id := c["id"].(string)
	waitFor(t, "the dispatch to be published", patience, func() bool { return h.dispatch(id)["state"] == "published" })
	h.stop()

	sleepUntil(expiresAt.Add(time.Second))
	require.Len(t, online.messages(), 1, "nobody cleared it while Herald was down")
	require.Len(t, h.onlyRetained(h.prefix+"/g1/all/#"), 1, "it is still retained")

	h = startHeraldWith(t, vars)
	waitFor(t, "the removal after the restart", patience, func() bool { return len(online.messages()) == 2 })
	require.Empty(t, online.messages()[1].Payload)
	waitFor(t, "the dispatch to be expired", patience, func() bool { return h.dispatch(id)["state"] == "expired" })
	require.Empty(t, h.onlyRetained(h.prefix+"/g1/all/#"))
}

func TestFiresMissedWhileDownAreSentLateWithinTheGrace(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": mqttURL(),
		"HERALD_TOPIC_PREFIX": randomPrefix(), "HERALD_FIRE_GRACE": "2s"}
	h := startHeraldWith(t, vars)
	h.createGame()
	online := subscribe(t, h.broker, h.prefix+"/g1/all/#")
	start := time.Now()
	schedule := func(name string, at time.Time) string {
		c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
			"kind": "notice", "name": name, "audience": map[string]any{"rule": map[string]any{"everyone": true}},
			"content":  map[string]any{"title": map[string]any{"en": name}, "body": map[string]any{"en": "b"}},
			"schedule": map[string]any{"at": at},
		})
		return c["id"].(string)
	}
	missed := schedule("missed", start.Add(time.Second))
	late := schedule("late", start.Add(4*time.Second))
	h.stop()

	sleepUntil(start.Add(5 * time.Second)) // "missed" is 4 s late, "late" 1 s
	h = startHeraldWith(t, vars)
	waitFor(t, "the late send", patience, func() bool {
		return h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+late, nil)["status"] == "live" &&
			h.dispatch(late)["state"] == "published"
	})
	m := h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+missed, nil)
	require.Equal(t, "completed", m["status"])
	require.Equal(t, "missed", h.dispatch(missed)["state"])
	msgs := online.messages()
	require.Len(t, msgs, 1, "only the send within the grace period went out")
	require.Equal(t, h.prefix+"/g1/all/notice/"+late, msgs[0].Topic)
}

func TestTwoReplicasSendEachFireOnce(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": mqttURL(), "HERALD_TOPIC_PREFIX": randomPrefix()}
	a := startHeraldWith(t, vars)
	b := startHeraldWith(t, vars)
	a.createGame()
	online := subscribe(t, a.broker, a.prefix+"/g1/all/#")
	at := time.Now().Add(time.Second)
	var ids []string
	for i, h := range []*herald{a, b, a, b} {
		body := map[string]any{
			"kind": "notice", "name": "n", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
			"content": map[string]any{"title": map[string]any{"en": "t"}, "body": map[string]any{"en": "b"}},
		}
		if i >= 2 {
			body["schedule"] = map[string]any{"at": at}
		}
		ids = append(ids, h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", body)["id"].(string))
	}
	for _, id := range ids {
		waitFor(t, "every campaign published", patience, func() bool { return a.dispatch(id)["state"] == "published" })
	}
	waitFor(t, "four envelopes", patience, func() bool { return len(online.messages()) >= 4 })
	seen := map[string]int{}
	for _, m := range online.messages() {
		seen[m.Topic]++
	}
	for _, id := range ids {
		require.Equal(t, 1, seen[a.prefix+"/g1/all/notice/"+id], "campaign %s sent once by two replicas", id)
	}
}
