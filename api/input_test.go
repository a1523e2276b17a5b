package api_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBooleanQueryFlags: ?dry_run= means what it says in any case, and anything
// that is not a clear true or false is refused before anything is stored or sent.
func TestBooleanQueryFlags(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	later := notice(map[string]any{"schedule": map[string]any{"at": time.Now().Add(time.Hour)}})
	for _, yes := range []string{"true", "TRUE", "True", "1"} {
		preview := s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns?dry_run="+yes, later)
		require.Contains(t, preview, "plan", "dry_run=%s is a dry run", yes)
	}
	for _, bad := range []string{"yes", "on", "", "2", "tru", "true&dry_run=false", "%00"} {
		problem := s.must(http.StatusUnprocessableEntity, "POST", "/v1/games/g1/campaigns?dry_run="+bad, later)
		require.Equal(t, []string{"dry_run"}, fields(problem), "dry_run=%s", bad)
	}
	require.Empty(t, s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns", nil)["items"], "nothing was stored")
	for _, no := range []string{"false", "FALSE", "0"} {
		c := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns?dry_run="+no, later)
		require.Equal(t, "scheduled", c["status"])
		s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+c["id"].(string)+"/cancel", nil)
	}
}

// TestTimesOutOfRange: every timestamp a caller gives is refused with 422 naming
// it unless it lies in 2000-2100 UTC, and no answer is a success with a lost body.
func TestTimesOutOfRange(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	for _, at := range []string{"9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+01:00", "1999-12-31T23:59:59Z", "2101-01-01T00:00:00Z", "next week"} {
		problem := s.must(http.StatusUnprocessableEntity, "POST", "/v1/api-keys", map[string]any{"name": "k", "role": "service", "expires_at": at})
		require.Equal(t, []string{"expires_at"}, fields(problem), at)
		problem = s.must(http.StatusUnprocessableEntity, "GET", "/v1/audit?since="+url.QueryEscape(at), nil)
		require.Equal(t, []string{"since"}, fields(problem), at)
	}
	created := s.must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": "k", "role": "service", "expires_at": "2100-12-31T23:59:59Z"})
	require.NotEmpty(t, created["secret"])
	require.Len(t, s.must(http.StatusOK, "GET", "/v1/api-keys", nil)["items"], 2)

	c := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"schedule": map[string]any{"at": time.Now().Add(time.Hour)}}))
	path := "/v1/games/g1/campaigns/" + c["id"].(string)
	for field, body := range map[string]map[string]any{
		"schedule.at": {"schedule": map[string]any{"at": "0000-01-01T00:00:00+01:00"}},
		"starts_at":   {"starts_at": "9999-12-31T23:59:59-23:59"},
		"expires_at":  {"expires_at": "2150-01-01T00:00:00Z"},
	} {
		problem := s.must(http.StatusUnprocessableEntity, "PATCH", path, body)
		require.Equal(t, []string{field}, fields(problem))
	}
	s.must(http.StatusOK, "POST", path+"/cancel", nil)

	// A row written before these checks existed cannot be encoded: the answer is
	// a 500 problem, never a 200 with an empty body.
	_, err := s.db.Exec(context.Background(), `UPDATE api_keys SET expires_at = '10000-01-01T00:00:00Z' WHERE name = 'k'`)
	require.NoError(t, err)
	s.must(http.StatusInternalServerError, "GET", "/v1/api-keys", nil)
}

// TestTextMustBeStorableAndPrintable: NUL, control characters and invalid UTF-8
// in names, path ids and query parameters answer 422 naming the field; none
// reaches Postgres (which would answer 500) or a terminal.
func TestTextMustBeStorableAndPrintable(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	seg := s.must(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "s", "rule": map[string]any{"members": true}})
	segPath := "/v1/games/g1/segments/" + seg["id"].(string)
	game := func(name string) map[string]any {
		return map[string]any{"id": "g2", "name": name, "default_locale": "en"}
	}
	for _, name := range []string{"a\x00b", "\x1b[2J\x1b[Hgotcha", "ding\a", "over\rwrite", "two\nlines", "tab\tbed", "rlo\u202etxt.exe", "   "} {
		for _, r := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/v1/games", game(name)},
			{"PATCH", "/v1/games/g1", map[string]any{"name": name}},
			{"POST", "/v1/games/g1/segments", map[string]any{"name": name, "rule": map[string]any{"everyone": true}}},
			{"PATCH", segPath, map[string]any{"name": name}},
			{"POST", "/v1/games/g1/campaigns", notice(map[string]any{"name": name})},
			{"POST", "/v1/api-keys", map[string]any{"name": name, "role": "service"}},
		} {
			problem := s.must(http.StatusUnprocessableEntity, r.method, r.path, r.body)
			require.Equal(t, []string{"name"}, fields(problem), "%s %s with name %q", r.method, r.path, name)
		}
	}
	for body, field := range map[string]string{
		"{\"id\":\"g2\",\"name\":\"bad\xff\",\"default_locale\":\"en\"}":                                                 "name",
		"{\"id\":\"g2\",\"name\":\"G\",\"default_locale\":\"en\",\"tags\":{\"region\":{\"values\":[\"eu\",\"n\xc3\"]}}}": "tags.region.values[1]",
		"{\"id\":\"g2\",\"name\":\"G\",\"default_locale\":\"en\",\"tags\":{\"re\xffgion\":{\"values\":[\"eu\"]}}}":       "tags.re\ufffdgion",
	} {
		problem := s.must(http.StatusUnprocessableEntity, "POST", "/v1/games", body)
		require.Equal(t, []string{field}, fields(problem), "%q", body)
	}
	for _, r := range []struct{ method, path, field string }{
		{"GET", "/v1/games/g%001", "game"},
		{"PATCH", "/v1/games/g%1B1", "game"},
		{"GET", "/v1/games/%E2%80%AEg1/segments", "game"},
		{"GET", "/v1/games/g1/segments/%00", "id"},
		{"DELETE", "/v1/api-keys/%07", "id"},
		{"GET", "/v1/games?cursor=a%00", "cursor"},
		{"GET", "/v1/games/g1/segments?cursor=%00", "cursor"},
		{"GET", "/v1/audit?cursor=%00", "cursor"},
		{"GET", "/v1/audit?game=g%001", "game"},
		{"GET", "/v1/audit?game=a/b", "game"},
	} {
		problem := s.must(http.StatusUnprocessableEntity, r.method, r.path, "{}")
		require.Equal(t, []string{r.field}, fields(problem), "%s %s", r.method, r.path)
	}
	s.must(http.StatusNotFound, "GET", "/v1/games/g1/segments/not-a-uuid", nil)

	// Multi-line texts keep their line breaks.
	c := s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns?dry_run=true", notice(map[string]any{
		"content": map[string]any{"title": map[string]any{"en": "t"}, "body": map[string]any{"en": "line 1\r\nline 2\n\tindented"}}}))
	require.Contains(t, c["envelope"].(map[string]any)["content"].(map[string]any)["body"], "en")
}
