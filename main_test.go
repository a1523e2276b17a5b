package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
)

// env returns a getenv that sees only vars, as a deployment would set them.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// TestMain drops, once the tests end, the template database their databases
// are cloned from (internal/dbtest).
func TestMain(m *testing.M) { dbtest.Main(m) }

// TestServeEndToEnd starts the real program on a free port, migrates an empty
// database, serves a request, and shuts down cleanly when its context ends.
func TestServeEndToEnd(t *testing.T) {
	dbURL := dbtest.New(t) // already migrated: serve must accept that
	ctx, cancel := context.WithCancel(context.Background())
	logs, logw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--http-addr", "127.0.0.1:0"}, env(map[string]string{
			"HERALD_DATABASE_URL": dbURL, "HERALD_MQTT_URL": brokertest.Start(t).URL, "HERALD_MQTT_PASSWORD": "s3cret-pw",
		}), io.Discard, logw)
		logw.Close()
	}()

	// The JSON log says where it listens; every line must be JSON and free of secrets.
	addr := make(chan string, 1)
	logText := make(chan string, 1)
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "listening" {
				addr <- line["addr"].(string)
			}
		}
		logText <- all.String()
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("serve stopped early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve never said where it listens")
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, patience, 20*time.Millisecond)
	req, err := http.NewRequest("POST", base+"/v1/games", strings.NewReader(`{"id":"g1","name":"G","default_locale":"en"}`))
	require.NoError(t, err)
	key := adminKey(t, dbURL)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "a graceful shutdown is not an error")
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not shut down")
	}
	text := <-logText
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		require.True(t, json.Valid([]byte(line)), "log line is JSON: %s", line)
	}
	require.NotContains(t, text, "s3cret-pw")
	require.NotContains(t, text, "herald:herald@", "the database password is masked")
	require.NotContains(t, text, key[36:], "API keys never reach the log")
	require.Contains(t, text, `"msg":"stopped"`)
}

func TestMigrateCommands(t *testing.T) {
	dbURL := dbtest.New(t)
	vars := env(map[string]string{"HERALD_DATABASE_URL": dbURL})
	version := func() string {
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), []string{"migrate", "version"}, vars, &out, io.Discard))
		return strings.TrimSpace(out.String())
	}
	top := version()
	require.NotEqual(t, "0", top)
	require.NoError(t, run(context.Background(), []string{"migrate", "down"}, vars, io.Discard, io.Discard))
	require.NotEqual(t, top, version(), "down reverts one migration")
	require.NoError(t, run(context.Background(), []string{"migrate", "up"}, vars, io.Discard, io.Discard))
	require.Equal(t, top, version())
	require.NoError(t, run(context.Background(), []string{"migrate", "up"}, vars, io.Discard, io.Discard), "up when current is fine")
	require.Error(t, run(context.Background(), []string{"migrate", "sideways"}, vars, io.Discard, io.Discard))
}

func TestCommandLine(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"version"}, env(nil), &out, io.Discard))
	require.True(t, strings.HasPrefix(out.String(), "herald "))
	require.Error(t, run(context.Background(), nil, env(nil), io.Discard, io.Discard))
	require.Error(t, run(context.Background(), []string{"frobnicate"}, env(nil), io.Discard, io.Discard))

	err := run(context.Background(), []string{"serve"}, env(map[string]string{"HERALD_TOPIC_PREFIX": "a/+/b"}), io.Discard, io.Discard)
	require.ErrorContains(t, err, "topic-prefix")
	err = run(context.Background(), []string{"serve", "--mqtt-url", "http://x:1"}, env(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "mqtt-url")
	err = run(context.Background(), []string{"serve", "--receipt-retention", "12h", "--receipt-buffer", "0"}, env(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "receipt-retention (HERALD_RECEIPT_RETENTION): must be at least 24h")
	require.ErrorContains(t, err, "receipt-buffer")
}

func TestAPIKeyCommands(t *testing.T) {
	vars := env(map[string]string{"HERALD_DATABASE_URL": dbtest.New(t)})
	cmd := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"apikey"}, args...), vars, &out, io.Discard)
		return out.String(), err
	}
	out, err := cmd("create", "--name", "eu ops", "--role", "operator", "--games", "g1,g2", "--expires-in", "24h")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	secret := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(secret, "hk_"), "the key is the last line: %q", out)
	id := strings.Fields(lines[0])[3]

	out, err = cmd("list")
	require.NoError(t, err)
	require.Contains(t, out, "eu ops")
	require.Contains(t, out, "g1,g2")
	require.NotContains(t, out, secret[36:], "list never shows secrets")

	out, err = cmd("revoke", id)
	require.NoError(t, err)
	require.Contains(t, out, "revoked")
	out, err = cmd("list")
	require.NoError(t, err)
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, id) {
			f := strings.Fields(line)
			require.NotEqual(t, "-", f[len(f)-1], "the revocation time is listed")
		}
	}

	_, err = cmd("create", "--name", "x", "--role", "root")
	require.ErrorContains(t, err, "role")
	_, err = cmd("revoke", "nope")
	require.Error(t, err)
	_, err = cmd("frobnicate")
	require.Error(t, err)
}

// TestUnparsableSettingsStopHerald: a HERALD_* value that cannot be read stops
// serve at start with an error naming the variable, before it touches anything.
func TestUnparsableSettingsStopHerald(t *testing.T) {
	for key, value := range map[string]string{
		"HERALD_MIGRATE": "yes", "HERALD_DISPATCH_LEASE": "abc", "HERALD_RATE_LIMIT": "x", "HERALD_LOG_LEVEL": "loud",
		"HERALD_FIRE_GRACE": "5", "HERALD_RATE_BURST": "1.5", "HERALD_METRICS": "on", "HERALD_AUTH_FAIL_RATE": "NaN",
		"HERALD_AUTH_FAIL_BURST": "many", "HERALD_CONNECT_TIMEOUT": "10",
		"HERALD_RECEIPT_RETENTION": "30d", "HERALD_RECEIPT_BUFFER": "big", "HERALD_MQTT_CONNECTIONS": "0",
	} {
		err := run(context.Background(), []string{"serve"}, env(map[string]string{key: value}), io.Discard, io.Discard)
		require.ErrorContains(t, err, key, "%s=%s", key, value)
	}
	err := run(context.Background(), []string{"serve"}, env(map[string]string{"HERALD_MIGRATE": "maybe", "HERALD_RATE_LIMIT": "fast"}), io.Discard, io.Discard)
	require.ErrorContains(t, err, "HERALD_MIGRATE", "every bad variable is named at once")
	require.ErrorContains(t, err, "HERALD_RATE_LIMIT")
	err = run(context.Background(), []string{"serve", "--rate-limit", "Inf"}, env(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "rate-limit")
}

// TestAPIKeyListAndRevokeDoNotMigrate: only create migrates (so that the first
// key can be made on a fresh database); list and revoke leave the schema alone
// and say what to run.
func TestAPIKeyListAndRevokeDoNotMigrate(t *testing.T) {
	vars := env(map[string]string{"HERALD_DATABASE_URL": dbtest.New(t)})
	for {
		version, err := cmd(t, vars, "migrate", "version")
		require.NoError(t, err)
		if strings.TrimSpace(version) == "0" {
			break
		}
		_, err = cmd(t, vars, "migrate", "down")
		require.NoError(t, err)
	}
	for _, args := range [][]string{{"apikey", "list"}, {"apikey", "revoke", "01a214d1-eb0d-78a0-a273-2ad44985fccd"}} {
		_, err := cmd(t, vars, args...)
		require.ErrorContains(t, err, "run herald migrate up", "%v", args)
		version, err := cmd(t, vars, "migrate", "version")
		require.NoError(t, err)
		require.Equal(t, "0", strings.TrimSpace(version), "%v left the schema alone", args)
	}
	out, err := cmd(t, vars, "apikey", "create", "--name", "first admin", "--role", "admin")
	require.NoError(t, err, "create migrates a fresh database")
	require.Contains(t, out, "hk_")
	out, err = cmd(t, vars, "apikey", "list")
	require.NoError(t, err)
	require.Contains(t, out, "first admin")
}

// TestAPIKeyListEscapesNames: a stored name that would rewrite the terminal
// (written before names were checked) is listed quoted, on its own line.
func TestAPIKeyListEscapesNames(t *testing.T) {
	dbURL := dbtest.New(t)
	vars := env(map[string]string{"HERALD_DATABASE_URL": dbURL})
	_, err := cmd(t, vars, "apikey", "create", "--name", "evil\x1b[2J", "--role", "service")
	require.ErrorContains(t, err, "name", "such a name is refused")
	_, err = cmd(t, vars, "apikey", "create", "--name", "plain", "--role", "service")
	require.NoError(t, err)
	conn, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), `UPDATE api_keys SET name = E'evil\x1b[2J\r\tbell\x07'`)
	require.NoError(t, err)
	listed, err := cmd(t, vars, "apikey", "list")
	require.NoError(t, err)
	require.NotContains(t, listed, "\x1b")
	require.NotContains(t, listed, "\r")
	require.NotContains(t, listed, "\a")
	require.Contains(t, listed, `"evil\x1b[2J\r\tbell\a"`)
}

// cmd runs herald with args and returns what it printed.
func cmd(t *testing.T, vars func(string) string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, vars, &out, io.Discard)
	return out.String(), err
}
