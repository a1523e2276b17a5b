package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGameConfirmOverAsksToConfirmBigSends(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	require.Nil(t, s.must(http.StatusOK, "GET", "/v1/games/g1", nil)["confirm_over"], "unset by default")
	require.Equal(t, 2.0, s.must(http.StatusOK, "PATCH", "/v1/games/g1", map[string]any{"confirm_over": 2})["confirm_over"])
	require.Equal(t, []string{"confirm_over"}, fields(s.must(http.StatusUnprocessableEntity, "PATCH", "/v1/games/g1", map[string]any{"confirm_over": -1})))
	require.Equal(t, []string{"confirm_over"}, fields(s.must(http.StatusBadRequest, "PATCH", "/v1/games/g1", `{"confirm_over":"many"}`)))
	require.Equal(t, 2.0, s.must(http.StatusOK, "PATCH", "/v1/games/g1", map[string]any{"name": "renamed"})["confirm_over"], "a PATCH without it keeps it")

	// Everyone: Herald cannot count the players, so the topic count confirms.
	everyone := notice(nil)
	problem := s.must(http.StatusConflict, "POST", "/v1/games/g1/campaigns", everyone)
	require.Equal(t, 1.0, problem["confirm_audience"])
	require.Equal(t, map[string]any{"exact": true, "topics": 1.0, "players": nil,
		"players_note": "unknown: the plan publishes to all topics, and Herald does not know how many players subscribe to them",
		"targets":      []any{map[string]any{"topic": "herald/g1/all"}}}, problem["plan"], "the problem shows what is to be confirmed")
	require.Contains(t, problem["detail"], `"confirm_audience": 1`)
	require.Empty(t, s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns", nil)["items"], "nothing was stored")

	preview := s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns?dry_run=true", everyone)
	require.Equal(t, true, preview["confirm_required"])
	require.Equal(t, 1.0, preview["confirm_audience"], "the dry run says what to send")
	wrong := s.must(http.StatusConflict, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"confirm_audience": 5}))
	require.Contains(t, wrong["detail"], "does not match")
	s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"confirm_audience": preview["confirm_audience"]}))

	// Named players: their count confirms, and only over confirm_over.
	players := func(ids ...string) map[string]any {
		return map[string]any{"rule": map[string]any{"players": ids}}
	}
	small := s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns?dry_run=1", notice(map[string]any{"audience": players("p1", "p2")}))
	require.Equal(t, false, small["confirm_required"])
	require.Equal(t, 2.0, small["confirm_audience"])
	s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"audience": players("p1", "p2")}))
	big := s.must(http.StatusConflict, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"audience": players("p1", "p2", "p3")}))
	require.Equal(t, 3.0, big["confirm_audience"])
	require.Contains(t, big["detail"], "the plan names 3 players, more than the game's confirm_over of 2")
	s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"audience": players("p1", "p2", "p3"), "confirm_audience": 3}))

	// A member list counts its members.
	seg := s.newMemberSegment("g1")
	s.must(http.StatusOK, "PUT", "/v1/games/g1/segments/"+seg+"/members", "w1\nw2\nw3\nw4\n")
	members := s.must(http.StatusConflict, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"audience": map[string]any{"segment_id": seg}}))
	require.Equal(t, 4.0, members["confirm_audience"])

	// A change keeps its confirmation until it changes the audience.
	at := map[string]any{"at": time.Now().Add(time.Hour)}
	later := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"audience": players("p1"), "schedule": at}))
	path := "/v1/games/g1/campaigns/" + later["id"].(string)
	s.must(http.StatusOK, "PATCH", path, map[string]any{"name": "renamed"})
	s.must(http.StatusConflict, "PATCH", path, map[string]any{"audience": map[string]any{"rule": map[string]any{"tag": "region", "in": []string{"eu"}}}})
	patched := s.must(http.StatusOK, "PATCH", path, map[string]any{"audience": map[string]any{"rule": map[string]any{"tag": "region", "in": []string{"eu"}}}, "confirm_audience": 1})
	require.Equal(t, "renamed", patched["name"])
	s.must(http.StatusOK, "PATCH", path, map[string]any{"priority": 1})

	// Unset, nothing is asked; a game that never set it asks nothing either.
	require.Nil(t, s.must(http.StatusOK, "PATCH", "/v1/games/g1", map[string]any{"confirm_over": nil})["confirm_over"])
	s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", everyone)
	s.createGame("g2")
	s.must(http.StatusCreated, "POST", "/v1/games/g2/campaigns", everyone)
	created := s.must(http.StatusCreated, "POST", "/v1/games", map[string]any{"id": "g3", "name": "G3", "default_locale": "en", "confirm_over": 0})
	require.Equal(t, 0.0, created["confirm_over"])
	require.Equal(t, 1.0, s.must(http.StatusConflict, "POST", "/v1/games/g3/campaigns", notice(map[string]any{"audience": players("p1")}))["confirm_audience"])
}
