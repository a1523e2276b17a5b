package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
)

// memberCampaign creates a segment of n members and a notice to it, and returns
// the campaign id.
func (h *herald) memberCampaign(n int) string {
	h.t.Helper()
	h.createGame()
	seg := h.call(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "many", "rule": map[string]any{"members": true}})
	var list strings.Builder
	for i := range n {
		fmt.Fprintf(&list, "p%06d\n", i)
	}
	h.call(http.StatusOK, "PUT", "/v1/games/g1/segments/"+seg["id"].(string)+"/members", list.String())
	c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "notice", "name": "to many", "audience": map[string]any{"segment_id": seg["id"]},
		"content": map[string]any{"title": map[string]any{"en": "Hello"}, "body": map[string]any{"en": "Everyone on the list"}},
	})
	return c["id"].(string)
}

// requireEveryMemberRetained checks on the broker itself that each of the n
// members' topics holds the campaign's retained envelope.
func (h *herald) requireEveryMemberRetained(campaign string, n int) {
	h.t.Helper()
	retained := h.onlyRetained(h.prefix + "/g1/player/#")
	seen := make(map[string]bool, len(retained))
	for _, m := range retained {
		require.NotEmpty(h.t, m.Payload, "topic %s", m.Topic)
		seen[m.Topic] = true
	}
	for i := range n {
		if topic := fmt.Sprintf("%s/g1/player/p%06d/notice/%s", h.prefix, i, campaign); !seen[topic] {
			h.t.Fatalf("member p%06d has no retained message (%d of %d retained)", i, len(seen), n)
		}
	}
	require.Len(h.t, seen, n)
}

func randomPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// killMidFanOut starts a herald process on a private broker, sends a notice to
// a segment of n members, SIGKILLs the process once at least acked of them are
// acknowledged, and starts a second process on the same database (it resumes the
// dispatch once the dead one's 2 s lease runs out). It returns the herald, now
// pointing at the second process, and the campaign id.
func killMidFanOut(t *testing.T, n int, acked float64) (*herald, string) {
	t.Helper()
	broker := brokertest.Start(t)
	bin := buildHerald(t)
	vars := map[string]string{
		"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": broker.URL,
		"HERALD_TOPIC_PREFIX": randomPrefix(), "HERALD_DISPATCH_LEASE": "2s",
	}
	base, first := startHeraldProcess(t, bin, vars)
	h := &herald{t: t, base: base, prefix: vars["HERALD_TOPIC_PREFIX"], broker: broker.URL, key: adminKey(t, vars["HERALD_DATABASE_URL"])}
	id := h.memberCampaign(n)
	waitFor(t, "the fan-out to be under way", 60*time.Second, func() bool { return h.dispatch(id)["acked"].(float64) >= acked })
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	h.base, _ = startHeraldProcess(t, bin, vars)
	return h, id
}

// TestKilledMidFanOutResumes kills a herald process (SIGKILL) in the middle of a
// 100,000-member fan-out; a second process resumes the dispatch from its last
// checkpoint once the dead one's lease runs out, and every member is reached.
func TestKilledMidFanOutResumes(t *testing.T) {
	t.Parallel()
	const members = 100_000
	h, id := killMidFanOut(t, members, 10_000)
	atKill := h.dispatch(id)
	require.Less(t, atKill["acked"].(float64), float64(members), "killed in the middle")
	t.Logf("killed with %v of %d acknowledged", atKill["acked"], members)

	waitFor(t, "the resumed dispatch to be published", 120*time.Second, func() bool { return h.dispatch(id)["state"] == "published" })
	d := h.dispatch(id)
	require.GreaterOrEqual(t, d["acked"].(float64), float64(members), "every target acknowledged (a batch cut off by the kill is sent again)")
	h.requireEveryMemberRetained(id, members)
}

// TestBrokerOutageMidFanOutLosesNothing stops the broker (cleanly: Mosquitto
// saves its retained messages) during a fan-out and starts it again: the API
// keeps working meanwhile, the dispatch waits, and every member is reached.
func TestBrokerOutageMidFanOutLosesNothing(t *testing.T) {
	t.Parallel()
	const members = 50_000
	broker := brokertest.Start(t)
	h := startHeraldInProcess(t, broker.URL)
	id := h.memberCampaign(members)

	waitFor(t, "the fan-out to be under way", 60*time.Second, func() bool { return h.dispatch(id)["acked"].(float64) >= 5_000 })
	broker.Stop()
	during := h.dispatch(id)
	require.Equal(t, "publishing", during["state"])
	require.Less(t, during["acked"].(float64), float64(members))
	// While the broker is down the API still takes campaigns.
	other := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "notice", "name": "during the outage", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
		"content": map[string]any{"title": map[string]any{"en": "t"}, "body": map[string]any{"en": "b"}},
	})
	time.Sleep(time.Second) // a real outage: the broker stays away a while
	broker.Start()

	waitFor(t, "the dispatch to be published", 120*time.Second, func() bool { return h.dispatch(id)["state"] == "published" })
	waitFor(t, "the campaign sent during the outage", 60*time.Second, func() bool {
		return h.dispatch(other["id"].(string))["state"] == "published"
	})
	d := h.dispatch(id)
	t.Logf("after the outage: acked %v, retried %v", d["acked"], d["retried"])
	h.requireEveryMemberRetained(id, members)
	require.Len(t, h.onlyRetained(h.prefix+"/g1/all/#"), 1)
}

// TestCancelMidFanOutClearsEverythingSent recalls a campaign while its fan-out is
// under way: publishing stops, and every topic it had reached, the batch in
// flight included, is cleared.
func TestCancelMidFanOutClearsEverythingSent(t *testing.T) {
	t.Parallel()
	const members = 30_000
	broker := brokertest.Start(t)
	h := startHeraldInProcess(t, broker.URL)
	id := h.memberCampaign(members)
	waitFor(t, "the fan-out to be under way", 60*time.Second, func() bool { return h.dispatch(id)["acked"].(float64) >= 2_000 })
	h.call(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+id+"/cancel", nil)
	waitFor(t, "the dispatch to be recalled", 60*time.Second, func() bool { return h.dispatch(id)["state"] == "recalled" })
	d := h.dispatch(id)
	t.Logf("recalled after %v of %d acknowledged; %v topics cleared", d["acked"], members, d["cleared"])
	require.Less(t, d["acked"].(float64), float64(members), "publishing stopped early")
	require.GreaterOrEqual(t, d["cleared"].(float64), d["acked"].(float64), "every topic reached was cleared")
	require.Empty(t, h.onlyRetained(h.prefix+"/g1/player/#"), "nothing stays retained")
}

// TestRecallAfterACrashClearsTheBatchInFlight kills a herald mid fan-out, cancels
// the campaign through another replica while the dead one still holds the lease,
// and checks that every topic is cleared, including those of the batch that was
// published but never checkpointed.
func TestRecallAfterACrashClearsTheBatchInFlight(t *testing.T) {
	t.Parallel()
	const members = 30_000
	h, id := killMidFanOut(t, members, 3_000)
	h.call(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+id+"/cancel", nil)
	waitFor(t, "the dispatch to be recalled", 60*time.Second, func() bool { return h.dispatch(id)["state"] == "recalled" })
	require.Empty(t, h.onlyRetained(h.prefix+"/g1/player/#"), "nothing stays retained, not even the batch in flight at the crash")
}
