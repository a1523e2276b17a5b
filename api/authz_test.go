package api_test

import (
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/api"
	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/valid"
)

// TestEveryRouteHasAPermission fails for a /v1 route registered without a rule.
func TestEveryRouteHasAPermission(t *testing.T) {
	srv := api.New(api.Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	perms := srv.Permissions()
	require.NotEmpty(t, perms)
	err := chi.Walk(srv.Handler().(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, "/v1") {
			_, ok := perms[method+" "+strings.TrimSuffix(route, "/")]
			require.True(t, ok, "%s %s has no permission rule", method, route)
		}
		return nil
	})
	require.NoError(t, err)
}

// TestRolesAreRefusedWhatTheyMayNotDo calls every /v1 route with a key of each
// role: a route the role may not use answers 403, one it may use does not.
func TestRolesAreRefusedWhatTheyMayNotDo(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	srv := api.New(api.Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	const someID = "01a214d1-eb0d-78a0-a273-2ad44985fccd"
	require.Len(t, srv.Permissions(), 31, "every /v1 route")
	for _, role := range []auth.Role{auth.RoleOperator, auth.RoleMarketing, auth.RoleService, auth.RoleAdmin} {
		as := s.as(s.newKey(auth.Input{Name: string(role), Role: role}))
		for route, perm := range srv.Permissions() {
			method, path, _ := strings.Cut(route, " ")
			path = strings.NewReplacer("{game}", "g1", "{id}", someID).Replace(path)
			status, problem := as.do(method, path, "{}")
			if role.Can(perm) {
				require.NotContains(t, []int{401, 403}, status, "%s may %s: %v", role, route, problem)
			} else {
				require.Equal(t, http.StatusForbidden, status, "%s may not %s: %v", role, route, problem)
			}
		}
	}
}

func TestMarketingSendsNoMarquee(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	marketing := s.as(s.newKey(auth.Input{Name: "mkt", Role: auth.RoleMarketing}))
	expires := time.Now().Add(time.Hour)
	marquee := notice(map[string]any{"kind": "marquee", "content": map[string]any{"text": map[string]any{"en": "x"}}, "expires_at": expires})
	marketing.must(http.StatusForbidden, "POST", "/v1/games/g1/campaigns", marquee)
	marketing.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(nil))
	stored := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", marquee) // an admin may
	marketing.must(http.StatusForbidden, "POST", "/v1/games/g1/campaigns/"+stored["id"].(string)+"/cancel", nil)
	marketing.must(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+stored["id"].(string), nil)
}

func TestScopedKeysSeeOnlyTheirGames(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	s.createGame("g2")
	scoped := s.as(s.newKey(auth.Input{Name: "g1 ops", Role: auth.RoleOperator, Games: []string{"g1"}}))
	items := scoped.must(http.StatusOK, "GET", "/v1/games", nil)["items"].([]any)
	require.Len(t, items, 1)
	require.Equal(t, "g1", items[0].(map[string]any)["id"])
	scoped.must(http.StatusOK, "GET", "/v1/games/g1", nil)
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/games/g2"}, {"PATCH", "/v1/games/g2"}, {"GET", "/v1/games/g2/segments"},
		{"POST", "/v1/games/g2/campaigns"}, {"POST", "/v1/games/g2/plan"},
	} {
		problem := scoped.must(http.StatusNotFound, r.method, r.path, "{}")
		require.Equal(t, "no such game", problem["detail"], "the same answer as for a game that does not exist")
	}
	scoped.must(http.StatusForbidden, "POST", "/v1/games", map[string]any{"id": "g3", "name": "G3", "default_locale": "en"})
}

func TestKeysThatDoNotAuthenticate(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	created := s.must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": "ci", "role": "operator"})
	secret := created["secret"].(string)
	require.True(t, strings.HasPrefix(secret, "hk_"))
	require.GreaterOrEqual(t, len(secret), 3+32+1+43, "256 random bits")
	s.as(secret).must(http.StatusOK, "GET", "/v1/games", nil)

	listed := s.must(http.StatusOK, "GET", "/v1/api-keys", nil)["items"].([]any)
	require.Len(t, listed, 2)
	for _, k := range listed {
		require.NotContains(t, k, "secret", "a key's secret is shown once")
	}

	short := s.newKey(auth.Input{Name: "short-lived", Role: auth.RoleAdmin, ExpiresAt: &valid.Time{Time: time.Now().Add(time.Second)}})
	s.as(short).must(http.StatusOK, "GET", "/v1/games", nil)

	for name, key := range map[string]string{
		"none": "", "garbage": "hello", "wrong secret": secret[:len(secret)-4] + "AAAA",
		"unknown id": "hk_00000000000000000000000000000000_" + secret[36:],
	} {
		problem := s.as(key).must(http.StatusUnauthorized, "GET", "/v1/games", nil)
		require.NotContains(t, problem["detail"], secret[36:], name)
	}
	s.must(http.StatusNoContent, "DELETE", "/v1/api-keys/"+created["id"].(string), nil)
	s.as(secret).must(http.StatusUnauthorized, "GET", "/v1/games", nil)
	s.must(http.StatusNotFound, "DELETE", "/v1/api-keys/01a214d1-eb0d-78a0-a273-2ad44985fccd", nil)

	time.Sleep(time.Until(time.Now().Add(1100 * time.Millisecond))) // let the short-lived key expire
	s.as(short).must(http.StatusUnauthorized, "GET", "/v1/games", nil)

	bad := s.must(http.StatusUnprocessableEntity, "POST", "/v1/api-keys", map[string]any{"name": "", "role": "root", "games": []string{"a/b"}})
	require.Equal(t, []string{"name", "role", "games[0]"}, fields(bad))
	s.must(http.StatusOK, "GET", "/healthz", nil)
}

func TestRateLimitPerKey(t *testing.T) {
	t.Parallel()
	s := newTestServerWith(t, brokerURL(), 0.01, 3, nil) // a token every 100 s: no refill during the test
	other := s.as(s.newKey(auth.Input{Name: "other", Role: auth.RoleAdmin}))
	for range 3 {
		s.must(http.StatusOK, "GET", "/v1/games", nil)
	}
	req, err := http.NewRequest("GET", s.url+"/v1/games", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, retry, 1)
	other.must(http.StatusOK, "GET", "/v1/games", nil) // each key has its own bucket
}

func TestAuditLogRecordsEveryChangeWithItsActor(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	ops := s.as(s.newKey(auth.Input{Name: "alice (ops)", Role: auth.RoleOperator}))
	ops.createGame("g1")
	ops.must(http.StatusOK, "PATCH", "/v1/games/g1", map[string]any{"name": "renamed"})
	seg := ops.must(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "s", "rule": map[string]any{"members": true}})
	segPath := "/v1/games/g1/segments/" + seg["id"].(string)
	ops.must(http.StatusOK, "PUT", segPath+"/members", "p1\np2\n")
	ops.must(http.StatusOK, "PATCH", segPath, map[string]any{"name": "t"})
	c := ops.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(nil))
	ops.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+c["id"].(string)+"/cancel", nil)
	ops.must(http.StatusNoContent, "DELETE", segPath, nil)
	ops.must(http.StatusUnprocessableEntity, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"priority": 99}))
	ops.must(http.StatusOK, "POST", "/v1/games/g1/campaigns?dry_run=true", notice(nil))
	key := s.must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": "bob", "role": "service"})
	s.must(http.StatusNoContent, "DELETE", "/v1/api-keys/"+key["id"].(string), nil)

	var actions, actors []string
	cursor := ""
	for {
		page := s.must(http.StatusOK, "GET", "/v1/audit?limit=4&cursor="+cursor, nil)
		for _, row := range page["items"].([]any) {
			r := row.(map[string]any)
			if r["key_name"] == "test setup" {
				continue // the keys this test made directly in the store
			}
			actions = append(actions, r["action"].(string))
			actors = append(actors, r["key_name"].(string))
		}
		next, ok := page["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = next
	}
	require.Equal(t, []string{"game.create", "game.update", "segment.create", "segment.members.replace", "segment.update",
		"campaign.create", "campaign.cancel", "segment.delete", "api_key.create", "api_key.revoke"}, actions,
		"one row per change; refused changes and dry runs leave none")
	require.Equal(t, []string{"alice (ops)", "alice (ops)", "alice (ops)", "alice (ops)", "alice (ops)", "alice (ops)",
		"alice (ops)", "alice (ops)", "test admin", "test admin"}, actors)

	g1 := s.must(http.StatusOK, "GET", "/v1/audit?game=g1", nil)["items"].([]any)
	require.Len(t, g1, 8)
	future := s.must(http.StatusOK, "GET", "/v1/audit?since="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), nil)
	require.Empty(t, future["items"])
	bad := s.must(http.StatusUnprocessableEntity, "GET", "/v1/audit?since=yesterday", nil)
	require.Equal(t, []string{"since"}, fields(bad))
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.must(http.StatusOK, "GET", "/v1/games", nil)
	resp, err := http.Get(s.url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `herald_http_requests_total{code="200",method="GET",route="/v1/games"}`)
}
