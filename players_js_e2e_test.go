package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/protocol"
)

// jsClientDir is the TypeScript client's package.
const jsClientDir = "clients/js"

// testTypeScriptPlayers runs the players scenario with TypeScript clients of
// the built package over the broker's WebSocket listener, driven by
// clients/js/test/e2e/scenario.mjs. It is skipped when Node.js is missing,
// unless HERALD_REQUIRE_NODE is set (make test sets it): then it fails.
func testTypeScriptPlayers(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("HERALD_REQUIRE_NODE") != "" {
				t.Fatalf("%s is not on PATH and HERALD_REQUIRE_NODE is set: run scripts/services.sh --with-node", tool)
			}
			t.Skipf("%s is not on PATH (scripts/services.sh --with-node installs it)", tool)
		}
	}
	buildJSClient(t)
	broker := brokertest.StartWith(t, brokertest.Options{More: []brokertest.Security{{WebSockets: true}}})
	sc := newPlayerScenario(t, broker)
	js := startJSPlayers(t, broker.Listeners[1], sc)
	attrs := func(player, server, region string, level int) protocol.Attributes {
		return protocol.Attributes{Player: player, Server: server,
			Tags: map[string]string{"region": region, "level": strconv.Itoa(level)}}
	}
	online := []protocol.Attributes{
		attrs("js-1", "s2", "eu", 30),   // the filtered campaign; the other on two topics
		attrs("js-2", "s1", "eu", 12),   // neither
		attrs("js-3", "s1", "eu", 27),   // both, each on one topic
		attrs("js-4", "s2", "na", 35),   // the one to s2, and the expiring one
		attrs("js-5", "s3", "asia", 50), // nothing at all
	}
	for _, a := range online {
		js.connect(a)
	}
	waitFor(t, "the TypeScript clients connected", patience, func() bool {
		views := js.report()
		for _, a := range online {
			if !views[a.Player].Connected {
				return false
			}
		}
		return true
	})

	sc.send()
	sc.awaitPlayers("every TypeScript client to count the sends", online, js.view)
	late := []protocol.Attributes{attrs("js-late", "s2", "eu", 26)} // region eu: see testSimulatedPlayers
	js.connect(late[0])
	all := append(online, late...)
	sc.awaitPlayers("the TypeScript client that came late to count the sends", late, js.view)
	sc.awaitReceipts(all)
	sc.requireReceipts(all)

	sc.cancel()
	sc.awaitPlayers("the cancel to remove it at every TypeScript client", all, js.view)
	sleepUntil(sc.expiring.ExpiresAt)
	sc.awaitPlayers("the expiry to remove it at every TypeScript client", all, js.view)
	sc.requireReceipts(all)
	for player, c := range js.report() {
		require.Empty(t, c.Errors, player)
		shown := map[string]int{}
		for _, m := range c.Shown {
			shown[m.Campaign]++
		}
		for campaign, n := range shown {
			require.Equal(t, 1, n, "%s shows campaign %s once", player, campaign)
		}
	}
}

// buildJSClient makes sure clients/js/dist is built from the current sources:
// `npm ci` if node_modules is missing, `npm run build` if dist is missing or
// older than a file of src.
func buildJSClient(t *testing.T) {
	t.Helper()
	npm := func(args ...string) {
		cmd := exec.Command("npm", args...)
		cmd.Dir = jsClientDir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "npm %v in %s:\n%s", args, jsClientDir, out)
	}
	if _, err := os.Stat(filepath.Join(jsClientDir, "node_modules")); err != nil {
		npm("ci", "--no-audit", "--no-fund")
	}
	built, err := os.Stat(filepath.Join(jsClientDir, "dist", "index.js"))
	stale := err != nil
	if !stale {
		err := filepath.WalkDir(filepath.Join(jsClientDir, "src"), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			if err == nil && info.ModTime().After(built.ModTime()) {
				stale = true
			}
			return err
		})
		require.NoError(t, err)
	}
	if stale {
		npm("run", "build")
	}
}

// jsPlayers is a running scenario.mjs with its clients.
type jsPlayers struct {
	t     *testing.T
	sc    *playerScenario
	in    io.WriteCloser
	lines chan []byte
}

// jsClient is what scenario.mjs reports of one client.
type jsClient struct {
	Connected bool `json:"connected"`
	Shown     []struct {
		ID, Campaign, Kind string
	} `json:"shown"`
	Removed []struct {
		Campaign, Reason string
	} `json:"removed"`
	Stats struct {
		Received                               map[protocol.Kind]int64 `json:"received"`
		Filtered, Duplicates, Expired, Invalid int64
		Ignored                                int64
	} `json:"stats"`
	Errors []string `json:"errors"`
}

// startJSPlayers starts scenario.mjs against the broker's WebSocket listener
// at wsURL; it closes its clients when the test ends.
func startJSPlayers(t *testing.T, wsURL string, sc *playerScenario) *jsPlayers {
	t.Helper()
	cmd := exec.Command("node", "test/e2e/scenario.mjs")
	cmd.Dir = jsClientDir
	cmd.Env = append(os.Environ(), "HERALD_WS_URL="+wsURL, "HERALD_GAME=g1", "HERALD_PREFIX="+sc.h.prefix)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &jsPlayers{t: t, sc: sc, in: in, lines: make(chan []byte, 1)}
	go func() {
		defer close(p.lines)
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			p.lines <- line
		}
	}()
	t.Cleanup(func() {
		if _, err := io.WriteString(in, `{"op":"close"}`+"\n"); err == nil {
			<-p.lines
		}
		_ = in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("scenario.mjs: %v\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("scenario.mjs did not exit\n%s", stderr.String())
		}
	})
	return p
}

// do sends one command and returns the reply.
func (p *jsPlayers) do(cmd any) []byte {
	p.t.Helper()
	raw, err := json.Marshal(cmd)
	require.NoError(p.t, err)
	_, err = p.in.Write(append(raw, '\n'))
	require.NoError(p.t, err, "scenario.mjs is gone")
	select {
	case line, ok := <-p.lines:
		require.True(p.t, ok, "scenario.mjs exited")
		return line
	case <-time.After(patience):
		p.t.Fatalf("scenario.mjs did not answer %s", raw)
		return nil
	}
}

// connect starts a client with attributes a: a banded tag's value as a
// number, as a game passes it.
func (p *jsPlayers) connect(a protocol.Attributes) {
	p.t.Helper()
	tags := map[string]any{}
	for name, v := range a.Tags {
		tags[name] = v
		if len(p.sc.desc.Tags[name].Bands) > 0 {
			n, err := strconv.Atoi(v)
			require.NoError(p.t, err)
			tags[name] = n
		}
	}
	reply := p.do(map[string]any{"op": "connect", "player": a.Player, "server": a.Server, "tags": tags})
	require.JSONEq(p.t, `{"ok":true}`, string(reply))
}

// report returns what each client saw so far, by player.
func (p *jsPlayers) report() map[string]jsClient {
	p.t.Helper()
	var r struct {
		Clients map[string]jsClient `json:"clients"`
	}
	require.NoError(p.t, json.Unmarshal(p.do(map[string]string{"op": "report"}), &r))
	return r.Clients
}

// view is the scenario's view of the clients. A removal of the canceled
// campaign must say "recalled", of the expired one "expired": another reason
// shows as a campaign the scenario does not know.
func (p *jsPlayers) view() map[string]playerView {
	out := map[string]playerView{}
	for player, c := range p.report() {
		v := playerView{Received: c.Stats.Received, Filtered: c.Stats.Filtered, Duplicates: c.Stats.Duplicates,
			Removed: map[string]bool{}, Other: c.Stats.Expired + c.Stats.Invalid + c.Stats.Ignored}
		for _, r := range c.Removed {
			want := map[string]string{p.sc.filtered.ID: "recalled", p.sc.expiring.ID: "expired"}[r.Campaign]
			if r.Reason == want {
				v.Removed[r.Campaign] = true
			} else {
				v.Removed[r.Campaign+" ("+r.Reason+")"] = true
			}
		}
		out[player] = v
	}
	return out
}
