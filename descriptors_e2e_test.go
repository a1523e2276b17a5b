package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/protocol"
)

// descriptorOf waits until the broker retains a descriptor of game and returns
// it, decoded.
func (h *herald) descriptorOf(game string) map[string]any {
	h.t.Helper()
	return h.descriptorWhere(game, "any descriptor", func(map[string]any) bool { return true })
}

// descriptorWhere waits until the broker retains a descriptor of game for which
// ok holds, and returns it. Each one it reads must be valid against
// docs/schema/descriptor.schema.json and decode with protocol.DecodeDescriptor.
func (h *herald) descriptorWhere(game, what string, ok func(map[string]any) bool) map[string]any {
	h.t.Helper()
	schema := compileSchema(h.t, "descriptor")
	topic := protocol.DescriptorTopic(h.prefix, game)
	var d map[string]any
	waitFor(h.t, "the retained descriptor of "+game+": "+what, patience, func() bool {
		raw := h.retained(h.prefix + "/" + game + "/#")[topic]
		if raw == "" {
			return false
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(raw)))
		require.NoError(h.t, err)
		require.NoError(h.t, schema.Validate(inst), "%s", raw)
		_, err = protocol.DecodeDescriptor([]byte(raw))
		require.NoError(h.t, err)
		d = nil
		require.NoError(h.t, json.Unmarshal([]byte(raw), &d))
		return ok(d)
	})
	return d
}

// compileSchema compiles docs/schema/{name}.schema.json.
func compileSchema(t testing.TB, name string) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile("docs/schema/" + name + ".schema.json")
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource(name+".schema.json", doc))
	s, err := c.Compile(name + ".schema.json")
	require.NoError(t, err)
	return s
}

// TestDescriptorFollowsTheGame: a game's descriptor is retained once the game
// is created, replaced when its tags change, published once the broker is back
// when the game changed while it was down, and again after the broker lost its
// retained messages (SIGKILL). The broker is private: a restart is the test.
func TestDescriptorFollowsTheGame(t *testing.T) {
	t.Parallel()
	broker := brokertest.Start(t)
	h := startHeraldWith(t, map[string]string{
		"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": broker.URL, "HERALD_TOPIC_PREFIX": randomPrefix(),
	})
	game := h.call(http.StatusCreated, "POST", "/v1/games", map[string]any{
		"id": "g1", "name": "Game", "default_locale": "en",
		"tags": map[string]any{
			"region": map[string]any{"values": []string{"eu", "na"}},
			"level":  map[string]any{"bands": [][2]int{{1, 9}, {10, 19}}},
		},
	})
	d := h.descriptorOf("g1")
	updated, err := time.Parse(time.RFC3339Nano, game["updated_at"].(string))
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"v": 1.0, "game": "g1", "prefix": h.prefix, "default_locale": "en",
		"tags": map[string]any{
			"region": map[string]any{"values": []any{"eu", "na"}},
			"level":  map[string]any{"bands": []any{[]any{1.0, 9.0}, []any{10.0, 19.0}}},
		},
		"updated_at": updated.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano),
	}, d)

	h.call(http.StatusOK, "PATCH", "/v1/games/g1", map[string]any{
		"tags": map[string]any{
			"region": map[string]any{"values": []string{"eu", "na", "asia"}},
			"level":  map[string]any{"bands": [][2]int{{1, 9}, {10, 19}}},
		},
	})
	h.descriptorWhere("g1", "the new region asia", func(d map[string]any) bool {
		return len(d["tags"].(map[string]any)["region"].(map[string]any)["values"].([]any)) == 3
	})

	// SIGKILL: Mosquitto saved nothing, the descriptor is lost with the rest;
	// the retained-store guard notices, and it is published again.
	h.waitForSentinel()
	broker.Kill()
	broker.Start()
	h.descriptorWhere("g1", "back after the broker lost it", func(d map[string]any) bool {
		return len(d["tags"].(map[string]any)["region"].(map[string]any)["values"].([]any)) == 3
	})

	// Stopped cleanly (its retained store saved), the broker is down while the
	// game changes: the descriptor goes out once it is back.
	broker.Stop()
	h.call(http.StatusOK, "PATCH", "/v1/games/g1", map[string]any{"default_locale": "zh-CN"})
	broker.Start()
	h.descriptorWhere("g1", "the default locale changed while the broker was down", func(d map[string]any) bool {
		return d["default_locale"] == "zh-CN"
	})
	require.GreaterOrEqual(t, h.metric("herald_descriptors_published_total"), 3.0)
}
