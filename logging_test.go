package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLogDurationsAreReadable: a duration in Herald's log reads "15s", never
// 15000000000, at the top level and inside groups alike, and the configuration
// logged at start shows its durations so.
func TestLogDurationsAreReadable(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := newLogger(&buf, slog.LevelInfo)
	log.Info("waited", "lease", 15*time.Second, slog.Group("publish", slog.Duration("timeout", 1500*time.Millisecond)))
	cfg, _, err := serveConfig(nil, func(string) string { return "" }, &bytes.Buffer{})
	require.NoError(t, err)
	log.Info("starting herald", "config", cfg.logValue())

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	var first struct {
		Lease   any            `json:"lease"`
		Publish map[string]any `json:"publish"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	require.Equal(t, "15s", first.Lease)
	require.Equal(t, "1.5s", first.Publish["timeout"])
	var start struct {
		Config map[string]any `json:"config"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &start))
	for _, name := range []string{"dispatch_lease", "fire_grace", "db_timeout", "connect_timeout"} {
		require.IsType(t, "", start.Config[name], "%s is logged as a readable duration: %s", name, lines[1])
	}
	require.Equal(t, "15s", start.Config["dispatch_lease"])
}
