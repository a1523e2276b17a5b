package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/internal/brokertest"
)

// mqttMessage is what a subscriber received.
type mqttMessage struct {
	topic    string
	payload  []byte
	retained bool
}

// subscribeAll connects a clean-session subscriber to broker on filter and
// returns a function that reads what arrived so far.
func subscribeAll(t *testing.T, broker, filter string) func() []mqttMessage {
	t.Helper()
	var mu sync.Mutex
	var got []mqttMessage
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetCleanSession(true).SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, mqttMessage{m.Topic(), append([]byte(nil), m.Payload()...), m.Retained()})
		}))
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil, "connect: %v", tok.Error())
	t.Cleanup(func() { c.Disconnect(100) })
	tok = c.Subscribe(filter, 1, nil)
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil, "subscribe: %v", tok.Error())
	return func() []mqttMessage {
		mu.Lock()
		defer mu.Unlock()
		return append([]mqttMessage(nil), got...)
	}
}

func TestCampaignTestSendReachesOnlyTheQAPlayers(t *testing.T) {
	t.Parallel()
	broker := brokertest.Start(t)
	s := newTestServerWithBroker(t, broker.URL)
	s.createGame("g1")
	require.Eventually(t, func() bool { status, _ := s.do("GET", "/readyz", nil); return status == http.StatusOK }, patience, 20*time.Millisecond)
	received := subscribeAll(t, broker.URL, "herald/g1/#")

	startsAt := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	c := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{
		"schedule": map[string]any{"at": time.Now().Add(time.Hour)}, "starts_at": startsAt,
		"expires_at": startsAt.Add(time.Hour)}))
	id := c["id"].(string)
	sent := s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+id+"/test", map[string]any{"players": []string{"qa1", "qa2", "qa1"}})
	require.Equal(t, []any{"herald/g1/player/qa1/notice/" + id, "herald/g1/player/qa2/notice/" + id}, sent["topics"], "each QA player once")
	require.Equal(t, 2.0, sent["acked"])

	require.Eventually(t, func() bool { return len(received()) == 2 }, patience, 10*time.Millisecond)
	for _, m := range received() {
		require.True(t, strings.HasPrefix(m.topic, "herald/g1/player/qa"), m.topic)
		require.False(t, m.retained, "a test is not retained")
		var e map[string]any
		require.NoError(t, json.Unmarshal(m.payload, &e))
		require.Equal(t, true, e["test"], "the envelope says it is a test")
		require.Equal(t, id, e["campaign"])
		require.Equal(t, sent["id"], e["id"])
		require.Nil(t, e["starts_at"], "a test shows at once")
		require.Equal(t, startsAt.Add(time.Hour).Format(time.RFC3339), e["expires_at"])
	}
	got := s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+id, nil)
	require.Equal(t, "scheduled", got["status"], "a test sends nothing of the campaign")
	require.Empty(t, got["dispatches"], "a test is no dispatch")
	require.Equal(t, "campaign.test", s.auditActions("g1")[len(s.auditActions("g1"))-1])

	for _, c := range []struct {
		body   string
		status int
		fields []string
	}{
		{`{"players":[]}`, 422, []string{"players"}},
		{`{}`, 422, []string{"players"}},
		{`{"players":["qa/1","ok"]}`, 422, []string{"players[0]"}},
		{`{"players":` + manyPlayers(51) + `}`, 422, []string{"players"}},
		{`{"players":"qa1"}`, 400, []string{"players"}},
	} {
		problem := s.must(c.status, "POST", "/v1/games/g1/campaigns/"+id+"/test", c.body)
		require.Equal(t, c.fields, fields(problem), c.body)
	}
	s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+id+"/test", `{"players":`+manyPlayers(50)+`}`)

	// A recurring campaign's test expires as a send made now would: ttl from now.
	daily := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{
		"schedule": map[string]any{"cron": "0 20 * * *", "timezone": "UTC"}, "ttl": "2h"}))["id"].(string)
	before := time.Now()
	env := s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+daily+"/test", `{"players":["qa1"]}`)["envelope"].(map[string]any)
	expires, err := time.Parse(time.RFC3339, env["expires_at"].(string))
	require.NoError(t, err)
	require.WithinRange(t, expires, before.Add(2*time.Hour-time.Second), time.Now().Add(2*time.Hour+time.Second))
	s.must(http.StatusNotFound, "POST", "/v1/games/g1/campaigns/01a214d1-eb0d-78a0-a273-2ad44985fccd/test", `{"players":["qa1"]}`)

	// Testing is writing: a marketing key may not test a marquee.
	marquee := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"kind": "marquee",
		"content": map[string]any{"text": map[string]any{"en": "x"}}, "expires_at": time.Now().Add(time.Hour)}))["id"].(string)
	marketing := s.as(s.newKey(auth.Input{Name: "mkt", Role: auth.RoleMarketing}))
	marketing.must(http.StatusForbidden, "POST", "/v1/games/g1/campaigns/"+marquee+"/test", `{"players":["qa1"]}`)
	marketing.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+id+"/test", `{"players":["qa1"]}`)

	// Without a broker nothing is sent, and nothing audited.
	audited := len(s.auditActions("g1"))
	broker.Stop()
	require.Eventually(t, func() bool { status, _ := s.do("GET", "/readyz", nil); return status == http.StatusServiceUnavailable }, patience, 20*time.Millisecond)
	problem := s.must(http.StatusServiceUnavailable, "POST", "/v1/games/g1/campaigns/"+id+"/test", `{"players":["qa1"]}`)
	require.Contains(t, problem["detail"], "broker")
	require.Len(t, s.auditActions("g1"), audited)
}

// manyPlayers is a JSON array of n player ids.
func manyPlayers(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"qa%d"`, i)
	}
	return "[" + strings.Join(ids, ",") + "]"
}
