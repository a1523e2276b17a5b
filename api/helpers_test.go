package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/api"
	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/idempotency"
	"github.com/heraldpush/herald/internal/brokerlink"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/kickouts"
	"github.com/heraldpush/herald/mqttout"
	"github.com/heraldpush/herald/receipts"
	"github.com/heraldpush/herald/segments"
)

// brokerURL is the broker tests connect to; scripts/services.sh starts one there.
// patience is how long a test waits for something that takes a moment on an
// idle machine; generous, because the suite runs on loaded 2-core machines.
const patience = 60 * time.Second

func brokerURL() string {
	if v := os.Getenv("HERALD_MQTT_URL"); v != "" {
		return v
	}
	return "tcp://127.0.0.1:1883"
}

// testServer is the real API on its own database, served over real HTTP.
type testServer struct {
	t    testing.TB
	url  string
	db   *pgxpool.Pool // for checks no endpoint shows, such as stored member ids
	keys *auth.Store
	key  string // the API key requests carry; an admin's unless as() chose another
}

func newTestServer(t testing.TB) *testServer {
	return newTestServerWithBroker(t, brokerURL())
}

func newTestServerWithBroker(t testing.TB, broker string) *testServer {
	return newTestServerWith(t, broker, 1000, 2000, nil)
}

// newTestServerWith sets the broker, each key's rate limit (requests/s, burst)
// and, with configure, the HTTP server's settings (timeouts); opts change the
// API's configuration further.
func newTestServerWith(t testing.TB, broker string, rateLimit float64, rateBurst int, configure func(*http.Server), opts ...func(*api.Config)) *testServer {
	t.Helper()
	pool, _ := dbtest.NewPool(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	conn, err := mqttout.Dial(mqttout.Config{URL: broker, Log: log})
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	spec, err := os.ReadFile("../openapi.yaml")
	require.NoError(t, err)
	keys := auth.NewStore(pool)
	kicks := kickouts.New(kickouts.Config{DB: pool, Receipts: receipts.NewStore(pool, 0),
		Publisher: conn, Prefix: "herald", Log: log})
	kicks.Start(context.Background())
	t.Cleanup(kicks.Stop)
	cfg := api.Config{
		Log: log, DB: pool, Broker: conn, Keys: keys, Audit: audit.NewStore(pool),
		Games: games.NewStore(pool), Segments: segments.NewStore(pool), Campaigns: campaigns.NewStore(pool, 0),
		Receipts: receipts.NewStore(pool, 0), Publisher: brokerlink.Publisher{Conn: conn},
		TopicPrefix: "herald", OpenAPI: spec, Metrics: prometheus.NewRegistry(), RateLimit: rateLimit, RateBurst: rateBurst,
		Kickouts: kicks, Idempotency: idempotency.NewStore(pool, nil),
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	srv := httptest.NewUnstartedServer(api.New(cfg).Handler())
	if configure != nil {
		configure(srv.Config)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s := &testServer{t: t, url: srv.URL, db: pool, keys: keys}
	s.key = s.newKey(auth.Input{Name: "test admin", Role: auth.RoleAdmin})
	return s
}

// newKey creates an API key directly in the store, as `herald apikey create`
// does, and returns its secret.
func (s *testServer) newKey(in auth.Input) string {
	s.t.Helper()
	_, secret, err := s.keys.Create(audit.WithActor(context.Background(), audit.Actor{Name: "test setup"}), in)
	require.NoError(s.t, err)
	return secret
}

// as returns the same server spoken to with another key ("" for none).
func (s *testServer) as(key string) *testServer {
	c := *s
	c.key = key
	return &c
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
	if s.key != "" {
		req.Header.Set("Authorization", "Bearer "+s.key)
	}
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
