package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/sim"
)

// progressWriter collects stderr and tells when a line holds want.
type progressWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// TestSimCommandJSON runs `herald sim --json` until its progress line shows
// every player connected, stops it as SIGINT would, and reads its summary.
func TestSimCommandJSON(t *testing.T) {
	b := brokertest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &progressWriter{want: "20/20 players connected", seen: make(chan struct{})}
	var stdout bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"sim", "--broker", b.URL, "--game", "g1", "--players", "20",
			"--players-per-conn", "5", "--servers", "s1,s2", "--tag", "region=eu:60,na:40", "--tag", "level=1..60",
			"--ramp", "0", "--json"}, env(nil), &stdout, stderr)
	}()
	select {
	case <-stderr.seen:
	case err := <-done:
		t.Fatalf("sim ended early: %v; stderr: %s", err, stderr.buf.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("no progress line with every player connected; stderr: %s", stderr.buf.String())
	}
	cancel()
	require.NoError(t, <-done)
	var sum sim.Summary
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &sum), stdout.String())
	require.EqualValues(t, 20, sum.Connected)
	require.EqualValues(t, 4, sum.Connections)
	require.Contains(t, stdout.String(), `"receipts_sent": 0`)

	err := run(context.Background(), []string{"sim", "--game", "g1", "--players", "1", "--tag", "level=9..1"}, env(nil), &stdout, &bytes.Buffer{})
	require.ErrorContains(t, err, "level=9..1")
}
