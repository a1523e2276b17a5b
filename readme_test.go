package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
)

// Markers of README.md's walkthrough: each block the test runs follows
// walkthroughMarker; the one that sets the variables follows walkthroughEnv;
// the Quick start's, which makes a key the test makes itself, quickStart.
const (
	walkthroughMarker = "<!-- walkthrough -->"
	walkthroughEnv    = "<!-- walkthrough: the test sets these -->"
	quickStart        = "<!-- quick start: the walkthrough test makes its own key -->"
)

// walkthroughTools are the commands the walkthrough's blocks use.
var walkthroughTools = []string{"bash", "curl", "jq", "mosquitto_sub", "date"}

// readmeWalkthrough returns the variables the walkthrough asks the reader to
// export, and the blocks of README.md marked walkthroughMarker in the order
// they come: the "### Walkthrough" section, then the sections that continue it
// (recurring campaigns, stats). So that none is skipped silently, every sh
// block of the Walkthrough section, and every sh block elsewhere that calls
// the API, must carry one of the markers.
func readmeWalkthrough(t *testing.T) (vars []string, blocks []string) {
	t.Helper()
	raw, err := os.ReadFile("README.md")
	require.NoError(t, err)
	readme := string(raw)
	start := strings.Index(readme, "\n### Walkthrough\n")
	require.Positive(t, start, "README.md has a Walkthrough section")
	end := start + 1 + strings.Index(readme[start+1:], "\n### ")
	fence := regexp.MustCompile("(?m)^(.*)\\n```sh\\n((?s:.*?))^```$")
	for _, m := range fence.FindAllStringSubmatchIndex(readme, -1) {
		marker, block := readme[m[2]:m[3]], readme[m[4]:m[5]]
		inSection := m[0] > start && m[0] < end
		switch {
		case marker == walkthroughMarker:
			blocks = append(blocks, block)
		case marker == walkthroughEnv && inSection:
			for _, line := range strings.Split(block, "\n") {
				if rest, ok := strings.CutPrefix(line, "export "); ok {
					name, _, _ := strings.Cut(rest, "=")
					vars = append(vars, name)
				}
			}
		case marker == quickStart && !inSection:
		case inSection || strings.Contains(block, "/v1/"):
			t.Fatalf("an sh block of README.md is neither run by this test (%q) nor says why not: %q", walkthroughMarker, block)
		}
	}
	require.GreaterOrEqual(t, len(blocks), 5, "the walkthrough's blocks")
	return vars, blocks
}

// TestREADMEWalkthrough runs the walkthrough of README.md, block after block
// in one bash as a reader pastes them, against a real Herald built from this
// tree on a database and a broker of its own, with the variables the README
// tells the reader to set. It ends with the marquee arriving at a subscriber
// and being removed by the cancel.
func TestREADMEWalkthrough(t *testing.T) {
	t.Parallel()
	for _, tool := range walkthroughTools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README walkthrough needs %s, which is not installed: run scripts/services.sh (it installs curl, jq and mosquitto-clients)", tool)
		}
	}
	vars, blocks := readmeWalkthrough(t)

	broker := brokertest.Start(t)
	dbURL := dbtest.New(t)
	base, _ := startHeraldProcess(t, buildHerald(t), map[string]string{
		"HERALD_DATABASE_URL": dbURL, "HERALD_MQTT_URL": broker.URL, "HERALD_TOPIC_PREFIX": "herald", // the README's
	})
	brokerURL, err := url.Parse(broker.URL)
	require.NoError(t, err)
	set := map[string]string{"KEY": adminKey(t, dbURL), "HERALD": base, "BROKER": brokerURL.Host}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range set {
			if !yield(k) {
				return
			}
		}
	})
	slices.Sort(vars)
	require.Equal(t, names, vars, "the test sets the variables the README asks for")

	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for i, b := range blocks {
		script.WriteString("echo '>>> block " + string(rune('1'+i)) + "' >&2\n" + b)
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "walkthrough.sh"), []byte(script.String()), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "walkthrough.sh")
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for k, v := range set {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// Its own process group, so that a stuck mosquitto_sub goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	t.Logf("walkthrough output:\n%s", out.String())
	require.NoError(t, err, "the walkthrough failed; its stderr:\n%s", errOut.String())

	// What the reader sees at the walkthrough's end: the marquee arrives, then
	// its removal.
	watch, err := os.ReadFile(filepath.Join(dir, "watch.txt"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(watch)), "\n")
	require.Len(t, lines, 2, "%s", watch)
	topic, envelope, _ := strings.Cut(lines[0], " ")
	require.Regexp(t, `^herald/g1/all/marquee/[0-9a-f-]{36}$`, topic)
	require.Contains(t, envelope, `"text":{"en":"Maintenance at 10:00 UTC"}`)
	require.Contains(t, []string{topic + " (null)", topic}, strings.TrimSpace(lines[1]), "the cancel's empty payload: remove it")

	// And along the way, what the README says the reader sees.
	for _, want := range []string{
		`"players": null`,                   // the eu veterans' plan
		`"players": 3`,                      // the whales' plan
		`"acked": 1`,                        // the test to qa-alice
		`"status": 409`,                     // the unconfirmed marquee
		`"archived_at": "`,                  // the deleted notice
		`"recalling"`,                       // the cancel's answer
		"herald/g1/player/qa-alice/notice/", // the test's topic
		`"Asia/Shanghai"`,                   // the evening ad's next fires
		`"paused"`,                          // and its pause
		`"acked": 1`,                        // the marquee's stats
	} {
		require.Contains(t, out.String(), want)
	}
}
