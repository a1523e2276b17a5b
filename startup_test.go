package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/dbtest"
)

// silentServer listens on a free port, accepts every connection and never
// says a word, like a frozen Postgres or a firewall that swallows traffic. A
// value arrives on accepted at each connection.
func silentServer(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	got := make(chan struct{}, 100)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case got <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), got
}

// refusingPort is a port on 127.0.0.1 that nothing listened on a moment ago.
func refusingPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	return port
}

// runAsync runs herald with args in-process and returns what it returns.
func runAsync(ctx context.Context, args []string, vars map[string]string, stderr io.Writer) <-chan error {
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, env(vars), io.Discard, stderr) }()
	return done
}

// TestConnectTimeoutNamesWhatDidNotAnswer: every command that reaches
// Postgres gives up on a server that accepts connections but never answers
// after the connect timeout (flag, variable, or the URL's connect_timeout),
// saying which server did not answer; one that refuses is named too.
func TestConnectTimeoutNamesWhatDidNotAnswer(t *testing.T) {
	silent, _ := silentServer(t)
	refused := "127.0.0.1:" + refusingPort(t)
	commands := [][]string{
		{"serve", "--http-addr", "127.0.0.1:0"},
		{"migrate", "up"},
		{"migrate", "down"},
		{"migrate", "version"},
		{"apikey", "create", "--name", "first admin", "--role", "admin"},
		{"apikey", "list"},
		{"apikey", "revoke", "01a214d1-eb0d-78a0-a273-2ad44985fccd"},
	}
	type result struct {
		what string
		done <-chan error
		want string
	}
	var results []result
	for _, args := range commands {
		for _, c := range []struct {
			name, url string
			extra     []string
			vars      map[string]string
			want      string
		}{
			{"variable", "postgres://herald:herald@" + silent + "/herald?sslmode=disable", nil,
				map[string]string{"HERALD_CONNECT_TIMEOUT": "1s"}, "postgres at " + silent + " did not answer within 1s"},
			{"flag", "postgres://herald:herald@" + silent + "/herald?sslmode=disable", []string{"--connect-timeout", "1500ms"},
				nil, "postgres at " + silent + " did not answer within 1.5s"},
			{"url", "postgres://herald:herald@" + silent + "/herald?sslmode=disable&connect_timeout=2", nil,
				map[string]string{"HERALD_CONNECT_TIMEOUT": "1h"}, "postgres at " + silent + " did not answer within 2s"},
			{"refused", "postgres://herald:herald@" + refused + "/herald?sslmode=disable", nil,
				nil, "postgres at " + refused + " refused the connection"},
		} {
			vars := map[string]string{"HERALD_DATABASE_URL": c.url}
			for k, v := range c.vars {
				vars[k] = v
			}
			results = append(results, result{
				what: fmt.Sprintf("%v (%s)", args, c.name),
				done: runAsync(context.Background(), append(append([]string{}, args...), c.extra...), vars, io.Discard),
				want: c.want,
			})
		}
	}
	for _, r := range results {
		select {
		case err := <-r.done:
			require.ErrorContains(t, err, r.want, r.what)
		case <-time.After(patience):
			t.Fatalf("%s still waits for a silent server", r.what)
		}
	}
}

// TestStopDuringStartup: a signal while serve waits for Postgres at start
// ends it at once, as a normal stop; so does one while the broker never
// answers (it is connected to in the background).
func TestStopDuringStartup(t *testing.T) {
	silentDB, dbAccepted := silentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	var logs safeBuffer
	done := runAsync(ctx, []string{"serve", "--http-addr", "127.0.0.1:0"}, map[string]string{
		"HERALD_DATABASE_URL": "postgres://herald:herald@" + silentDB + "/herald?sslmode=disable", "HERALD_CONNECT_TIMEOUT": "1h",
	}, &logs)
	select {
	case <-dbAccepted:
	case err := <-done:
		t.Fatalf("serve ended before it connected: %v", err)
	case <-time.After(patience):
		t.Fatal("serve never connected to the database")
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "a stop asked for is not an error")
	case <-time.After(patience):
		t.Fatal("serve ignores the signal while it waits for Postgres")
	}
	require.Contains(t, logs.String(), "stopped while applying migrations at start")

	silentBroker, brokerAccepted := silentServer(t)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	logr, logw := io.Pipe()
	done = runAsync(ctx, []string{"serve", "--http-addr", "127.0.0.1:0"}, map[string]string{
		"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": "tcp://" + silentBroker,
	}, logw)
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(logr)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "listening" {
				close(listening)
			}
		}
	}()
	for _, ch := range []<-chan struct{}{listening, brokerAccepted} {
		select {
		case <-ch:
		case err := <-done:
			t.Fatalf("serve ended early: %v", err)
		case <-time.After(patience):
			t.Fatal("serve never listened and connected to the broker")
		}
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(patience):
		t.Fatal("serve does not stop while the broker never answers")
	}
	logw.Close()
}

// TestSignalsEndTheProcess sends SIGINT and SIGTERM to a real herald process
// while it waits for a database that never answers: serve stops as it would
// once running (exit 0), apikey list with an error (exit 1), both at once.
func TestSignalsEndTheProcess(t *testing.T) {
	bin := buildHerald(t)
	silent, accepted := silentServer(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		for _, c := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"serve", "--http-addr", "127.0.0.1:0"}, 0, "stopped while applying migrations at start"},
			{[]string{"apikey", "list"}, 1, "herald: interrupted: list api keys: context canceled"},
		} {
			cmd := exec.Command(bin, c.args...)
			cmd.Env = append(os.Environ(), "HERALD_DATABASE_URL=postgres://herald:herald@"+silent+"/herald?sslmode=disable",
				"HERALD_CONNECT_TIMEOUT=1h")
			var stderr safeBuffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case <-accepted:
			case err := <-exited:
				t.Fatalf("%v ended before it connected: %v: %s", c.args, err, stderr.String())
			case <-time.After(patience):
				_ = cmd.Process.Kill()
				t.Fatalf("%v never connected", c.args)
			}
			require.NoError(t, cmd.Process.Signal(sig))
			select {
			case err := <-exited:
				code := 0
				var exitErr *exec.ExitError
				if errors.As(err, &exitErr) {
					code = exitErr.ExitCode()
				}
				require.Equal(t, c.code, code, "%v after %v: %s", c.args, sig, stderr.String())
				require.Contains(t, stderr.String(), c.want, "%v after %v", c.args, sig)
			case <-time.After(patience):
				_ = cmd.Process.Kill()
				t.Fatalf("%v ignored %v: %s", c.args, sig, stderr.String())
			}
		}
	}
}

// safeBuffer is a bytes.Buffer for one writer and readers in other goroutines.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
