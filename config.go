package main

import (
	"flag"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/mqttout"
	"github.com/heraldpush/herald/topics"
)

// config is everything `herald serve` can be told. Each field has a flag and a
// HERALD_* environment variable; a flag given on the command line wins.
type config struct {
	HTTPAddr     string
	DatabaseURL  string
	MQTTURL      string
	MQTTUsername string
	MQTTPassword string
	MQTTTLS      mqttout.TLSConfig
	TopicPrefix  string
	Migrate      bool
	LogLevel     slog.Level
	// DispatchLease is how long a replica that died keeps the dispatches it was
	// sending before another replica resumes them.
	DispatchLease time.Duration
	// FireGrace is how late a scheduled send may still go out after Herald was
	// down; a later one is recorded as missed.
	FireGrace time.Duration
	// RateLimit and RateBurst size each API key's token bucket.
	RateLimit float64
	RateBurst int
	// Metrics turns /metrics on.
	Metrics bool
	// DBTimeout bounds the database work of each request (and connecting):
	// past it the request answers 503.
	DBTimeout time.Duration
	// MaxUploads is how many member uploads one replica streams at once; each
	// holds a database connection for as long as it streams.
	MaxUploads int
}

const defaultDatabaseURL = "postgres://herald:herald@127.0.0.1:5432/herald?sslmode=disable"

// bindDatabase registers the database flag shared by serve and migrate.
func bindDatabase(fs *flag.FlagSet, getenv func(string) string, dst *string) {
	fs.StringVar(dst, "database-url", envOr(getenv, "HERALD_DATABASE_URL", defaultDatabaseURL),
		"Postgres connection URL (HERALD_DATABASE_URL)")
}

// bindServe registers serve's flags, with defaults taken from the environment.
func bindServe(fs *flag.FlagSet, getenv func(string) string, c *config) {
	fs.StringVar(&c.HTTPAddr, "http-addr", envOr(getenv, "HERALD_HTTP_ADDR", "127.0.0.1:8080"),
		"address the HTTP API listens on (HERALD_HTTP_ADDR)")
	bindDatabase(fs, getenv, &c.DatabaseURL)
	fs.StringVar(&c.MQTTURL, "mqtt-url", envOr(getenv, "HERALD_MQTT_URL", "tcp://127.0.0.1:1883"),
		"MQTT broker URL: tcp://, ssl:// or mqtts:// (HERALD_MQTT_URL)")
	fs.StringVar(&c.MQTTUsername, "mqtt-username", getenv("HERALD_MQTT_USERNAME"),
		"MQTT user name (HERALD_MQTT_USERNAME)")
	fs.StringVar(&c.MQTTPassword, "mqtt-password", getenv("HERALD_MQTT_PASSWORD"),
		"MQTT password; prefer the environment variable, flags show in ps (HERALD_MQTT_PASSWORD)")
	fs.StringVar(&c.MQTTTLS.CAFile, "mqtt-ca-file", getenv("HERALD_MQTT_CA_FILE"),
		"PEM file of the CA certificates that sign the broker's, for a TLS URL; default: the system's (HERALD_MQTT_CA_FILE)")
	fs.StringVar(&c.MQTTTLS.CertFile, "mqtt-cert-file", getenv("HERALD_MQTT_CERT_FILE"),
		"PEM client certificate, for a broker that requires one; with --mqtt-key-file (HERALD_MQTT_CERT_FILE)")
	fs.StringVar(&c.MQTTTLS.KeyFile, "mqtt-key-file", getenv("HERALD_MQTT_KEY_FILE"),
		"PEM unencrypted key of the client certificate (HERALD_MQTT_KEY_FILE)")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", envOr(getenv, "HERALD_TOPIC_PREFIX", "herald"),
		"first topic level(s) of every topic Herald publishes (HERALD_TOPIC_PREFIX)")
	migrate, _ := strconv.ParseBool(envOr(getenv, "HERALD_MIGRATE", "true"))
	fs.BoolVar(&c.Migrate, "migrate", migrate,
		"apply pending database migrations at start (HERALD_MIGRATE)")
	lease, _ := time.ParseDuration(envOr(getenv, "HERALD_DISPATCH_LEASE", "15s"))
	fs.DurationVar(&c.DispatchLease, "dispatch-lease", lease,
		"how long a dead replica's dispatches wait before another resumes them (HERALD_DISPATCH_LEASE)")
	grace, _ := time.ParseDuration(envOr(getenv, "HERALD_FIRE_GRACE", "5m"))
	fs.DurationVar(&c.FireGrace, "fire-grace", grace,
		"how late a missed scheduled send is still sent after a restart (HERALD_FIRE_GRACE)")
	rateLimit, _ := strconv.ParseFloat(envOr(getenv, "HERALD_RATE_LIMIT", "100"), 64)
	fs.Float64Var(&c.RateLimit, "rate-limit", rateLimit, "requests per second each API key may make (HERALD_RATE_LIMIT)")
	rateBurst, _ := strconv.Atoi(envOr(getenv, "HERALD_RATE_BURST", "200"))
	fs.IntVar(&c.RateBurst, "rate-burst", rateBurst, "requests an API key may make at once above its rate (HERALD_RATE_BURST)")
	metrics, _ := strconv.ParseBool(envOr(getenv, "HERALD_METRICS", "true"))
	fs.BoolVar(&c.Metrics, "metrics", metrics, "serve Prometheus metrics at /metrics, without authentication (HERALD_METRICS)")
	dbTimeout, _ := time.ParseDuration(envOr(getenv, "HERALD_DB_TIMEOUT", "5s"))
	fs.DurationVar(&c.DBTimeout, "db-timeout", dbTimeout,
		"how long a request may wait for Postgres before it answers 503 (HERALD_DB_TIMEOUT)")
	maxUploads, _ := strconv.Atoi(envOr(getenv, "HERALD_MAX_UPLOADS", "4"))
	fs.IntVar(&c.MaxUploads, "max-uploads", maxUploads,
		"member uploads streamed at once by this replica; more answer 503 (HERALD_MAX_UPLOADS)")
	c.LogLevel = slog.LevelInfo
	_ = c.LogLevel.UnmarshalText([]byte(envOr(getenv, "HERALD_LOG_LEVEL", "info")))
	fs.TextVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (HERALD_LOG_LEVEL)")
}

// validate refuses a configuration Herald cannot run with, naming the setting.
func (c *config) validate() error {
	var errs fielderr.List
	if _, err := url.Parse(c.DatabaseURL); err != nil || c.DatabaseURL == "" {
		errs.Add("database-url", "must be a postgres:// URL")
	}
	if u, err := url.Parse(c.MQTTURL); err != nil || u.Host == "" {
		errs.Add("mqtt-url", "must be a URL such as tcp://127.0.0.1:1883")
	} else if !validMQTTScheme(u.Scheme) {
		errs.Add("mqtt-url", "scheme %q is not one of tcp, mqtt, ssl, tls, mqtts", u.Scheme)
	} else if !c.MQTTTLS.IsZero() && (u.Scheme == "tcp" || u.Scheme == "mqtt") {
		errs.Add("mqtt-url", "must be a TLS URL (mqtts://, ssl:// or tls://) when TLS files are set")
	}
	if (c.MQTTTLS.CertFile == "") != (c.MQTTTLS.KeyFile == "") {
		errs.Add("mqtt-cert-file", "and mqtt-key-file go together: set both or neither")
	}
	if c.RateLimit <= 0 {
		errs.Add("rate-limit", "must be positive")
	}
	if c.RateBurst < 1 {
		errs.Add("rate-burst", "must be at least 1")
	}
	if c.FireGrace <= 0 {
		errs.Add("fire-grace", "must be positive")
	}
	if c.DBTimeout < 100*time.Millisecond {
		errs.Add("db-timeout", "must be at least 100ms")
	}
	if c.MaxUploads < 1 {
		errs.Add("max-uploads", "must be at least 1")
	}
	if c.DispatchLease < time.Second {
		errs.Add("dispatch-lease", "must be at least 1s")
	}
	for _, level := range strings.Split(c.TopicPrefix, "/") {
		if err := topics.CheckID(level); err != nil {
			errs.Add("topic-prefix", "each level %v", err)
			break
		}
	}
	return errs.Err()
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
		slog.String("mqtt_url", redactURL(c.MQTTURL)),
		slog.String("mqtt_username", c.MQTTUsername),
		slog.Bool("mqtt_password_set", c.MQTTPassword != ""),
		slog.String("mqtt_ca_file", c.MQTTTLS.CAFile),
		slog.Bool("mqtt_client_cert_set", c.MQTTTLS.CertFile != ""),
		slog.String("topic_prefix", c.TopicPrefix),
		slog.Bool("migrate", c.Migrate),
		slog.Duration("dispatch_lease", c.DispatchLease),
		slog.Duration("fire_grace", c.FireGrace),
		slog.Float64("rate_limit", c.RateLimit),
		slog.Int("rate_burst", c.RateBurst),
		slog.Bool("metrics", c.Metrics),
		slog.String("db_timeout", c.DBTimeout.String()),
		slog.Int("max_uploads", c.MaxUploads),
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
