package main

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	sdk "github.com/heraldpush/herald/client"
	"github.com/heraldpush/herald/internal/brokertest"
)

// TestOperatorGuardrailsEndToEnd runs an operator's day against a real Herald
// and a game client on the Go SDK: a send to everyone needs a dry run and a
// confirmed send, a test reaches one QA device marked as a test and nothing
// else, a recalled campaign is deleted, and the game archived.
func TestOperatorGuardrailsEndToEnd(t *testing.T) {
	t.Parallel()
	h := startHeraldInProcess(t, brokertest.Start(t).URL)
	h.createGame()
	h.call(http.StatusOK, "PATCH", "/v1/games/g1", map[string]any{"confirm_over": 10})

	var mu sync.Mutex
	got := map[string]sdk.Message{}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	qa, err := sdk.Connect(ctx, sdk.Options{Broker: h.broker, Game: "g1", Player: "qa1", Prefix: h.prefix, Locale: "en",
		OnMessage: func(m sdk.Message) {
			mu.Lock()
			defer mu.Unlock()
			got[m.Campaign] = m
		}})
	require.NoError(t, err)
	t.Cleanup(qa.Close)
	message := func(campaign string) (sdk.Message, bool) {
		mu.Lock()
		defer mu.Unlock()
		m, ok := got[campaign]
		return m, ok
	}

	// A message to the QA player alone needs no confirmation (1 player), and
	// shows that its subscriptions are in place: a test is not retained.
	hello := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "notice", "name": "hello", "audience": map[string]any{"rule": map[string]any{"players": []string{"qa1"}}},
		"content": map[string]any{"title": map[string]any{"en": "Hello"}, "body": map[string]any{"en": "QA"}},
	})["id"].(string)
	waitFor(t, "the QA player's notice", patience, func() bool { _, ok := message(hello); return ok })

	everyone := map[string]any{
		"kind": "marquee", "name": "maintenance", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
		"content":    map[string]any{"text": map[string]any{"en": "Maintenance at 10:00 UTC"}},
		"schedule":   map[string]any{"at": time.Now().Add(time.Hour)},
		"expires_at": time.Now().Add(2 * time.Hour),
	}
	refused := h.call(http.StatusConflict, "POST", "/v1/games/g1/campaigns", everyone)
	require.Nil(t, refused["plan"].(map[string]any)["players"], "the whole game cannot be counted")
	preview := h.call(http.StatusOK, "POST", "/v1/games/g1/campaigns?dry_run=true", everyone)
	everyone["confirm_audience"] = preview["confirm_audience"]
	id := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", everyone)["id"].(string)

	sent := h.call(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+id+"/test", map[string]any{"players": []string{"qa1"}})
	waitFor(t, "the test on the QA device", patience, func() bool { _, ok := message(id); return ok })
	m, _ := message(id)
	require.True(t, m.Test, "the game is told it is a test")
	require.Equal(t, sent["id"], m.ID)
	require.Equal(t, "Maintenance at 10:00 UTC", qa.Text(m.Marquee.Text))
	require.Empty(t, h.onlyRetained(h.prefix+"/g1/all/#"), "the campaign itself was not sent")
	require.Len(t, h.onlyRetained(h.prefix+"/g1/player/#"), 1, "only the notice is retained, not the test")
	require.Empty(t, h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+id, nil)["dispatches"])

	// Clean up: recall and delete both, then archive the game.
	h.call(http.StatusConflict, "POST", "/v1/games/g1/archive", nil)
	for _, c := range []string{hello, id} {
		h.call(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+c+"/cancel", nil)
		h.call(http.StatusNoContent, "DELETE", "/v1/games/g1/campaigns/"+c, nil)
	}
	require.Empty(t, h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns", nil)["items"])
	require.Len(t, h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns?archived=true", nil)["items"], 2)
	waitFor(t, "the notice recalled", patience, func() bool { return h.dispatch(hello)["state"] == "recalled" })
	h.call(http.StatusOK, "POST", "/v1/games/g1/archive", nil)
	h.call(http.StatusGone, "GET", "/v1/games/g1/campaigns", nil)
	require.Empty(t, h.call(http.StatusOK, "GET", "/v1/games", nil)["items"])
}
