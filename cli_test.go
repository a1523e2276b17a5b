package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHelpOnEveryCommand: -h and --help, on every command and subcommand,
// print its usage on stdout and succeed (exit 0), touching nothing.
func TestHelpOnEveryCommand(t *testing.T) {
	// A database that does not exist: help must not need one.
	vars := env(map[string]string{"HERALD_DATABASE_URL": "postgres://nobody:pw-9s3cret@127.0.0.1:1/none", "HERALD_MQTT_PASSWORD": "mqtt-9s3cret"})
	for _, c := range []struct {
		args []string
		want []string // in the usage
	}{
		{nil, []string{"serve", "migrate", "apikey", "sim", "version"}},
		{[]string{"serve"}, []string{"usage: herald serve", "-http-addr", "-connect-timeout", "HERALD_CONNECT_TIMEOUT", "-db-timeout"}},
		{[]string{"migrate"}, []string{"usage: herald migrate", "up ", "down ", "version ", "-database-url", "-connect-timeout"}},
		{[]string{"migrate", "up"}, []string{"usage: herald migrate"}},
		{[]string{"apikey"}, []string{"usage: herald apikey", "create", "list", "revoke"}},
		{[]string{"apikey", "create"}, []string{"usage: herald apikey create", "-name", "-role", "-games", "-expires-in", "-connect-timeout"}},
		{[]string{"apikey", "list"}, []string{"usage: herald apikey list", "-database-url"}},
		{[]string{"apikey", "revoke"}, []string{"usage: herald apikey revoke", "ID"}},
		{[]string{"sim"}, []string{"usage: herald sim", "-players", "-broker"}},
		{[]string{"version"}, []string{"usage: herald version"}},
	} {
		for _, h := range []string{"-h", "--help"} {
			args := append(append([]string{}, c.args...), h)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, vars, &stdout, &stderr)
			require.NoError(t, err, "%v", args)
			require.Equal(t, 0, exitCode(err, &stderr))
			require.Empty(t, stderr.String(), "%v", args)
			require.True(t, strings.HasPrefix(stdout.String(), "usage: herald"), "%v: %s", args, stdout.String())
			for _, w := range c.want {
				require.Contains(t, stdout.String(), w, "%v", args)
			}
			require.NotContains(t, stdout.String(), "9s3cret", "%v: -h shows no password", args)
		}
	}
	var viaHelp, viaFlag bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"help", "apikey"}, vars, &viaHelp, io.Discard))
	require.NoError(t, run(context.Background(), []string{"apikey", "-h"}, vars, &viaFlag, io.Discard))
	require.Equal(t, viaFlag.String(), viaHelp.String(), "herald help COMMAND is COMMAND -h")
}

// TestCommandLineMistakes: a mistake on the command line is reported in one
// line that names it, then a hint where the usage is, and exits 2; nothing
// is connected to.
func TestCommandLineMistakes(t *testing.T) {
	vars := env(map[string]string{"HERALD_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"})
	for _, c := range []struct {
		args    []string
		command string // whose -h the hint names
		want    string // in the error line
	}{
		{nil, "herald", "no command"},
		{[]string{"frobnicate"}, "herald", `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, "herald", `unknown command "frobnicate"`},
		{[]string{"serve", "--bogus"}, "herald serve", "-bogus"},
		{[]string{"serve", "--dispatch-lease", "abc"}, "herald serve", "dispatch-lease"},
		{[]string{"serve", "extra"}, "herald serve", `unexpected argument "extra"`},
		{[]string{"serve", "--connect-timeout", "1ms"}, "herald serve", "connect-timeout"},
		{[]string{"migrate"}, "herald migrate", "up, down or version"},
		{[]string{"migrate", "sideways"}, "herald migrate", `"sideways"`},
		{[]string{"migrate", "up", "--bogus"}, "herald migrate", "-bogus"},
		{[]string{"migrate", "up", "down"}, "herald migrate", `unexpected argument "down"`},
		{[]string{"apikey"}, "herald apikey", "create, list or revoke"},
		{[]string{"apikey", "-x"}, "herald apikey", `"-x"`},
		{[]string{"apikey", "create", "--bogus"}, "herald apikey create", "-bogus"},
		{[]string{"apikey", "create", "--role", "admin"}, "herald apikey create", "--name"},
		{[]string{"apikey", "list", "extra"}, "herald apikey list", `unexpected argument "extra"`},
		{[]string{"apikey", "revoke"}, "herald apikey revoke", "id"},
		{[]string{"apikey", "revoke", "nope"}, "herald apikey revoke", `"nope"`},
		{[]string{"sim", "--bogus"}, "herald sim", "-bogus"},
		{[]string{"sim", "--game", "g1"}, "herald sim", "--players"},
		{[]string{"version", "extra"}, "herald version", `unexpected argument "extra"`},
	} {
		var stdout bytes.Buffer
		err := run(context.Background(), c.args, vars, &stdout, io.Discard)
		require.Error(t, err, "%v", c.args)
		var stderr bytes.Buffer
		require.Equal(t, 2, exitCode(err, &stderr), "%v: a usage error exits 2", c.args)
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		require.Len(t, lines, 2, "%v: one line and a hint: %s", c.args, stderr.String())
		require.True(t, strings.HasPrefix(lines[0], c.command+": "), "%v: %s", c.args, lines[0])
		require.Contains(t, lines[0], c.want, "%v", c.args)
		require.Equal(t, "run '"+c.command+" -h' for usage", lines[1], "%v", c.args)
		require.Empty(t, stdout.String(), "%v", c.args)
	}

	// A variable that does not parse is named, for every command that reads it.
	for _, args := range [][]string{{"serve"}, {"migrate", "up"}, {"apikey", "list"}} {
		err := run(context.Background(), args, env(map[string]string{"HERALD_CONNECT_TIMEOUT": "10"}), io.Discard, io.Discard)
		require.ErrorContains(t, err, "HERALD_CONNECT_TIMEOUT", "%v", args)
		require.Equal(t, 2, exitCode(err, io.Discard), "%v", args)
	}

	// Flags and arguments in any order; "--" ends the flags.
	cmd := newCommand("herald x", "usage: herald x")
	var n int
	cmd.flags.IntVar(&n, "n", 0, "")
	args, help, err := cmd.parse([]string{"a", "-n", "3", "b", "--", "-c", "-n"}, io.Discard)
	require.NoError(t, err)
	require.False(t, help)
	require.Equal(t, 3, n)
	require.Equal(t, []string{"a", "b", "-c", "-n"}, args)
}

// TestOtherFailuresExitOne: a failure that is not a usage mistake is one
// line, "herald: ...", and exits 1.
func TestOtherFailuresExitOne(t *testing.T) {
	err := run(context.Background(), []string{"apikey", "list", "--connect-timeout", "1s"},
		env(map[string]string{"HERALD_DATABASE_URL": "postgres://nobody@127.0.0.1:" + refusingPort(t) + "/none"}), io.Discard, io.Discard)
	var stderr bytes.Buffer
	require.Equal(t, 1, exitCode(err, &stderr))
	require.Equal(t, 1, strings.Count(stderr.String(), "\n"), stderr.String())
	require.True(t, strings.HasPrefix(stderr.String(), "herald: "), stderr.String())
}
