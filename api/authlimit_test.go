package api_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/api"
	"github.com/heraldpush/herald/auth"
)

// withAuthFails sizes the bucket of failed authentications per address.
func withAuthFails(perSecond float64, burst int) func(*api.Config) {
	return func(c *api.Config) { c.AuthFailRate, c.AuthFailBurst = perSecond, burst }
}

// status sends a GET /v1/games with the Authorization header auth ("" for none)
// and returns the status and the Retry-After header.
func (s *testServer) status(authorization string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest("GET", s.url+"/v1/games", nil)
	require.NoError(s.t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestFailedAuthenticationsAreLimitedPerAddress: an address that keeps failing
// to authenticate is answered 429 without a database lookup, while keys that
// authenticated recently from anywhere still get through, and are still
// checked: a revoked one stops at once.
func TestFailedAuthenticationsAreLimitedPerAddress(t *testing.T) {
	t.Parallel()
	s := newTestServerWith(t, brokerURL(), 1000, 2000, nil, withAuthFails(0.001, 3)) // no refill during the test
	service := s.newKey(auth.Input{Name: "service", Role: auth.RoleOperator})
	unused := s.newKey(auth.Input{Name: "never used yet", Role: auth.RoleOperator})
	created := s.must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": "to revoke", "role": "operator"})
	doomed := created["secret"].(string)
	for _, key := range []string{service, doomed} {
		status, _ := s.status("Bearer " + key)
		require.Equal(t, http.StatusOK, status)
	}

	wrong := service[:len(service)-4] + "AAAA"
	for range 3 {
		status, _ := s.status("Bearer " + wrong)
		require.Equal(t, http.StatusUnauthorized, status)
	}
	for _, authorization := range []string{"Bearer " + wrong, "", "Bearer hello", "Basic dXNlcjpwYXNz", "Bearer " + unused} {
		status, retry := s.status(authorization)
		require.Equal(t, http.StatusTooManyRequests, status, "%q", authorization)
		seconds, err := strconv.Atoi(retry)
		require.NoError(t, err)
		require.GreaterOrEqual(t, seconds, 1)
	}
	status, _ := s.status("Bearer " + service)
	require.Equal(t, http.StatusOK, status, "a key that authenticated recently still gets through")

	s.must(http.StatusNoContent, "DELETE", "/v1/api-keys/"+created["id"].(string), nil)
	status, _ = s.status("Bearer " + doomed)
	require.Equal(t, http.StatusUnauthorized, status, "a revoked key stops at once, even one known as good")
	status, _ = s.status("Bearer " + doomed)
	require.Equal(t, http.StatusTooManyRequests, status, "and is known as good no more")

	// While the address is blocked, nothing reaches Postgres: with the pool
	// closed, blocked requests still answer 429, not 500.
	s.db.Close()
	for _, authorization := range []string{"Bearer " + wrong, "Bearer " + unused, ""} {
		status, _ := s.status(authorization)
		require.Equal(t, http.StatusTooManyRequests, status, "%q", authorization)
	}
}

// TestMalformedKeysNeverReachPostgres: a presented key not shaped like one is
// refused without a database lookup.
func TestMalformedKeysNeverReachPostgres(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.db.Close() // any lookup now fails: the database is unavailable (503)
	for _, key := range []string{
		"hello", "hk_", "hk_" + strings.Repeat("0", 32) + "_short",
		"hk_" + strings.Repeat("g", 32) + "_" + strings.Repeat("A", 43),
		"hk_" + strings.Repeat("0", 32) + "_" + strings.Repeat("A", 42) + "~",
		"hk_" + strings.Repeat("0", 32) + "_" + strings.Repeat("A", 42) + "+",
		"hk_" + strings.Repeat("0", 32) + "_" + strings.Repeat("A", 44),
	} {
		status, _ := s.status("Bearer " + key)
		require.Equal(t, http.StatusUnauthorized, status, "%q", key)
	}
	status, _ := s.status("Bearer hk_" + strings.Repeat("0", 32) + "_" + strings.Repeat("A", 43))
	require.Equal(t, http.StatusServiceUnavailable, status, "a well-formed key does need the database")
}
