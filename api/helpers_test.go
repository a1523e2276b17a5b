package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/api"
	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/mqttout"
	"github.com/heraldpush/herald/segments"
)

// brokerURL is the broker tests connect to; scripts/services.sh starts one there.
func brokerURL() string {
	if v := os.Getenv("HERALD_MQTT_URL"); v != "" {
		return v
	}
	return "tcp://127.0.0.1:1883"
}

// testServer is the real API on its own database, served over real HTTP.
type testServer struct {
	t   testing.TB
	url string
	db  *pgxpool.Pool // for checks no endpoint shows, such as stored member ids
}

func newTestServer(t testing.TB) *testServer {
	return newTestServerWithBroker(t, brokerURL())
}

func newTestServerWithBroker(t testing.TB, broker string) *testServer {
	t.Helper()
	pool, _ := dbtest.NewPool(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	conn, err := mqttout.Dial(mqttout.Config{URL: broker, Log: log})
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	spec, err := os.ReadFile("../openapi.yaml")
	require.NoError(t, err)
	srv := httptest.NewServer(api.New(api.Config{
		Log: log, DB: pool, Broker: conn,
		Games: games.NewStore(pool), Segments: segments.NewStore(pool), Campaigns: campaigns.NewStore(pool, 0),
		TopicPrefix: "herald", OpenAPI: spec,
	}).Handler())
	t.Cleanup(srv.Close)
	return &testServer{t: t, url: srv.URL, db: pool}
}

// do sends a request with a JSON (or raw string) body and returns the status and
// the decoded JSON response.
func (s *testServer) do(method, path string, body any) (int, map[string]any) {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(s.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	require.NoError(s.t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(s.t, json.Unmarshal(raw, &out), "response body: %s", raw)
	}
	if resp.StatusCode >= 400 {
		require.Equal(s.t, "application/problem+json", resp.Header.Get("Content-Type"), "errors are problem details")
		require.EqualValues(s.t, resp.StatusCode, out["status"])
		require.NotEmpty(s.t, out["title"])
		require.NotEmpty(s.t, out["detail"])
	}
	return resp.StatusCode, out
}

// must sends a request that has to answer want, and returns the response.
func (s *testServer) must(want int, method, path string, body any) map[string]any {
	s.t.Helper()
	status, out := s.do(method, path, body)
	require.Equal(s.t, want, status, "%s %s answered %v", method, path, out)
	return out
}

// fields returns the field names of a problem's errors[].
func fields(problem map[string]any) []string {
	var out []string
	errs, _ := problem["errors"].([]any)
	for _, e := range errs {
		out = append(out, e.(map[string]any)["field"].(string))
	}
	return out
}

// createGame registers a game with a region enumeration and level bands.
func (s *testServer) createGame(id string) {
	s.t.Helper()
	s.must(http.StatusCreated, "POST", "/v1/games", map[string]any{
		"id": id, "name": "Game " + id, "default_locale": "en",
		"tags": map[string]any{
			"region": map[string]any{"values": []string{"eu", "na", "asia"}},
			"level":  map[string]any{"bands": [][2]int{{1, 9}, {10, 19}, {20, 29}, {30, 39}}},
		},
	})
}

// freeAddr returns a loopback address on which nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}
