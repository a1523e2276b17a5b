package api_test

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/heraldpush/herald/api"
)

// specRoutes lists "METHOD /path" for every operation in openapi.yaml.
func specRoutes(t *testing.T, spec []byte) []string {
	t.Helper()
	var routes []string
	inPaths, path := false, ""
	sc := bufio.NewScanner(bytes.NewReader(spec))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "paths:":
			inPaths = true
		case inPaths && line != "" && !strings.HasPrefix(line, " "):
			inPaths = false
		case inPaths && strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":"):
			path = strings.TrimSuffix(strings.TrimSpace(line), ":")
		case inPaths && strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     "):
			method := strings.TrimSuffix(strings.TrimSpace(line), ":")
			switch method {
			case "get", "post", "put", "patch", "delete":
				routes = append(routes, strings.ToUpper(method)+" "+path)
			}
		}
	}
	require.NoError(t, sc.Err())
	sort.Strings(routes)
	return routes
}

// TestEveryRouteIsDocumented keeps the router and openapi.yaml in step: a route
// without a spec entry, or a spec entry without a route, fails.
func TestEveryRouteIsDocumented(t *testing.T) {
	spec, err := os.ReadFile("../openapi.yaml")
	require.NoError(t, err)
	h := api.New(api.Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry()}).Handler()
	var served []string
	err = chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if len(route) > 1 {
			route = strings.TrimSuffix(route, "/")
		}
		served = append(served, method+" "+route)
		return nil
	})
	require.NoError(t, err)
	sort.Strings(served)
	documented := specRoutes(t, spec)
	require.NotEmpty(t, documented)
	require.Equal(t, documented, served)
}

func TestOperationsEndpoints(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	require.Equal(t, "ok", s.must(http.StatusOK, "GET", "/healthz", nil)["status"])

	// The broker connects in the background: wait for readiness.
	require.Eventually(t, func() bool {
		status, _ := s.do("GET", "/readyz", nil)
		return status == http.StatusOK
	}, patience, 20*time.Millisecond)

	resp, err := http.Get(s.url + "/openapi.yaml")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, bytes.HasPrefix(body, []byte("openapi: 3.1")), "serves the spec")

	s.must(http.StatusNotFound, "GET", "/v1/nothing-here", nil)
	s.must(http.StatusMethodNotAllowed, "DELETE", "/v1/games", nil)
}

func TestReadyzReportsABrokerThatIsDown(t *testing.T) {
	t.Parallel()
	s := newTestServerWithBroker(t, "tcp://"+freeAddr(t))
	status, problem := s.do("GET", "/readyz", nil)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Contains(t, problem["detail"], "broker")
	require.Eventually(t, func() bool {
		_, problem := s.do("GET", "/readyz", nil)
		return strings.Contains(problem["checks"].(map[string]any)["broker"].(string), "connection refused")
	}, patience, 50*time.Millisecond, "readyz says why the broker is not connected")
	require.Equal(t, "ok", problem["checks"].(map[string]any)["postgres"])
}

// TestOpenAPIIsValidYAML: the spec Herald serves parses as YAML, and every
// $ref in it names something it defines.
func TestOpenAPIIsValidYAML(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../openapi.yaml")
	require.NoError(t, err)
	var spec map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &spec))
	var walk func(v any)
	refs := 0
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if ref, ok := e.(string); ok && k == "$ref" {
					refs++
					var at any = spec
					for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
						m, ok := at.(map[string]any)
						require.True(t, ok, "%s does not resolve", ref)
						at, ok = m[part]
						require.True(t, ok, "%s does not resolve", ref)
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(spec)
	require.Positive(t, refs)
}
