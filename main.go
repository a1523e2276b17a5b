// Command herald is the push control plane for game live-ops: a REST API over an
// MQTT broker. See README.md for how to run it and openapi.yaml for the API.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldpush/herald/api"
	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/idempotency"
	"github.com/heraldpush/herald/kickouts"
	"github.com/heraldpush/herald/migrations"
	"github.com/heraldpush/herald/mqttout"
	"github.com/heraldpush/herald/postgres"
	"github.com/heraldpush/herald/scheduler"
	"github.com/heraldpush/herald/segments"
)

//go:embed openapi.yaml
var openapiSpec []byte

// version is set at build time with -ldflags "-X main.version=..."; otherwise the
// module version from the build info is used.
var version = ""

const usage = `usage: herald <command> [flags]

commands:
  serve                   run the HTTP API (flags: herald serve -h)
  migrate up|down|version apply all pending migrations, revert the newest one, or show the version
  apikey create|list|revoke manage API keys (herald apikey for its flags)
  sim                     simulate game clients receiving what Herald sends (herald sim -h)
  version                 print the version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "herald:", err)
		}
		os.Exit(2)
	}
}

// run is the whole program, callable from tests: it runs the command in args
// until it finishes or ctx is canceled.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stderr)
	case "migrate":
		return migrate(args[1:], getenv, stdout, stderr)
	case "apikey":
		return apikey(ctx, args[1:], getenv, stdout, stderr)
	case "sim":
		return simulate(ctx, args[1:], getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "herald", buildVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func migrate(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dbURL string
	bindDatabase(fs, getenv, &dbURL)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch fs.Arg(0) {
	case "up":
		return migrations.Up(dbURL)
	case "down":
		return migrations.Down(dbURL)
	case "version":
		v, dirty, err := migrations.Version(dbURL)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d", v)
		if dirty {
			fmt.Fprint(stdout, " (dirty: a migration failed half-way; fix the schema by hand)")
		}
		fmt.Fprintln(stdout)
		return nil
	}
	return errors.New("usage: herald migrate [--database-url URL] up|down|version")
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("herald serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envErr := bindServe(fs, getenv, &cfg)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if envErr != nil {
		return fmt.Errorf("configuration: %w", envErr)
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	log.Info("starting herald", "version", buildVersion(), "config", cfg.logValue())

	if cfg.Migrate {
		if err := migrations.Up(cfg.DatabaseURL); err != nil {
			return fmt.Errorf("apply migrations: %w", err)
		}
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Timeout: cfg.DBTimeout})
	if err != nil {
		return err
	}
	defer pool.Close()
	broker, err := mqttout.Dial(mqttout.Config{
		URL: cfg.MQTTURL, Username: cfg.MQTTUsername, Password: cfg.MQTTPassword, TLS: cfg.MQTTTLS, Log: log,
	})
	if err != nil {
		return fmt.Errorf("set up broker connection: %w", err)
	}
	defer broker.Close()

	campaignStore := campaigns.NewStore(pool, 0)
	gameStore := games.NewStore(pool)
	workers := campaignStore.NewWorker(campaigns.WorkerConfig{Publisher: broker, Prefix: cfg.TopicPrefix, Log: log, Lease: cfg.DispatchLease})
	kicks := kickouts.New(kickouts.Config{DB: pool, Games: gameStore, Publisher: broker, Prefix: cfg.TopicPrefix, Log: log, DBTimeout: cfg.DBTimeout})
	idempotent := idempotency.NewStore(pool, nil)
	sched := scheduler.New(scheduler.Config{DB: pool, Campaigns: campaignStore, Log: log, Grace: cfg.FireGrace, StepTimeout: cfg.DBTimeout,
		Janitors: []scheduler.Janitor{{What: "expired idempotency keys", Purge: func(ctx context.Context) (int64, error) {
			return idempotent.Purge(ctx, purgeBatch)
		}}}})
	guard := campaignStore.NewGuard(campaigns.GuardConfig{Broker: broker, Prefix: cfg.TopicPrefix, Log: log})
	// Background work outlives requests but not the process: it stops after the
	// HTTP server (deferred calls run in reverse), before the broker and the pool.
	workers.Start(context.WithoutCancel(ctx))
	defer workers.Stop()
	sched.Start(context.WithoutCancel(ctx))
	defer sched.Stop()
	guard.Start(context.WithoutCancel(ctx))
	defer guard.Stop()
	kicks.Start(context.WithoutCancel(ctx))
	defer kicks.Stop()

	var registry *prometheus.Registry
	if cfg.Metrics {
		registry = newMetrics(broker, workers, guard)
	}
	srv := api.New(api.Config{
		Log: log, DB: pool, Broker: broker, Keys: auth.NewStore(pool),
		Games: gameStore, Segments: segments.NewStore(pool), Campaigns: campaignStore,
		Kickouts: kicks, Idempotency: idempotent,
		TopicPrefix: cfg.TopicPrefix, OpenAPI: openapiSpec,
		RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst, Metrics: registry,
		AuthFailRate: cfg.AuthFailRate, AuthFailBurst: cfg.AuthFailBurst,
		DBTimeout: cfg.DBTimeout, MaxUploads: cfg.MaxUploads,
	})
	// Slow clients cannot hold connections: every phase of a request has a
	// deadline. Member uploads, which may stream for minutes, move theirs forward
	// as data arrives (api.replaceMembers).
	httpServer := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	log.Info("listening", "addr", ln.Addr().String())

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down http server: %w", err)
	}
	log.Info("stopped")
	return nil
}

// purgeBatch is how many rows one round of the janitor deletes at most.
const purgeBatch = 10_000

func buildVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "devel"
}
