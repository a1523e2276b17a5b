package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMakeBuildStampsVersion: `make build` writes a binary whose `herald
// version` names the git version, the commit and the build date.
func TestMakeBuildStampsVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "herald")
	out, err := exec.Command("make", "-s", "build", "BIN="+bin).CombinedOutput()
	require.NoError(t, err, "%s", out)
	describe, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
	require.NoError(t, err)
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	require.NoError(t, err)

	out, err = exec.Command(bin, "version").Output()
	require.NoError(t, err)
	lines := strings.Split(string(out), "\n")
	require.Equal(t, "herald "+strings.TrimSpace(string(describe)), lines[0])
	require.Equal(t, "commit: "+strings.TrimSpace(string(head)), lines[1])
	built, err := time.Parse(time.RFC3339, strings.TrimPrefix(lines[2], "built: "))
	require.NoError(t, err, lines[2])
	require.WithinDuration(t, time.Now(), built, time.Hour)
}

// TestVersionWithoutMake: a binary built by `go build` or `go install` says
// what the go command recorded: the commit, its time and a modified tree, or
// the commit of a pseudo-version.
func TestVersionWithoutMake(t *testing.T) {
	for _, c := range []struct {
		name string
		info debug.BuildInfo
		want []string
	}{
		{"go build in a work tree", debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261127143000-2f1dfd51f8d7+dirty"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "2f1dfd51f8d76180163a599d2ec34fb8412a9ac9"},
			{Key: "vcs.time", Value: "2026-11-27T14:30:00Z"}, {Key: "vcs.modified", Value: "true"},
		}}, []string{"herald v0.0.0-20261127143000-2f1dfd51f8d7+dirty", "commit: 2f1dfd51f8d76180163a599d2ec34fb8412a9ac9 (with uncommitted changes)",
			"committed: 2026-11-27T14:30:00Z"}},
		{"go install module@commit", debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261127143000-2f1dfd51f8d7"}},
			[]string{"commit: 2f1dfd51f8d7\n", "committed: 2026-11-27T14:30:00Z"}},
		{"go install module@v1.2.3", debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}},
			[]string{"herald v1.2.3\n", "commit: unknown", "built: unknown"}},
		{"go build without VCS information", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			[]string{"herald devel\n", "commit: unknown"}},
	} {
		var out bytes.Buffer
		describe(&c.info).write(&out)
		for _, w := range c.want {
			require.Contains(t, out.String(), w, c.name)
		}
	}
}
