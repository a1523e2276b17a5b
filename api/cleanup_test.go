package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/api"
	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/segments"
)

// auditActions returns the actions of the audit rows of game, oldest first.
func (s *testServer) auditActions(game string) []string {
	s.t.Helper()
	var out []string
	for _, r := range s.must(http.StatusOK, "GET", "/v1/audit?game="+game, nil)["items"].([]any) {
		out = append(out, r.(map[string]any)["action"].(string))
	}
	return out
}

// ids returns the ids of a page's items.
func ids(page map[string]any) []string {
	var out []string
	for _, it := range page["items"].([]any) {
		out = append(out, it.(map[string]any)["id"].(string))
	}
	return out
}

func TestFinishedCampaignsCanBeDeleted(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	later := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{
		"name": "later", "schedule": map[string]any{"at": time.Now().Add(time.Hour)}}))["id"].(string)
	now := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"name": "now"}))["id"].(string)

	problem := s.must(http.StatusConflict, "DELETE", "/v1/games/g1/campaigns/"+later, nil)
	require.Contains(t, problem["detail"], "it is scheduled", "the refusal says why")
	problem = s.must(http.StatusConflict, "DELETE", "/v1/games/g1/campaigns/"+now, nil)
	require.Contains(t, problem["detail"], "it is live")

	s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+later+"/cancel", nil)
	s.must(http.StatusNoContent, "DELETE", "/v1/games/g1/campaigns/"+later, nil)
	require.Equal(t, []string{now}, ids(s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns", nil)), "a deleted campaign is no longer listed")
	require.Equal(t, []string{later, now}, ids(s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns?archived=true", nil)))
	require.Empty(t, ids(s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns?status=canceled", nil)))
	require.Equal(t, []string{later}, ids(s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns?status=canceled&archived=1", nil)))
	got := s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+later, nil)
	require.NotEmpty(t, got["archived_at"], "it is kept, and read by its id")
	require.Equal(t, "canceled", got["status"])
	s.must(http.StatusNoContent, "DELETE", "/v1/games/g1/campaigns/"+later, nil) // again: nothing changes
	require.Equal(t, []string{"game.create", "campaign.create", "campaign.create", "campaign.cancel", "campaign.delete"}, s.auditActions("g1"))

	bad := s.must(http.StatusUnprocessableEntity, "GET", "/v1/games/g1/campaigns?archived=yes", nil)
	require.Equal(t, []string{"archived"}, fields(bad))
	s.must(http.StatusNotFound, "DELETE", "/v1/games/g1/campaigns/01a214d1-eb0d-78a0-a273-2ad44985fccd", nil)

	// Deleting is writing: a marketing key may not delete a marquee.
	marquee := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"kind": "marquee",
		"content": map[string]any{"text": map[string]any{"en": "x"}}, "expires_at": time.Now().Add(time.Hour)}))["id"].(string)
	s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+marquee+"/cancel", nil)
	marketing := s.as(s.newKey(auth.Input{Name: "mkt", Role: auth.RoleMarketing}))
	marketing.must(http.StatusForbidden, "DELETE", "/v1/games/g1/campaigns/"+marquee, nil)
	s.must(http.StatusNoContent, "DELETE", "/v1/games/g1/campaigns/"+marquee, nil)
}

func TestSegmentCanBeDeletedOnceItsCampaignsAreFinished(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	seg := s.newMemberSegment("g1")
	s.must(http.StatusOK, "PUT", "/v1/games/g1/segments/"+seg+"/members", "w1\nw2\n")
	audience := map[string]any{"segment_id": seg}
	c := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"audience": audience,
		"schedule": map[string]any{"at": time.Now().Add(time.Hour)}}))["id"].(string)

	problem := s.must(http.StatusConflict, "DELETE", "/v1/games/g1/segments/"+seg, nil)
	require.Contains(t, problem["detail"], c, "the refusal names the campaign in the way")
	require.Contains(t, problem["detail"], "scheduled")

	s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+c+"/cancel", nil)
	s.must(http.StatusNoContent, "DELETE", "/v1/games/g1/segments/"+seg, nil)
	s.must(http.StatusNotFound, "GET", "/v1/games/g1/segments/"+seg, nil)
	s.must(http.StatusNotFound, "DELETE", "/v1/games/g1/segments/"+seg, nil)
	s.must(http.StatusNotFound, "PUT", "/v1/games/g1/segments/"+seg+"/members", "w3\n")
	require.Empty(t, s.must(http.StatusOK, "GET", "/v1/games/g1/segments", nil)["items"])
	s.must(http.StatusNotFound, "POST", "/v1/games/g1/plan", map[string]any{"segment_id": seg})
	refused := s.must(http.StatusUnprocessableEntity, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"audience": audience}))
	require.Equal(t, []string{"audience.segment_id"}, fields(refused), "a deleted segment is no audience")
	finished := s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+c, nil)
	require.Equal(t, audience, finished["audience"], "the finished campaign still says who it was for")

	// Its member list is retired, and purged once no dispatch needs it (this
	// campaign was never sent).
	kept := func() (n int) {
		require.NoError(t, s.db.QueryRow(context.Background(), `
			SELECT count(*) FROM segment_members m JOIN member_lists l ON l.id = m.list_id
			WHERE l.segment_id = $1 AND l.retired_at IS NOT NULL`, seg).Scan(&n))
		return n
	}
	require.Equal(t, 2, kept())
	purged, err := segments.NewStore(s.db).PurgeRetiredLists(context.Background(), dispatch.NewStore(s.db).ListsInUse)
	require.NoError(t, err)
	require.EqualValues(t, 1, purged)
	require.Zero(t, kept())
	require.Equal(t, "segment.delete", s.auditActions("g1")[len(s.auditActions("g1"))-1])

	// A canceled campaign whose dispatch is still clearing its players' topics
	// (no worker runs here) lets the segment go, but keeps its list until then.
	busy := s.newMemberSegment("g1")
	s.must(http.StatusOK, "PUT", "/v1/games/g1/segments/"+busy+"/members", "b1\n")
	sent := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{
		"audience": map[string]any{"segment_id": busy}}))["id"].(string)
	s.must(http.StatusConflict, "DELETE", "/v1/games/g1/segments/"+busy, nil)
	s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+sent+"/cancel", nil)
	s.must(http.StatusNoContent, "DELETE", "/v1/games/g1/segments/"+busy, nil)
	purged, err = segments.NewStore(s.db).PurgeRetiredLists(context.Background(), dispatch.NewStore(s.db).ListsInUse)
	require.NoError(t, err)
	require.Zero(t, purged, "the recall still needs the list")
}

func TestArchivedGameAnswers410UntilUnarchived(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	s.createGame("g2")
	seg := s.must(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "all", "rule": map[string]any{"everyone": true}})["id"].(string)
	c := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(nil))["id"].(string)

	problem := s.must(http.StatusConflict, "POST", "/v1/games/g1/archive", nil)
	require.Contains(t, problem["detail"], c, "the refusal names the campaign that is not finished")
	s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+c+"/cancel", nil)
	archived := s.must(http.StatusOK, "POST", "/v1/games/g1/archive", nil)
	require.NotEmpty(t, archived["archived_at"])
	again := s.must(http.StatusOK, "POST", "/v1/games/g1/archive", nil)
	require.Equal(t, archived["archived_at"], again["archived_at"], "archiving again changes nothing")

	require.Equal(t, []string{"g2"}, ids(s.must(http.StatusOK, "GET", "/v1/games", nil)), "an archived game is not listed")
	require.Equal(t, []string{"g1", "g2"}, ids(s.must(http.StatusOK, "GET", "/v1/games?archived=true", nil)))
	require.NotEmpty(t, s.must(http.StatusOK, "GET", "/v1/games/g1", nil)["archived_at"], "it can still be read")
	// Every route under the game, walked from the router's own list, so that a
	// route added later is held to it too; only reading the game and
	// (un)archiving it stay open.
	open := map[string]bool{"GET /v1/games/{game}": true, "POST /v1/games/{game}/archive": true, "POST /v1/games/{game}/unarchive": true}
	paths := strings.NewReplacer("{game}", "g1", "segments/{id}", "segments/"+seg, "campaigns/{id}", "campaigns/"+c,
		"{id}", uuid.NewString(), "{dispatch}", uuid.NewString())
	walked := 0
	for route := range api.New(api.Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Permissions() {
		method, pattern, _ := strings.Cut(route, " ")
		if !strings.HasPrefix(pattern, "/v1/games/{game}") || open[route] {
			continue
		}
		problem := s.must(http.StatusGone, method, paths.Replace(pattern), "{}")
		require.Contains(t, problem["detail"], "unarchive", "%s says how to get it back", route)
		walked++
	}
	require.GreaterOrEqual(t, walked, 20, "the walk reached the routes under a game")
	s.must(http.StatusNotFound, "GET", "/v1/games/nope/campaigns", nil)

	s.must(http.StatusOK, "POST", "/v1/games/g1/unarchive", nil)
	require.Equal(t, []string{"g1", "g2"}, ids(s.must(http.StatusOK, "GET", "/v1/games", nil)))
	s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+c, nil)
	s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(nil))
	require.Equal(t, []string{"game.create", "segment.create", "campaign.create", "campaign.cancel", "game.archive",
		"game.unarchive", "campaign.create"}, s.auditActions("g1"))

	// A key limited to other games does not learn that g1 exists.
	g2only := s.as(s.newKey(auth.Input{Name: "g2", Role: auth.RoleOperator, Games: []string{"g2"}}))
	g2only.must(http.StatusNotFound, "POST", "/v1/games/g1/archive", nil)
}
