package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPlanPreview(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	plan := func(body string) map[string]any {
		return s.must(http.StatusOK, "POST", "/v1/games/g1/plan", body)
	}

	got := plan(`{"rule":{"tag":"level","between":[10,29]}}`)
	require.Equal(t, map[string]any{"exact": true, "topics": 2.0, "players": nil,
		"players_note": "unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them",
		"targets": []any{
			map[string]any{"topic": "herald/g1/tag/level/10-19"},
			map[string]any{"topic": "herald/g1/tag/level/20-29"},
		}}, got, "bands covering the range exactly need no filter")

	got = plan(`{"rule":{"and":[{"tag":"region","in":["eu"]},{"not":{"server":["s9"]}}]}}`)
	require.Equal(t, false, got["exact"])
	require.Equal(t, []any{map[string]any{"topic": "herald/g1/tag/region/eu", "filter": map[string]any{"not": map[string]any{"server": []any{"s9"}}}}}, got["targets"])

	for body, note := range map[string]string{
		`{"rule":{"everyone":true}}`:                                     "unknown: the plan publishes to all topics",
		`{"rule":{"server":["s1","s2"]}}`:                                "unknown: the plan publishes to server topics",
		`{"rule":{"or":[{"everyone":true},{"not":{"players":["p1"]}}]}}`: "unknown: the plan publishes to all topics",
		`{"rule":{"or":[{"server":["s1"]},{"players":["p1"]}]}}`:         "unknown: the plan publishes to server topics",
	} {
		got = plan(body)
		require.Nil(t, got["players"], "%s: nobody counts the subscribers of a broadcast topic", body)
		require.Contains(t, got["players_note"], note, body)
	}

	got = plan(`{"rule":{"or":[{"players":["p2","p1"]},{"players":["p1"]}]}}`)
	require.Equal(t, map[string]any{"exact": true, "topics": 2.0, "players": 2.0, "targets": []any{
		map[string]any{"topic": "herald/g1/player/p1"},
		map[string]any{"topic": "herald/g1/player/p2"},
	}}, got, "an or of player lists is de-duplicated")

	seg := s.must(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "whales", "rule": map[string]any{
		"and": []any{map[string]any{"members": true}, map[string]any{"tag": "region", "in": []string{"na"}}}}})
	s.must(http.StatusOK, "PUT", "/v1/games/g1/segments/"+seg["id"].(string)+"/members", "w1\nw2\nw3\n")
	got = plan(`{"segment_id":"` + seg["id"].(string) + `"}`)
	require.Equal(t, map[string]any{"exact": false, "topics": 3.0, "players": 3.0,
		"players_note": "at most: clients that do not match the filter drop the message", "targets": []any{
			map[string]any{"topic": "herald/g1/player/{member}", "members": true, "filter": map[string]any{"tag": "region", "in": []any{"na"}}},
		}}, got)
}

func TestPlanPreviewRefusals(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	for _, c := range []struct {
		name, body string
		status     int
		fields     []string
	}{
		{"neither", `{}`, 422, []string{"segment_id", "rule"}},
		{"both", `{"segment_id":"01a214d1-eb0d-78a0-a273-2ad44985fccd","rule":{"everyone":true}}`, 422, []string{"segment_id", "rule"}},
		{"inline members", `{"rule":{"members":true}}`, 422, []string{"rule"}},
		{"undeclared value", `{"rule":{"tag":"region","in":["mars"]}}`, 422, []string{"rule.in[0]"}},
		{"bad segment id", `{"segment_id":"nope"}`, 422, []string{"segment_id"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, problem := s.do("POST", "/v1/games/g1/plan", c.body)
			require.Equal(t, c.status, status, "%v", problem)
			require.Equal(t, c.fields, fields(problem))
		})
	}
	s.must(http.StatusNotFound, "POST", "/v1/games/g1/plan", `{"segment_id":"01a214d1-eb0d-78a0-a273-2ad44985fccd"}`)
	s.must(http.StatusNotFound, "POST", "/v1/games/nope/plan", `{"rule":{"everyone":true}}`)
}

// TestOpenAPIPlanExampleIsARealAnswer: the Plan example in openapi.yaml is what
// Herald answers for the README's "eu veterans" segment, word for word.
func TestOpenAPIPlanExampleIsARealAnswer(t *testing.T) {
	t.Parallel()
	spec, err := os.ReadFile("../openapi.yaml")
	require.NoError(t, err)
	_, plan, ok := strings.Cut(string(spec), "\n    Plan:\n")
	require.True(t, ok, "openapi.yaml has a Plan schema")
	_, example, ok := strings.Cut(plan, "\n      example: ")
	require.True(t, ok, "the Plan schema has an example")
	example, _, _ = strings.Cut(example, "\n")
	var want map[string]any
	require.NoError(t, json.Unmarshal([]byte(example), &want), "the example is written as JSON: %s", example)

	s := newTestServer(t)
	s.createGame("g1")
	got := s.must(http.StatusOK, "POST", "/v1/games/g1/plan",
		`{"rule":{"and":[{"tag":"region","in":["eu"]},{"tag":"level","between":[25,39]}]}}`)
	require.Equal(t, want, got)
}
