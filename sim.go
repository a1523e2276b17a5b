package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/heraldpush/herald/internal/sim"
)

const simUsage = `usage: herald sim --game GAME --players N [flags]

Simulates players receiving what Herald sends, through the SDK's own
per-player logic: they connect at the ramp, subscribe from the game's
descriptor, filter, de-duplicate and send receipts like real clients. A
progress line goes to stderr every second; at the end (--duration, or SIGINT
or SIGTERM) a summary goes to stdout.`

// simulate is `herald sim`: simulated players connect through the SDK's
// session logic and count what Herald sends them (internal/sim).
func simulate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := newCommand("herald sim", simUsage)
	fs := cmd.flags
	var (
		cfg             sim.Config
		servers, ramp   string
		asJSON, verbose bool
	)
	fs.StringVar(&cfg.Broker, "broker", envOr(getenv, "HERALD_MQTT_URL", "tcp://127.0.0.1:1883"), "broker URL: tcp://, ssl://, ws://, wss:// (HERALD_MQTT_URL)")
	fs.StringVar(&cfg.Username, "username", "", "MQTT user name of shared connections (--players-per-conn > 1); a player's own connection uses its id")
	fs.StringVar(&cfg.Password, "password", getenv("HERALD_SIM_PASSWORD"), "MQTT password (HERALD_SIM_PASSWORD)")
	fs.Lookup("password").DefValue = "" // -h never shows it
	fs.StringVar(&cfg.Game, "game", "", "game id (required)")
	fs.IntVar(&cfg.Players, "players", 0, "how many players (required)")
	fs.StringVar(&cfg.Prefix, "prefix", "herald", "Herald's topic prefix")
	fs.StringVar(&cfg.PlayerPrefix, "player-prefix", "sim-", "player ids are {prefix}{n}, n from 1")
	fs.StringVar(&servers, "servers", "", "comma-separated servers, one drawn per player: s1,s2")
	fs.Func("tag", "a tag's spread over players: region=eu:60,na:40 (weighted) or level=1..60 (uniform); repeatable", func(s string) error {
		ts, err := sim.ParseTagSpread(s)
		if err != nil {
			return err
		}
		cfg.Tags = append(cfg.Tags, ts)
		return nil
	})
	fs.StringVar(&ramp, "ramp", "500/s", "players connecting per second (0: as fast as possible)")
	fs.Float64Var(&cfg.DisplayRate, "display-rate", 0.5, "share of messages shown that are reported displayed")
	fs.Float64Var(&cfg.ClickRate, "click-rate", 0.1, "share of displayed messages that are reported clicked")
	fs.IntVar(&cfg.PlayersPerConn, "players-per-conn", 1, "players per MQTT connection; 1: each player is a real SDK client")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to run (0: until SIGINT or SIGTERM)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the servers and tags drawn")
	fs.BoolVar(&asJSON, "json", false, "print the summary as JSON on stdout")
	fs.BoolVar(&verbose, "v", false, "log connection problems to stderr")
	rest, help, err := cmd.parse(args, stdout)
	if help || err != nil {
		return err
	}
	if err := cmd.noArguments(rest); err != nil {
		return err
	}
	if cfg.Game == "" || cfg.Players < 1 {
		return cmd.errorf("--game and --players are required")
	}
	if servers != "" {
		cfg.Servers = strings.Split(servers, ",")
	}
	if cfg.Ramp, err = sim.ParseRamp(ramp); err != nil {
		return cmd.errorf("invalid value %q for flag -ramp: %v", ramp, err)
	}
	if verbose {
		cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	cfg.Progress = stderr
	if f, ok := stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			cfg.Live = true
		}
	}
	s, err := sim.New(cfg)
	if err != nil {
		return err
	}
	sum, err := s.Run(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	sum.WriteText(stdout)
	return nil
}
