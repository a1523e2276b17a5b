package api_test

import (
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/api"
	"github.com/heraldpush/herald/auth"
)

// TestScopedAdminStaysInsideItsGames walks every /v1 route without {game} in its
// path (routes with one answer 404 for other games, see
// TestScopedKeysSeeOnlyTheirGames) and checks that an admin key limited to some
// games neither sees nor changes anything outside them. A new route without
// {game} fails this test until it gets a check here.
func TestScopedAdminStaysInsideItsGames(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("gA")
	s.createGame("gB")
	ids := map[string]string{}
	for name, games := range map[string][]string{"wide": nil, "b-only": {"gB"}, "a-and-b": {"gA", "gB"}, "a-only": {"gA"}} {
		created := s.must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": name, "role": "operator", "games": games})
		ids[name] = created["id"].(string)
	}
	scoped := s.as(s.newKey(auth.Input{Name: "scoped admin", Role: auth.RoleAdmin, Games: []string{"gA", "gC"}}))

	keyNames := func(as *testServer) []string {
		var names []string
		for _, k := range as.must(http.StatusOK, "GET", "/v1/api-keys", nil)["items"].([]any) {
			names = append(names, k.(map[string]any)["name"].(string))
		}
		return names
	}
	checks := map[string]func(t *testing.T){
		"POST /v1/games": func(t *testing.T) {
			scoped.must(http.StatusForbidden, "POST", "/v1/games", map[string]any{"id": "gD", "name": "D", "default_locale": "en"})
			scoped.must(http.StatusCreated, "POST", "/v1/games", map[string]any{"id": "gC", "name": "C", "default_locale": "en"})
		},
		"GET /v1/games": func(t *testing.T) {
			var seen []string
			for _, g := range scoped.must(http.StatusOK, "GET", "/v1/games", nil)["items"].([]any) {
				seen = append(seen, g.(map[string]any)["id"].(string))
			}
			require.Contains(t, seen, "gA")
			require.Subset(t, []string{"gA", "gC"}, seen)
		},
		"POST /v1/api-keys": func(t *testing.T) {
			for _, games := range [][]string{nil, {"gB"}, {"gA", "gB"}} {
				problem := scoped.must(http.StatusForbidden, "POST", "/v1/api-keys", map[string]any{"name": "x", "role": "admin", "games": games})
				require.Equal(t, []string{"games"}, fields(problem))
			}
			created := scoped.must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": "made by scoped", "role": "admin", "games": []string{"gA"}})
			require.Equal(t, []any{"gA"}, created["games"])
			s.as(created["secret"].(string)).must(http.StatusNotFound, "GET", "/v1/games/gB", nil)
		},
		"GET /v1/api-keys": func(t *testing.T) {
			for _, name := range keyNames(scoped) {
				require.Contains(t, []string{"a-only", "scoped admin", "made by scoped"}, name)
			}
			require.Contains(t, keyNames(scoped), "a-only")
			require.Subset(t, keyNames(s), []string{"wide", "b-only", "a-and-b", "a-only", "scoped admin", "test admin"}, "an unlimited admin sees every key")
		},
		"DELETE /v1/api-keys/{id}": func(t *testing.T) {
			for _, name := range []string{"wide", "b-only", "a-and-b"} {
				scoped.must(http.StatusNotFound, "DELETE", "/v1/api-keys/"+ids[name], nil)
			}
			require.Subset(t, keyNames(s), []string{"wide", "b-only", "a-and-b"})
			for _, k := range s.must(http.StatusOK, "GET", "/v1/api-keys", nil)["items"].([]any) {
				require.NotContains(t, k, "revoked_at", "nothing outside the scope was revoked")
			}
			scoped.must(http.StatusNoContent, "DELETE", "/v1/api-keys/"+ids["a-only"], nil)
		},
		"GET /v1/audit": func(t *testing.T) {
			scoped.must(http.StatusNotFound, "GET", "/v1/audit?game=gB", nil)
			var seenKeyRow bool
			for _, row := range scoped.must(http.StatusOK, "GET", "/v1/audit?limit=500", nil)["items"].([]any) {
				r := row.(map[string]any)
				if game, ok := r["game"]; ok {
					require.Contains(t, []string{"gA", "gC"}, game, "%v", r)
					continue
				}
				require.Equal(t, "api_key", r["object_type"], "%v", r)
				require.NotContains(t, []string{ids["wide"], ids["b-only"], ids["a-and-b"]}, r["object_id"], "%v", r)
				seenKeyRow = seenKeyRow || r["object_id"] == ids["a-only"]
			}
			require.True(t, seenKeyRow, "the changes of keys within its games are its to see")
			for _, row := range scoped.must(http.StatusOK, "GET", "/v1/audit?game=gA", nil)["items"].([]any) {
				require.Equal(t, "gA", row.(map[string]any)["game"])
			}
		},
	}

	srv := api.New(api.Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var routes []string
	for route := range srv.Permissions() {
		if !strings.Contains(route, "{game}") {
			routes = append(routes, route)
		}
	}
	slices.Sort(routes)
	require.NotEmpty(t, routes)
	for _, route := range routes {
		check, ok := checks[route]
		require.True(t, ok, "%s has no {game} in its path: add a check of what a key limited to some games may do there", route)
		t.Run(route, check)
	}
	s.must(http.StatusOK, "GET", "/v1/games/gB", nil) // the unlimited admin still sees gB
}
