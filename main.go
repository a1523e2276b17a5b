// Command herald is the push control plane for game live-ops: a REST API over an
// MQTT broker. See README.md for how to run it and openapi.yaml for the API.
package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldpush/herald/api"
	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/idempotency"
	"github.com/heraldpush/herald/internal/brokerlink"
	"github.com/heraldpush/herald/kickouts"
	"github.com/heraldpush/herald/migrations"
	"github.com/heraldpush/herald/mqttout"
	"github.com/heraldpush/herald/postgres"
	"github.com/heraldpush/herald/receipts"
	"github.com/heraldpush/herald/scheduler"
	"github.com/heraldpush/herald/segments"
)

//go:embed openapi.yaml
var openapiSpec []byte

const usage = `usage: herald <command> [flags]

commands:
  serve                      run the HTTP API
  migrate up|down|version    apply pending migrations, revert the newest one, or show the schema version
  apikey create|list|revoke  manage API keys
  sim                        simulate game clients receiving what Herald sends
  version                    print the version, commit and build date

'herald <command> -h' (or 'herald help <command>') shows a command's flags.
`

// commands are what run knows, for `herald help COMMAND`.
var commands = []string{"serve", "migrate", "apikey", "sim", "version"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second SIGINT or SIGTERM ends the process at once
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// run is the whole program, callable from tests: it runs the command in args
// until it finishes or ctx is canceled (SIGINT or SIGTERM).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := runCommand(ctx, args, getenv, stdout, stderr)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	return err
}

func runCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{command: "herald", msg: "no command given (serve, migrate, apikey, sim or version)"}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args[1:], getenv, stdout)
	case "apikey":
		return apikey(ctx, args[1:], getenv, stdout)
	case "sim":
		return simulate(ctx, args[1:], getenv, stdout, stderr)
	case "version":
		return printVersion(args[1:], stdout)
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if !slices.Contains(commands, args[1]) {
				return &usageError{command: "herald", msg: fmt.Sprintf("unknown command %q", args[1])}
			}
			return runCommand(ctx, []string{args[1], "-h"}, getenv, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	return &usageError{command: "herald", msg: fmt.Sprintf("unknown command %q", args[0])}
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, help, err := serveConfig(args, getenv, stdout)
	if help || err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	b := currentBuild()
	log.Info("starting herald", "version", b.Version, "commit", b.Commit, "config", cfg.logValue())

	if cfg.Migrate {
		if err := migrations.Up(ctx, cfg.DatabaseURL, cfg.ConnectTimeout); err != nil {
			if ctx.Err() != nil { // a signal: stopping is what was asked for
				log.Info("stopped while applying migrations at start")
				return nil
			}
			return fmt.Errorf("apply migrations: %w", err)
		}
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Timeout: cfg.DBTimeout, ConnectTimeout: cfg.ConnectTimeout})
	if err != nil {
		return err
	}
	defer pool.Close()
	broker, err := mqttout.Dial(mqttout.Config{
		URL: cfg.MQTTURL, Username: cfg.MQTTUsername, Password: cfg.MQTTPassword, TLS: cfg.MQTTTLS, Log: log,
		Connections: cfg.MQTTConnections,
	})
	if err != nil {
		return fmt.Errorf("set up broker connection: %w", err)
	}
	defer broker.Close()
	pub := brokerlink.Publisher{Conn: broker} // the broker as the domain packages see it

	campaignStore, segmentStore, dispatchStore := campaigns.NewStore(pool, 0), segments.NewStore(pool), dispatch.NewStore(pool)
	gameStore := games.NewStore(pool)
	workers := dispatchStore.NewWorker(dispatch.WorkerConfig{Publisher: pub, Prefix: cfg.TopicPrefix,
		Log: log, Lease: cfg.DispatchLease, Workers: cfg.DispatchWorkers, OnCleared: campaignStore.DispatchCleared})
	campaignStore = campaignStore.HandingOffTo(workers) // its small sends start here the moment they are recorded
	receiptStore := receipts.NewStore(pool, cfg.ReceiptRetention)
	kicks := kickouts.New(kickouts.Config{DB: pool, Receipts: receiptStore, Publisher: broker,
		Prefix: cfg.TopicPrefix, Log: log, DBTimeout: cfg.DBTimeout})
	idempotent := idempotency.NewStore(pool, nil)
	sched := scheduler.New(scheduler.Config{DB: pool, Campaigns: campaignStore, Dispatches: dispatchStore, Lists: segmentStore,
		Log: log, Grace: cfg.FireGrace, StepTimeout: cfg.DBTimeout, Channel: campaigns.ScheduleChannel,
		Janitors: []scheduler.Janitor{
			{What: "expired idempotency keys", Purge: func(ctx context.Context) (int64, error) {
				return idempotent.Purge(ctx, purgeBatch)
			}},
			{What: "kick-outs past the receipt retention", Purge: func(ctx context.Context) (int64, error) {
				return kicks.Purge(ctx, cfg.ReceiptRetention, purgeBatch)
			}},
		}})
	guard := dispatchStore.NewGuard(dispatch.GuardConfig{Broker: pub, Prefix: cfg.TopicPrefix, Log: log,
		OnRestore: games.MarkDescriptorsStale})
	descriptors := gameStore.NewDescriptorPublisher(games.PublisherConfig{Broker: pub,
		Prefix: cfg.TopicPrefix, Log: log})
	// Background work outlives requests but not the process: it stops after the
	// HTTP server (deferred calls run in reverse), before the broker and the pool.
	workers.Start(context.WithoutCancel(ctx))
	defer workers.Stop()
	sched.Start(context.WithoutCancel(ctx))
	defer sched.Stop()
	guard.Start(context.WithoutCancel(ctx))
	defer guard.Stop()
	descriptors.Start(context.WithoutCancel(ctx))
	defer descriptors.Stop()
	kicks.Start(context.WithoutCancel(ctx))
	defer kicks.Stop()
	ingester, receiptsSub, flushSeconds, err := startReceipts(ctx, cfg, receiptStore, kicks.Delivered, log)
	if err != nil {
		return err
	}
	defer ingester.Stop()
	janitor := receiptStore.NewJanitor(receipts.JanitorConfig{Leader: sched.Leader, Log: log})
	janitor.Start(context.WithoutCancel(ctx))
	defer janitor.Stop()

	if cfg.PprofAddr != "" {
		stopPprof, err := startPprof(ctx, cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	var registry *prometheus.Registry
	if cfg.Metrics {
		registry = newMetrics(broker, workers, guard)
		registry.MustRegister(leaderGauge(sched))
		registerDescriptorMetrics(registry, descriptors)
		registerReceiptMetrics(registry, ingester, receiptsSub, flushSeconds)
	}
	srv := api.New(api.Config{
		Log: log, DB: pool, Broker: broker, Keys: auth.NewStore(pool), Audit: audit.NewStore(pool),
		Games: gameStore, Segments: segmentStore, Campaigns: campaignStore,
		Publisher: pub, Kickouts: kicks, Idempotency: idempotent,
		TopicPrefix: cfg.TopicPrefix, OpenAPI: openapiSpec,
		RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst, Metrics: registry,
		AuthFailRate: cfg.AuthFailRate, AuthFailBurst: cfg.AuthFailBurst,
		DBTimeout: cfg.DBTimeout, MaxUploads: cfg.MaxUploads, Receipts: receiptStore,
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
	httpServer.RegisterOnShutdown(kicks.Drain) // waiting kick-outs answer now, not after up to 30 s
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
