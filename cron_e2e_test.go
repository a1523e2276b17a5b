package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
)

// fireNow makes time pass for a recurring campaign: its next fire becomes the
// instant the SQL expression at gives (now() is the database's clock), and
// the scheduler leader is woken as a change of schedule would wake it.
func fireNow(t *testing.T, dbURL, campaign, at string) {
	t.Helper()
	passTime(t, dbURL, `UPDATE campaigns SET send_at = `+at+` WHERE id = $1`, campaign)
	passTime(t, dbURL, `SELECT pg_notify('herald_schedule', '')`)
}

// dispatches returns the campaign's dispatches, oldest fire first.
func (h *herald) dispatches(game, campaign string) []map[string]any {
	var out []map[string]any
	for _, d := range h.call(http.StatusOK, "GET", "/v1/games/"+game+"/campaigns/"+campaign+"/dispatches", nil)["items"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// envelopes returns the ids of the non-empty envelopes c got on topic, and
// how many removals (empty payloads).
func (c *client) envelopes(t *testing.T, topic string) (ids []string, removals int) {
	for _, m := range c.messages() {
		if m.Topic != topic {
			continue
		}
		if len(m.Payload) == 0 {
			removals++
			continue
		}
		var e struct{ ID string }
		require.NoError(t, json.Unmarshal(m.Payload, &e))
		ids = append(ids, e.ID)
	}
	return ids, removals
}

// TestCronFiresReachASubscriber: each fire of a recurring ad is a dispatch
// that reaches a real MQTT subscriber on the campaign's retained topic; the
// second fire comes while the first is still live (ttl 2h), so the first is
// cleared (replaced) before the second is published, and the topic holds only
// the second.
func TestCronFiresReachASubscriber(t *testing.T) {
	t.Parallel()
	broker := brokertest.Start(t)
	dbURL := dbtest.New(t)
	h := startHeraldWith(t, map[string]string{"HERALD_DATABASE_URL": dbURL, "HERALD_MQTT_URL": broker.URL, "HERALD_TOPIC_PREFIX": randomPrefix()})
	h.createGame()
	online := subscribe(t, broker.URL, h.prefix+"/g1/all/#")
	c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "ad", "name": "yearly ad", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
		"content":  map[string]any{"image_url": "https://cdn.example/ad.png"},
		"schedule": map[string]any{"cron": "0 0 1 1 *", "timezone": "Asia/Shanghai"}, "ttl": "2h",
	})
	id := c["id"].(string)
	topic := h.prefix + "/g1/all/ad/" + id

	fireNow(t, dbURL, id, `now() - interval '2 seconds'`)
	waitFor(t, "the first fire published", patience, func() bool {
		ds := h.dispatches("g1", id)
		return len(ds) == 1 && ds[0]["state"] == "published"
	})
	fireNow(t, dbURL, id, `now() - interval '1 second'`)
	waitFor(t, "the second fire published", patience, func() bool {
		ds := h.dispatches("g1", id)
		return len(ds) == 2 && ds[1]["state"] == "published"
	})
	ds := h.dispatches("g1", id)
	require.Equal(t, "replaced", ds[0]["state"], "the first send was cleared for the second")
	c = h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+id, nil)
	require.Equal(t, "scheduled", c["status"], "a recurring campaign stays scheduled between fires")

	waitFor(t, "both envelopes and the removal", patience, func() bool {
		ids, removals := online.envelopes(t, topic)
		return len(ids) == 2 && removals == 1
	})
	ids, _ := online.envelopes(t, topic)
	require.Equal(t, []string{ds[0]["id"].(string), ds[1]["id"].(string)}, ids, "each fire once, in order")
	retained := h.onlyRetained(h.prefix + "/g1/all/#")
	require.Len(t, retained, 1)
	require.Contains(t, string(retained[0].Payload), ds[1]["id"].(string), "the topic holds the latest send")
}

// TestCronInEachPlayersZone: a campaign at a local time in each player's zone
// sends each zone's fire to that zone's tag topic only; two zones whose local
// time matches at the same instant fire together, each once.
func TestCronInEachPlayersZone(t *testing.T) {
	t.Parallel()
	broker := brokertest.Start(t)
	dbURL := dbtest.New(t)
	h := startHeraldWith(t, map[string]string{"HERALD_DATABASE_URL": dbURL, "HERALD_MQTT_URL": broker.URL, "HERALD_TOPIC_PREFIX": randomPrefix()})
	h.call(http.StatusCreated, "POST", "/v1/games", map[string]any{
		"id": "g1", "name": "Game", "default_locale": "en", "zone_tag": "tz",
		"tags": map[string]any{
			"level": map[string]any{"bands": [][2]int{{1, 29}, {30, 39}}},
			"tz":    map[string]any{"values": []string{"Asia.Shanghai", "Europe.Berlin", "America.St_Johns"}},
		},
	})
	shanghai := subscribe(t, broker.URL, h.prefix+"/g1/tag/tz/Asia.Shanghai/#")
	berlin := subscribe(t, broker.URL, h.prefix+"/g1/tag/tz/Europe.Berlin/#")
	stJohns := subscribe(t, broker.URL, h.prefix+"/g1/tag/tz/America.St_Johns/#")
	// Every hour at this minute: Shanghai and Berlin (whole-hour offsets) fire
	// at the same instants, St. John's (UTC-3:30 or -2:30) half an hour apart.
	minute := time.Now().UTC().Minute()
	c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "notice", "name": "local", "audience": map[string]any{"rule": map[string]any{"tag": "level", "between": []int{30, 39}}},
		"content":  map[string]any{"title": map[string]any{"en": "t"}, "body": map[string]any{"en": "b"}},
		"schedule": map[string]any{"cron": fmt.Sprintf("%d * * * *", minute), "timezone": "player"},
	})
	id := c["id"].(string)
	var zones []string
	for _, f := range c["next_fires"].([]any) {
		zones = append(zones, f.(map[string]any)["timezone"].(string))
	}
	require.Subset(t, zones, []string{"Asia/Shanghai", "Europe/Berlin", "America/St_Johns"}, "next_fires names each zone")

	// This hour's fire, a moment ago (a minute ago if the clock just passed it).
	fireNow(t, dbURL, id, fmt.Sprintf(`date_trunc('minute', now()) - make_interval(mins => (extract(minute FROM now())::int - %d + 60) %% 60)`, minute))
	waitFor(t, "two zones' fires published", patience, func() bool {
		ds := h.dispatches("g1", id)
		return len(ds) == 2 && ds[0]["state"] == "published" && ds[1]["state"] == "published"
	})
	ds := h.dispatches("g1", id)
	byZone := map[string]string{}
	for _, d := range ds {
		byZone[d["zone"].(string)] = d["id"].(string)
	}
	require.Len(t, byZone, 2)
	for zone, sub := range map[string]*client{"Asia/Shanghai": shanghai, "Europe/Berlin": berlin} {
		topic := h.prefix + "/g1/tag/tz/" + map[string]string{"Asia/Shanghai": "Asia.Shanghai", "Europe/Berlin": "Europe.Berlin"}[zone] + "/notice/" + id
		waitFor(t, zone+"'s envelope", patience, func() bool { ids, _ := sub.envelopes(t, topic); return len(ids) == 1 })
		ids, _ := sub.envelopes(t, topic)
		require.Equal(t, []string{byZone[zone]}, ids, "%s gets its own zone's send, once", zone)
		require.Contains(t, string(sub.messages()[0].Payload), `"filter":{"tag":"level","between":[30,39]}`)
	}
	require.Empty(t, stJohns.messages(), "St. John's local time is not this minute")
	c = h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+id, nil)
	require.Equal(t, "America/St_Johns", c["next_fires"].([]any)[0].(map[string]any)["timezone"], "half an hour later, St. John's")
}

// TestCronMisfire stops Herald (no leader runs) across several fires of an
// every-minute campaign with a misfire grace of a minute: when it is back, the
// fires older than the grace are recorded missed and not sent, the later ones
// are sent late, each fire once, and only those sent reach the subscriber.
func TestCronMisfire(t *testing.T) {
	t.Parallel()
	broker := brokertest.Start(t)
	vars := map[string]string{"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": broker.URL, "HERALD_TOPIC_PREFIX": randomPrefix()}
	h := startHeraldWith(t, vars)
	h.createGame()
	online := subscribe(t, broker.URL, h.prefix+"/g1/all/#")
	c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "notice", "name": "every minute", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
		"content":  map[string]any{"title": map[string]any{"en": "t"}, "body": map[string]any{"en": "b"}},
		"schedule": map[string]any{"cron": "* * * * *", "timezone": "UTC"}, "ttl": "1h", "misfire_grace": "1m",
	})
	id := c["id"].(string)
	h.stop()

	// Down for the last three minutes and more.
	passTime(t, vars["HERALD_DATABASE_URL"], `UPDATE campaigns SET send_at = date_trunc('minute', now()) - interval '3 minutes' WHERE id = $1`, id)
	h = startHeraldWith(t, vars)
	restarted := time.Now()
	waitFor(t, "a fire sent late", patience, func() bool {
		return slices.ContainsFunc(h.dispatches("g1", id), func(d map[string]any) bool { return d["state"] == "published" })
	})
	ds := h.dispatches("g1", id)
	var missed, sent []map[string]any
	for i, d := range ds {
		at, err := time.Parse(time.RFC3339, d["fire_at"].(string))
		require.NoError(t, err)
		if i > 0 {
			prev, _ := time.Parse(time.RFC3339, ds[i-1]["fire_at"].(string))
			require.Equal(t, time.Minute, at.Sub(prev), "one dispatch per fire, none left out")
		}
		switch d["state"] {
		case "missed":
			require.True(t, at.Before(restarted.Add(-time.Minute)), "missed only past the grace: %v", at)
			require.Contains(t, d["note"], "misfire grace of 1m")
			missed = append(missed, d)
		default:
			sent = append(sent, d)
		}
	}
	require.GreaterOrEqual(t, len(missed), 2, "the fires three and two minutes ago")
	require.NotEmpty(t, sent)
	t.Logf("%d fires missed, %d sent late", len(missed), len(sent))
	waitFor(t, "the late send", patience, func() bool { ids, _ := online.envelopes(t, h.prefix+"/g1/all/notice/"+id); return len(ids) >= 1 })
	ids, _ := online.envelopes(t, h.prefix+"/g1/all/notice/"+id)
	for _, d := range missed {
		require.NotContains(t, ids, d["id"], "a missed fire is not sent")
	}
	require.Equal(t, sent[0]["id"], ids[0])
}
