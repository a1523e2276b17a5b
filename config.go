package main

import (
	"flag"
	"io"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/mqttout"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/receipts"
)

// config is everything `herald serve` can be told. Each field has a flag and a
// HERALD_* environment variable; a flag given on the command line wins.
type config struct {
	HTTPAddr    string
	DatabaseURL string
	// ConnectTimeout bounds each attempt to connect to Postgres.
	ConnectTimeout time.Duration
	MQTTURL        string
	MQTTUsername   string
	MQTTPassword   string
	MQTTTLS        mqttout.TLSConfig
	// MQTTConnections is how many broker connections a replica publishes over.
	MQTTConnections int
	TopicPrefix     string
	Migrate         bool
	LogLevel        slog.Level
	// DispatchLease is how long a replica that died keeps the dispatches it was
	// sending before another replica resumes them.
	DispatchLease time.Duration
	// DispatchWorkers is how many sends one replica works on at once.
	DispatchWorkers int
	// FireGrace is how late a scheduled send may still go out after Herald was
	// down; a later one is recorded as missed.
	FireGrace time.Duration
	// RateLimit and RateBurst size each API key's token bucket.
	RateLimit float64
	RateBurst int
	// AuthFailRate and AuthFailBurst size each client address's bucket of
	// failed authentications.
	AuthFailRate  float64
	AuthFailBurst int
	// Metrics turns /metrics on.
	Metrics bool
	// PprofAddr, if set, is where a debug listener serves net/http/pprof, so
	// that a CPU profile can be taken of a running Herald (make bench does).
	PprofAddr string
	// DBTimeout bounds the database work of each request (and connecting):
	// past it the request answers 503.
	DBTimeout time.Duration
	// MaxUploads is how many member uploads one replica streams at once; each
	// holds a database connection for as long as it streams.
	MaxUploads int
	// ReceiptRetention is how long receipts are kept (whole days are dropped).
	ReceiptRetention time.Duration
	// ReceiptBuffer is how many receipts one replica holds between the broker
	// and Postgres: the bound of its memory and of what a crash loses.
	ReceiptBuffer int
}

const defaultDatabaseURL = "postgres://herald:herald@127.0.0.1:5432/herald?sslmode=disable"

// defaultConnectTimeout is how long Herald waits for Postgres to answer a new
// connection unless told otherwise.
const defaultConnectTimeout = 10 * time.Second

// bindDatabase registers the flags of every command that reaches Postgres.
func bindDatabase(fs *flag.FlagSet, env *envReader, dbURL *string, connectTimeout *time.Duration) {
	fs.StringVar(dbURL, "database-url", envOr(env.getenv, "HERALD_DATABASE_URL", defaultDatabaseURL),
		"Postgres connection URL (HERALD_DATABASE_URL)")
	fs.Lookup("database-url").DefValue = redactURL(*dbURL) // -h never shows a password
	fs.DurationVar(connectTimeout, "connect-timeout", env.duration("HERALD_CONNECT_TIMEOUT", defaultConnectTimeout),
		"how long to wait for Postgres to answer a new connection, unless the URL sets connect_timeout (HERALD_CONNECT_TIMEOUT)")
}

// validateDatabase checks what bindDatabase read.
func validateDatabase(errs *fielderr.List, dbURL string, connectTimeout time.Duration) {
	if _, err := url.Parse(dbURL); err != nil || dbURL == "" {
		errs.Add("database-url (HERALD_DATABASE_URL)", "must be a postgres:// URL")
	}
	if connectTimeout < 100*time.Millisecond {
		errs.Add("connect-timeout (HERALD_CONNECT_TIMEOUT)", "must be at least 100ms")
	}
}

// database is how a command other than serve reaches Postgres.
type database struct {
	URL            string
	ConnectTimeout time.Duration
}

// parseWithDatabase parses the flags of cmd, a command that reaches Postgres,
// with the database flags added to those it has, and checks them.
func parseWithDatabase(cmd *command, args []string, getenv func(string) string, stdout io.Writer) (db database, positional []string, help bool, err error) {
	env := envReader{getenv: getenv}
	bindDatabase(cmd.flags, &env, &db.URL, &db.ConnectTimeout)
	positional, help, err = cmd.parse(args, stdout)
	if help || err != nil {
		return db, nil, help, err
	}
	errs := env.errs
	validateDatabase(&errs, db.URL, db.ConnectTimeout)
	if err := errs.Err(); err != nil {
		return db, nil, false, cmd.errorf("%v", err)
	}
	return db, positional, false, nil
}

const serveUsage = `usage: herald serve [flags]

Runs the HTTP API: applies pending migrations (unless --migrate=false),
connects to the broker in the background (serving while it is down), and runs
until SIGINT or SIGTERM, then finishes the requests in flight. Each flag can
also be set by the HERALD_* environment variable in its description; a flag
given on the command line wins.`

// serveConfig reads serve's flags and environment and checks them. help
// means that the usage was printed and there is nothing to serve.
func serveConfig(args []string, getenv func(string) string, stdout io.Writer) (cfg config, help bool, err error) {
	cmd := newCommand("herald serve", serveUsage)
	envErr := bindServe(cmd.flags, getenv, &cfg)
	rest, help, err := cmd.parse(args, stdout)
	if help || err != nil {
		return cfg, help, err
	}
	if err := cmd.noArguments(rest); err != nil {
		return cfg, false, err
	}
	if envErr != nil {
		return cfg, false, cmd.errorf("configuration: %v", envErr)
	}
	if err := cfg.validate(); err != nil {
		return cfg, false, cmd.errorf("configuration: %v", err)
	}
	return cfg, false, nil
}

// bindServe registers serve's flags, with defaults taken from the environment.
// It returns an error naming every HERALD_* variable whose value it cannot
// parse: a typo in a deployment must stop Herald, not quietly take a default.
func bindServe(fs *flag.FlagSet, getenv func(string) string, c *config) error {
	env := envReader{getenv: getenv}
	fs.StringVar(&c.HTTPAddr, "http-addr", envOr(getenv, "HERALD_HTTP_ADDR", "127.0.0.1:8080"),
		"address the HTTP API listens on (HERALD_HTTP_ADDR)")
	bindDatabase(fs, &env, &c.DatabaseURL, &c.ConnectTimeout)
	fs.StringVar(&c.MQTTURL, "mqtt-url", envOr(getenv, "HERALD_MQTT_URL", "tcp://127.0.0.1:1883"),
		"MQTT broker URL: tcp://, ssl:// or mqtts:// (HERALD_MQTT_URL)")
	fs.StringVar(&c.MQTTUsername, "mqtt-username", getenv("HERALD_MQTT_USERNAME"),
		"MQTT user name (HERALD_MQTT_USERNAME)")
	fs.StringVar(&c.MQTTPassword, "mqtt-password", getenv("HERALD_MQTT_PASSWORD"),
		"MQTT password; prefer the environment variable, flags show in ps (HERALD_MQTT_PASSWORD)")
	fs.Lookup("mqtt-password").DefValue = "" // -h never shows it
	fs.StringVar(&c.MQTTTLS.CAFile, "mqtt-ca-file", getenv("HERALD_MQTT_CA_FILE"),
		"PEM file of the CA certificates that sign the broker's, for a TLS URL; default: the system's (HERALD_MQTT_CA_FILE)")
	fs.StringVar(&c.MQTTTLS.CertFile, "mqtt-cert-file", getenv("HERALD_MQTT_CERT_FILE"),
		"PEM client certificate, for a broker that requires one; with --mqtt-key-file (HERALD_MQTT_CERT_FILE)")
	fs.StringVar(&c.MQTTTLS.KeyFile, "mqtt-key-file", getenv("HERALD_MQTT_KEY_FILE"),
		"PEM unencrypted key of the client certificate (HERALD_MQTT_KEY_FILE)")
	fs.IntVar(&c.MQTTConnections, "mqtt-connections", env.int("HERALD_MQTT_CONNECTIONS", mqttout.DefaultConnections),
		"broker connections a replica publishes over, together (HERALD_MQTT_CONNECTIONS)")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", envOr(getenv, "HERALD_TOPIC_PREFIX", "herald"),
		"first topic level(s) of every topic Herald publishes (HERALD_TOPIC_PREFIX)")
	fs.BoolVar(&c.Migrate, "migrate", env.bool("HERALD_MIGRATE", true),
		"apply pending database migrations at start (HERALD_MIGRATE)")
	fs.DurationVar(&c.DispatchLease, "dispatch-lease", env.duration("HERALD_DISPATCH_LEASE", 15*time.Second),
		"how long a dead replica's dispatches wait before another resumes them (HERALD_DISPATCH_LEASE)")
	fs.IntVar(&c.DispatchWorkers, "dispatch-workers", env.int("HERALD_DISPATCH_WORKERS", dispatch.DefaultWorkers),
		"sends one replica works on at once (HERALD_DISPATCH_WORKERS)")
	fs.DurationVar(&c.FireGrace, "fire-grace", env.duration("HERALD_FIRE_GRACE", 5*time.Minute),
		"how late a missed scheduled send is still sent after a restart (HERALD_FIRE_GRACE)")
	fs.Float64Var(&c.RateLimit, "rate-limit", env.float("HERALD_RATE_LIMIT", 100),
		"requests per second each API key may make (HERALD_RATE_LIMIT)")
	fs.IntVar(&c.RateBurst, "rate-burst", env.int("HERALD_RATE_BURST", 200),
		"requests an API key may make at once above its rate (HERALD_RATE_BURST)")
	fs.Float64Var(&c.AuthFailRate, "auth-fail-rate", env.float("HERALD_AUTH_FAIL_RATE", 10),
		"failed authentications per second a client address may make before it must wait (HERALD_AUTH_FAIL_RATE)")
	fs.IntVar(&c.AuthFailBurst, "auth-fail-burst", env.int("HERALD_AUTH_FAIL_BURST", 100),
		"failed authentications a client address may make at once above that rate (HERALD_AUTH_FAIL_BURST)")
	fs.BoolVar(&c.Metrics, "metrics", env.bool("HERALD_METRICS", true),
		"serve Prometheus metrics at /metrics, without authentication (HERALD_METRICS)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", envOr(env.getenv, "HERALD_PPROF_ADDR", ""),
		"address of a debug listener serving /debug/pprof/, without authentication; empty: none (HERALD_PPROF_ADDR)")
	fs.DurationVar(&c.DBTimeout, "db-timeout", env.duration("HERALD_DB_TIMEOUT", 5*time.Second),
		"how long a request may wait for Postgres before it answers 503 (HERALD_DB_TIMEOUT)")
	fs.IntVar(&c.MaxUploads, "max-uploads", env.int("HERALD_MAX_UPLOADS", 4),
		"member uploads streamed at once by this replica; more answer 503 (HERALD_MAX_UPLOADS)")
	fs.DurationVar(&c.ReceiptRetention, "receipt-retention", env.duration("HERALD_RECEIPT_RETENTION", receipts.DefaultRetention),
		"how long client receipts are kept, at least 24h (HERALD_RECEIPT_RETENTION)")
	fs.IntVar(&c.ReceiptBuffer, "receipt-buffer", env.int("HERALD_RECEIPT_BUFFER", receipts.DefaultBuffer),
		"receipts held between the broker and Postgres; when full, the broker waits (HERALD_RECEIPT_BUFFER)")
	c.LogLevel = env.level("HERALD_LOG_LEVEL", slog.LevelInfo)
	fs.TextVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (HERALD_LOG_LEVEL)")
	return env.errs.Err()
}

// envReader reads typed HERALD_* variables for flag defaults, and keeps an
// error naming each variable that is set but cannot be parsed.
type envReader struct {
	getenv func(string) string
	errs   fielderr.List
}

// read parses the variable key with parse when it is set, and returns def when
// it is not set or cannot be parsed (the error is kept).
func read[T any](e *envReader, key string, def T, want string, parse func(string) (T, error)) T {
	v := e.getenv(key)
	if v == "" {
		return def
	}
	parsed, err := parse(v)
	if err != nil {
		e.errs.Add(key, "must be %s, not %q", want, v)
		return def
	}
	return parsed
}

func (e *envReader) bool(key string, def bool) bool {
	return read(e, key, def, "true or false", strconv.ParseBool)
}

func (e *envReader) duration(key string, def time.Duration) time.Duration {
	return read(e, key, def, "a duration such as 15s or 5m", time.ParseDuration)
}

func (e *envReader) float(key string, def float64) float64 {
	return read(e, key, def, "a number", func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })
}

func (e *envReader) int(key string, def int) int {
	return read(e, key, def, "a whole number", strconv.Atoi)
}

func (e *envReader) level(key string, def slog.Level) slog.Level {
	return read(e, key, def, "debug, info, warn or error", func(s string) (slog.Level, error) {
		var l slog.Level
		err := l.UnmarshalText([]byte(s))
		return l, err
	})
}

// validate refuses a configuration Herald cannot run with, naming the setting.
func (c *config) validate() error {
	var errs fielderr.List
	validateDatabase(&errs, c.DatabaseURL, c.ConnectTimeout)
	if u, err := url.Parse(c.MQTTURL); err != nil || u.Host == "" {
		errs.Add("mqtt-url (HERALD_MQTT_URL)", "must be a URL such as tcp://127.0.0.1:1883")
	} else if !validMQTTScheme(u.Scheme) {
		errs.Add("mqtt-url (HERALD_MQTT_URL)", "scheme %q is not one of tcp, mqtt, ssl, tls, mqtts", u.Scheme)
	} else if !c.MQTTTLS.IsZero() && (u.Scheme == "tcp" || u.Scheme == "mqtt") {
		errs.Add("mqtt-url (HERALD_MQTT_URL)", "must be a TLS URL (mqtts://, ssl:// or tls://) when TLS files are set")
	}
	if (c.MQTTTLS.CertFile == "") != (c.MQTTTLS.KeyFile == "") {
		errs.Add("mqtt-cert-file (HERALD_MQTT_CERT_FILE)", "and mqtt-key-file go together: set both or neither")
	}
	if !positive(c.RateLimit) {
		errs.Add("rate-limit (HERALD_RATE_LIMIT)", "must be a positive number")
	}
	if c.RateBurst < 1 {
		errs.Add("rate-burst (HERALD_RATE_BURST)", "must be at least 1")
	}
	if !positive(c.AuthFailRate) {
		errs.Add("auth-fail-rate (HERALD_AUTH_FAIL_RATE)", "must be a positive number")
	}
	if c.AuthFailBurst < 1 {
		errs.Add("auth-fail-burst (HERALD_AUTH_FAIL_BURST)", "must be at least 1")
	}
	if c.FireGrace <= 0 {
		errs.Add("fire-grace (HERALD_FIRE_GRACE)", "must be positive")
	}
	if c.DBTimeout < 100*time.Millisecond {
		errs.Add("db-timeout (HERALD_DB_TIMEOUT)", "must be at least 100ms")
	}
	if c.MaxUploads < 1 {
		errs.Add("max-uploads (HERALD_MAX_UPLOADS)", "must be at least 1")
	}
	if c.ReceiptRetention < 24*time.Hour {
		errs.Add("receipt-retention (HERALD_RECEIPT_RETENTION)", "must be at least 24h")
	}
	if c.ReceiptBuffer < 1 {
		errs.Add("receipt-buffer (HERALD_RECEIPT_BUFFER)", "must be at least 1")
	}
	if c.DispatchWorkers < 1 {
		errs.Add("dispatch-workers (HERALD_DISPATCH_WORKERS)", "must be at least 1")
	}
	if c.MQTTConnections < 1 || c.MQTTConnections > mqttout.MaxConnections {
		errs.Add("mqtt-connections (HERALD_MQTT_CONNECTIONS)", "must be 1 to %d", mqttout.MaxConnections)
	}
	if c.DispatchLease < time.Second {
		errs.Add("dispatch-lease (HERALD_DISPATCH_LEASE)", "must be at least 1s")
	}
	for _, level := range strings.Split(c.TopicPrefix, "/") {
		if err := protocol.CheckID(level); err != nil {
			errs.Add("topic-prefix (HERALD_TOPIC_PREFIX)", "each level %v", err)
			break
		}
	}
	return errs.Err()
}

// positive reports whether f is a finite number above zero (not NaN, not Inf).
func positive(f float64) bool {
	return f > 0 && !math.IsInf(f, 1)
}

func validMQTTScheme(s string) bool {
	switch s {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
		return true
	}
	return false
}

// logValue shows the configuration with its secrets masked.
func (c *config) logValue() slog.Value {
	return slog.GroupValue(
		slog.String("http_addr", c.HTTPAddr),
		slog.String("database_url", redactURL(c.DatabaseURL)),
		slog.String("connect_timeout", c.ConnectTimeout.String()),
		slog.String("mqtt_url", redactURL(c.MQTTURL)),
		slog.String("mqtt_username", c.MQTTUsername),
		slog.Bool("mqtt_password_set", c.MQTTPassword != ""),
		slog.String("mqtt_ca_file", c.MQTTTLS.CAFile),
		slog.Bool("mqtt_client_cert_set", c.MQTTTLS.CertFile != ""),
		slog.Int("mqtt_connections", c.MQTTConnections),
		slog.String("topic_prefix", c.TopicPrefix),
		slog.Bool("migrate", c.Migrate),
		slog.String("dispatch_lease", c.DispatchLease.String()),
		slog.Int("dispatch_workers", c.DispatchWorkers),
		slog.String("fire_grace", c.FireGrace.String()),
		slog.Float64("rate_limit", c.RateLimit),
		slog.Int("rate_burst", c.RateBurst),
		slog.Float64("auth_fail_rate", c.AuthFailRate),
		slog.Int("auth_fail_burst", c.AuthFailBurst),
		slog.Bool("metrics", c.Metrics),
		slog.String("pprof_addr", c.PprofAddr),
		slog.String("db_timeout", c.DBTimeout.String()),
		slog.Int("max_uploads", c.MaxUploads),
		slog.String("receipt_retention", c.ReceiptRetention.String()),
		slog.Int("receipt_buffer", c.ReceiptBuffer),
	)
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
