package main

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/protocol"
)

// broadcast creates a notice to everyone in g1 that expires at expiresAt and
// returns its id.
func (h *herald) broadcast(name string, expiresAt time.Time) string {
	h.t.Helper()
	c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "notice", "name": name, "audience": map[string]any{"rule": map[string]any{"everyone": true}},
		"content":    map[string]any{"title": map[string]any{"en": name}, "body": map[string]any{"en": "b"}},
		"expires_at": expiresAt,
	})
	return c["id"].(string)
}

// retained returns what the broker holds retained under filter, by topic.
func (h *herald) retained(filter string) map[string]string {
	h.t.Helper()
	out := map[string]string{}
	for _, m := range h.onlyRetained(filter) {
		out[m.Topic] = string(m.Payload)
	}
	return out
}

// waitForSentinel waits until the broker holds herald's retained sentinel.
func (h *herald) waitForSentinel() {
	h.t.Helper()
	waitFor(h.t, "the retained sentinel", patience, func() bool {
		return h.retained(h.prefix + "/$herald/#")[protocol.Sentinel(h.prefix)] != ""
	})
}

// last returns the last payload that arrived on each topic.
func (c *client) last() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.got))
	for _, m := range c.got {
		out[m.Topic] = string(m.Payload)
	}
	return out
}

// metric reads one unlabelled sample from herald's /metrics.
func (h *herald) metric(name string) float64 {
	h.t.Helper()
	resp, err := http.Get(h.base + "/metrics")
	require.NoError(h.t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if value, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			require.NoError(h.t, err)
			return v
		}
	}
	require.NoError(h.t, sc.Err())
	h.t.Fatalf("metric %s not served", name)
	return 0
}

// TestBrokerLosingRetainedMessagesGetsThemBack kills the broker (SIGKILL:
// Mosquitto saves nothing) under two replicas that hold a live notice to
// 10,000 members and one to everyone. While it is down, one campaign is
// canceled and another expires. Once the broker is back, every member topic and
// the broadcast topic hold their envelope again, byte for byte, within 30 s,
// and the game's descriptor is back;
// the canceled and the expired campaign do not reappear; the restore was
// requested once, and the publish counters are not doubled.
func TestBrokerLosingRetainedMessagesGetsThemBack(t *testing.T) {
	t.Parallel()
	const members = 10_000
	broker := brokertest.Start(t)
	vars := map[string]string{"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": broker.URL, "HERALD_TOPIC_PREFIX": randomPrefix()}
	a := startHeraldWith(t, vars)
	b := startHeraldWith(t, vars)
	member := a.memberCampaign(members)
	everyone := a.broadcast("to everyone", time.Now().Add(time.Hour))
	recalled := b.broadcast("recalled while the broker is down", time.Now().Add(time.Hour))
	live := []string{member, everyone, recalled}
	for _, id := range live {
		waitFor(t, "every campaign published", patience, func() bool { return a.dispatch(id)["state"] == "published" })
	}
	expiring := a.broadcast("expires while the broker is down", time.Now().Add(time.Hour))
	waitFor(t, "the expiring campaign published", patience, func() bool { return a.dispatch(expiring)["state"] == "published" })
	a.waitForSentinel()
	a.descriptorOf("g1")
	before := a.retained(a.prefix + "/g1/#")
	require.Len(t, before, members+4, "every member topic, three broadcasts and the game's descriptor")

	broker.Kill()
	a.call(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+recalled+"/cancel", nil)
	// The campaign's time runs out while the broker is down (moved in the
	// database rather than waited for on a wall clock a loaded machine misses).
	passTime(t, vars["HERALD_DATABASE_URL"], `UPDATE dispatches SET expires_at = now() WHERE campaign_id = $1`, expiring)
	waitFor(t, "the scheduler to mark the expiry", patience, func() bool {
		return queryBool(t, vars["HERALD_DATABASE_URL"], `SELECT clear_reason IS NOT NULL FROM dispatches WHERE campaign_id = $1`, expiring)
	})
	restart := time.Now()
	broker.Start()

	gone := map[string]bool{
		a.prefix + "/g1/all/notice/" + recalled: true,
		a.prefix + "/g1/all/notice/" + expiring: true,
	}
	restoredAll := func(now map[string]string) bool {
		for topic, payload := range before {
			if !gone[topic] && now[topic] != payload {
				return false
			}
		}
		return true
	}
	// One subscriber from the restart on sees each topic's envelope arrive,
	// retained or live; the broker's retained store is read once it has all.
	watch := subscribe(t, broker.URL, a.prefix+"/g1/#")
	waitProgress(t, "every member topic and the broadcast topic restored", patience, func() bool {
		return restoredAll(watch.last())
	}, func() int { return len(watch.messages()) })
	t.Logf("%d topics restored %s after the broker restarted", members+1, time.Since(restart).Round(100*time.Millisecond))
	require.True(t, restoredAll(a.retained(a.prefix+"/g1/#")), "the broker retains them")

	waitFor(t, "the recall and the expiry cleared", patience, func() bool {
		return a.dispatch(recalled)["state"] == "recalled" && a.dispatch(expiring)["state"] == "expired"
	})
	for _, id := range []string{member, everyone} {
		waitFor(t, "the restore finished", patience, func() bool { return a.dispatch(id)["restored_at"] != nil })
	}
	after := a.retained(a.prefix + "/g1/#")
	require.True(t, restoredAll(after))
	for topic := range gone {
		require.NotContains(t, after, topic, "a canceled or expired campaign reappeared")
	}
	require.Len(t, after, members+2, "the live campaigns and the descriptor")

	d := a.dispatch(member)
	require.Equal(t, 1.0, d["restores"], "two replicas saw the loss; the restore was requested once")
	require.Equal(t, float64(members), d["restored"])
	require.Equal(t, float64(members), d["acked"], "the publish counters are not doubled")
	require.Equal(t, "published", d["state"])
	require.Nil(t, d["restore_requested_at"])
	require.Equal(t, 1.0, a.dispatch(everyone)["restored"])
	for _, id := range []string{recalled, expiring} {
		require.Equal(t, 0.0, a.dispatch(id)["restores"], "nothing to restore once cleared")
	}

	require.Equal(t, 1.0, a.metric("herald_retained_restores_requested_total")+b.metric("herald_retained_restores_requested_total"))
	require.GreaterOrEqual(t, a.metric("herald_retained_store_losses_detected_total")+b.metric("herald_retained_store_losses_detected_total"), 1.0)
	require.Equal(t, float64(members+1),
		a.metric("herald_retained_restored_topics_total")+b.metric("herald_retained_restored_topics_total"))
}

// TestRestoreInterruptedByACrashResumes kills the broker under a herald process
// holding a notice to 30,000 members, then SIGKILLs the process in the middle
// of the restore; a second process resumes the restore from its checkpoint once
// the dead one's lease runs out, without requesting another, and every member
// topic holds its envelope again.
func TestRestoreInterruptedByACrashResumes(t *testing.T) {
	t.Parallel()
	const members = 30_000
	broker := brokertest.Start(t)
	bin := buildHerald(t)
	vars := map[string]string{
		"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": broker.URL,
		"HERALD_TOPIC_PREFIX": randomPrefix(), "HERALD_DISPATCH_LEASE": "2s",
	}
	base, first := startHeraldProcess(t, bin, vars)
	h := &herald{t: t, base: base, prefix: vars["HERALD_TOPIC_PREFIX"], broker: broker.URL, key: adminKey(t, vars["HERALD_DATABASE_URL"])}
	id := h.memberCampaign(members)
	waitFor(t, "the dispatch published", 120*time.Second, func() bool { return h.dispatch(id)["state"] == "published" })
	h.waitForSentinel()

	broker.Kill()
	broker.Start()
	waitFor(t, "the restore under way", 60*time.Second, func() bool { return h.dispatch(id)["restored"].(float64) >= 3_000 })
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()

	h.base, _ = startHeraldProcess(t, bin, vars)
	waitFor(t, "the resumed restore to finish", 120*time.Second, func() bool { return h.dispatch(id)["restored_at"] != nil })
	d := h.dispatch(id)
	require.Equal(t, 1.0, d["restores"], "the second process found the sentinel and requested nothing more")
	require.Equal(t, float64(members), d["restored"])
	second := h.metric("herald_retained_restored_topics_total")
	t.Logf("the second process restored %v of %d", second, members)
	require.Positive(t, second, "the second process finished the restore")
	require.Less(t, second, float64(members), "it resumed from the first one's checkpoint")
	h.requireEveryMemberRetained(id, members)
}

// TestCancelDuringRestoreClearsEverything recalls a campaign while its
// retained messages are being restored: the restore stops, and every topic it
// had re-published is cleared.
func TestCancelDuringRestoreClearsEverything(t *testing.T) {
	t.Parallel()
	const members = 30_000
	broker := brokertest.Start(t)
	h := startHeraldInProcess(t, broker.URL)
	id := h.memberCampaign(members)
	waitFor(t, "the dispatch published", 60*time.Second, func() bool { return h.dispatch(id)["state"] == "published" })
	h.waitForSentinel()

	broker.Kill()
	broker.Start()
	waitFor(t, "the restore under way", 60*time.Second, func() bool { return h.dispatch(id)["restored"].(float64) >= 2_000 })
	h.call(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+id+"/cancel", nil)
	waitFor(t, "the dispatch recalled", 60*time.Second, func() bool { return h.dispatch(id)["state"] == "recalled" })
	d := h.dispatch(id)
	t.Logf("recalled with %v of %d restored", d["restored"], members)
	require.Nil(t, d["restore_requested_at"])
	require.Empty(t, h.onlyRetained(h.prefix+"/g1/player/#"), "nothing stays retained, not even what the restore re-published")
}

// TestBrokerKilledMidFanOutLosesNothing kills the broker (SIGKILL) in the
// middle of a fan-out to 30,000 members and starts it again: the send goes on
// where it was, and what it had published before the kill, which the broker
// lost, is restored, so every member ends up with the envelope.
func TestBrokerKilledMidFanOutLosesNothing(t *testing.T) {
	t.Parallel()
	const members = 30_000
	broker := brokertest.Start(t)
	h := startHeraldInProcess(t, broker.URL)
	h.waitForSentinel()
	id := h.memberCampaign(members)
	waitFor(t, "the fan-out under way", 60*time.Second, func() bool { return h.dispatch(id)["acked"].(float64) >= 3_000 })
	broker.Kill()
	require.Equal(t, "publishing", h.dispatch(id)["state"])
	broker.Start()

	waitFor(t, "the dispatch published and restored", 60*time.Second, func() bool {
		d := h.dispatch(id)
		return d["state"] == "published" && d["restored_at"] != nil
	})
	d := h.dispatch(id)
	t.Logf("acked %v, restored %v", d["acked"], d["restored"])
	require.Equal(t, 1.0, d["restores"])
	h.requireEveryMemberRetained(id, members)
}
