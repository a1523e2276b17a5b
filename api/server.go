// Package api is Herald's HTTP interface: routes, request decoding, and the one
// error path that turns domain errors into RFC 9457 problems. It holds no business
// rules; those live in the domain packages it calls.
package api

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/idempotency"
	"github.com/heraldpush/herald/kickouts"
	"github.com/heraldpush/herald/receipts"
	"github.com/heraldpush/herald/segments"
)

// Broker is what readiness needs to know of the MQTT connection.
type Broker interface {
	// Connected reports whether the broker connection is up now.
	Connected() bool
	// LastError says why the latest connection attempt failed (nil: none did).
	LastError() error
}

// Database is what readiness needs to know of Postgres (*pgxpool.Pool).
type Database interface {
	// Ping reports whether Postgres answers.
	Ping(ctx context.Context) error
}

// Config holds what the API serves and talks to.
type Config struct {
	Log         *slog.Logger
	DB          Database
	Broker      Broker
	Keys        *auth.Store
	Audit       *audit.Store
	Games       *games.Store
	Segments    *segments.Store
	Campaigns   *campaigns.Store
	Receipts    *receipts.Store // read by the stats routes
	TopicPrefix string
	OpenAPI     []byte // the openapi.yaml served at /openapi.yaml
	// Publisher sends test sends (POST .../campaigns/{id}/test) to the broker;
	// nil answers them 503.
	Publisher dispatch.Publisher
	// RateLimit and RateBurst size each API key's token bucket (requests per
	// second, and the burst above it); 0 takes 100 and 200.
	RateLimit float64
	RateBurst int
	// AuthFailRate and AuthFailBurst size each client address's bucket of failed
	// authentications (per second, and the burst above it); 0 takes 10 and 100:
	// room for people and scripts that get a key wrong, far below what would
	// load Postgres.
	AuthFailRate  float64
	AuthFailBurst int
	// Metrics, when set, is served at /metrics and gets the HTTP metrics; nil
	// turns /metrics off.
	Metrics *prometheus.Registry
	// DBTimeout bounds the database work of each request (0: 5 s); past it the
	// request answers 503. Member uploads stream for longer (replaceMembers).
	DBTimeout time.Duration
	// MaxUploads is how many member uploads stream at once (0: 4); more answer 503.
	MaxUploads int
	// Kickouts creates, publishes and reports kick-outs.
	Kickouts *kickouts.Service
	// Idempotency keeps the answers of creating POSTs sent with an
	// Idempotency-Key; nil ignores the header.
	Idempotency *idempotency.Store
}

// Server serves the HTTP API.
type Server struct {
	Config
	log    *slog.Logger
	limits *limiter
	// authFails keeps addresses that keep failing to authenticate off Postgres.
	authFails *failLimiter
	uploads   chan struct{} // a slot per member upload in progress
	requests  *prometheus.CounterVec
	router    http.Handler
	// perms records the permission of every /v1 route ("METHOD /v1/pattern"), so
	// that a test can check that no route goes unguarded.
	perms map[string]auth.Permission
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = 100
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = 200
	}
	if cfg.AuthFailRate <= 0 {
		cfg.AuthFailRate = 10
	}
	if cfg.AuthFailBurst <= 0 {
		cfg.AuthFailBurst = 100
	}
	if cfg.DBTimeout <= 0 {
		cfg.DBTimeout = 5 * time.Second
	}
	if cfg.MaxUploads <= 0 {
		cfg.MaxUploads = 4
	}
	s := &Server{Config: cfg, log: cfg.Log, limits: newLimiter(cfg.RateLimit, cfg.RateBurst),
		authFails: newFailLimiter(cfg.AuthFailRate, cfg.AuthFailBurst),
		uploads:   make(chan struct{}, cfg.MaxUploads), perms: map[string]auth.Permission{}}
	if cfg.Metrics != nil {
		s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_http_requests_total", Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "code"})
		cfg.Metrics.MustRegister(s.requests)
	}
	s.router = s.routes()
	return s
}

// Permissions returns the permission each /v1 route requires, keyed by
// "METHOD /v1/pattern". Every /v1 route has one.
func (s *Server) Permissions() map[string]auth.Permission {
	return maps.Clone(s.perms)
}

// Handler returns the router with every route of the API.
func (s *Server) Handler() http.Handler {
	return s.router
}

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.recoverer, s.accessLog)
	r.NotFound(s.notFound)
	r.MethodNotAllowed(s.methodNotAllowed)

	r.Get("/healthz", s.serve(s.healthz))
	r.Get("/readyz", s.serve(s.readyz))
	r.Get("/openapi.yaml", s.serve(s.openapi))
	if s.Metrics != nil {
		r.Method("GET", "/metrics", promhttp.HandlerFor(s.Metrics, promhttp.HandlerOpts{}))
	}

	r.Route("/v1", func(r chi.Router) {
		r.Use(s.authenticate, s.rateLimit)
		s.handleCreate(r, "/games", auth.PermGamesWrite, replayAnswer, s.bounded, s.createGame)
		s.handle(r, "GET", "/games", auth.PermGamesRead, s.listGames)
		s.handle(r, "GET", "/games/{game}", auth.PermGamesRead, s.getGame)
		s.handle(r, "PATCH", "/games/{game}", auth.PermGamesWrite, s.updateGame)
		s.handle(r, "POST", "/games/{game}/archive", auth.PermGamesWrite, s.archiveGame)
		s.handle(r, "POST", "/games/{game}/unarchive", auth.PermGamesWrite, s.unarchiveGame)
		s.handle(r, "POST", "/games/{game}/plan", auth.PermSegmentsRead, s.previewPlan)

		s.handleCreate(r, "/games/{game}/segments", auth.PermSegmentsWrite, replayAnswer, s.bounded, s.createSegment)
		s.handle(r, "GET", "/games/{game}/segments", auth.PermSegmentsRead, s.listSegments)
		s.handle(r, "GET", "/games/{game}/segments/{id}", auth.PermSegmentsRead, s.getSegment)
		s.handle(r, "PATCH", "/games/{game}/segments/{id}", auth.PermSegmentsWrite, s.updateSegment)
		s.handle(r, "DELETE", "/games/{game}/segments/{id}", auth.PermSegmentsWrite, s.deleteSegment)
		s.handleUpload(r, "PUT", "/games/{game}/segments/{id}/members", auth.PermSegmentsWrite, s.replaceMembers)

		// Campaign writes also check the kind: a marquee needs auth.PermMarquee.
		s.handleCreate(r, "/games/{game}/campaigns", auth.PermCampaignsWrite, replayAnswer, s.bounded, s.createCampaign)
		s.handle(r, "GET", "/games/{game}/campaigns", auth.PermCampaignsRead, s.listCampaigns)
		s.handle(r, "GET", "/games/{game}/campaigns/{id}", auth.PermCampaignsRead, s.getCampaign)
		s.handle(r, "PATCH", "/games/{game}/campaigns/{id}", auth.PermCampaignsWrite, s.updateCampaign)
		s.handle(r, "DELETE", "/games/{game}/campaigns/{id}", auth.PermCampaignsWrite, s.deleteCampaign)
		s.handle(r, "POST", "/games/{game}/campaigns/{id}/cancel", auth.PermCampaignsWrite, s.cancelCampaign)
		s.handle(r, "POST", "/games/{game}/campaigns/{id}/pause", auth.PermCampaignsWrite, s.pauseCampaign)
		s.handle(r, "POST", "/games/{game}/campaigns/{id}/resume", auth.PermCampaignsWrite, s.resumeCampaign)
		s.handle(r, "POST", "/games/{game}/campaigns/{id}/test", auth.PermCampaignsWrite, s.testCampaign)
		s.handle(r, "GET", "/games/{game}/campaigns/{id}/dispatches", auth.PermCampaignsRead, s.listDispatches)
		s.handle(r, "GET", "/games/{game}/campaigns/{id}/stats", auth.PermStatsRead, s.campaignStats)
		s.handle(r, "GET", "/games/{game}/campaigns/{id}/dispatches/{dispatch}/stats", auth.PermStatsRead, s.dispatchStats)

		s.kickoutRoutes(r)

		s.handleCreate(r, "/api-keys", auth.PermKeys, refuseReplay, s.bounded, s.createKey)
		s.handle(r, "GET", "/api-keys", auth.PermKeys, s.listKeys)
		s.handle(r, "DELETE", "/api-keys/{id}", auth.PermKeys, s.revokeKey)
		s.handle(r, "GET", "/audit", auth.PermAudit, s.listAudit)
	})
	return r
}

// handle registers a /v1 route guarded by perm, its database work bounded;
// under an archived game it answers 410 (liveGame).
func (s *Server) handle(r chi.Router, method, pattern string, perm auth.Permission, h handlerFunc) {
	s.perms[method+" /v1"+pattern] = perm
	r.With(s.guards(method, pattern, perm, s.bounded)...).Method(method, pattern, s.serve(h))
}

// handleUpload registers a /v1 route that streams a request body into the
// database for as long as it arrives: it takes an upload slot instead of a
// time limit.
func (s *Server) handleUpload(r chi.Router, method, pattern string, perm auth.Permission, h handlerFunc) {
	s.perms[method+" /v1"+pattern] = perm
	r.With(s.guards(method, pattern, perm, s.uploadSlot)...).Method(method, pattern, s.serve(h))
}

// handleLong registers a /v1 route that bounds its own database work because
// it may wait on purpose (a kick-out's ?wait=).
func (s *Server) handleLong(r chi.Router, method, pattern string, perm auth.Permission, h handlerFunc) {
	s.perms[method+" /v1"+pattern] = perm
	r.With(s.guards(method, pattern, perm, nil)...).Method(method, pattern, s.serve(h))
}

// guards are the middlewares of a /v1 route: the permission, then limit (a
// time limit or an upload slot; nil for none), then, under a game, the archive
// check.
func (s *Server) guards(method, pattern string, perm auth.Permission, limit func(http.Handler) http.Handler) []func(http.Handler) http.Handler {
	mw := []func(http.Handler) http.Handler{s.require(perm)}
	if limit != nil {
		mw = append(mw, limit)
	}
	if underLiveGame(method, pattern) {
		mw = append(mw, s.liveGame)
	}
	return mw
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when Postgres answers and the broker is connected, so a
// load balancer sends no traffic to a replica that could not do its work.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "broker": "ok"}
	ready := true
	if err := s.DB.Ping(ctx); err != nil {
		checks["postgres"], ready = "unreachable: "+err.Error(), false
	}
	if !s.Broker.Connected() {
		checks["broker"], ready = "not connected", false
		if err := s.Broker.LastError(); err != nil {
			checks["broker"] += ": " + err.Error()
		}
	}
	if !ready {
		// Not an error of the request: the probe's answer, with every check.
		return writeJSONType(w, http.StatusServiceUnavailable, "application/problem+json", struct {
			Problem
			Checks map[string]string `json:"checks"`
		}{Problem{Type: "about:blank", Title: http.StatusText(http.StatusServiceUnavailable),
			Status: http.StatusServiceUnavailable, Detail: "not ready: " + reasons(checks)}, checks})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
}

func reasons(checks map[string]string) string {
	out := ""
	for _, name := range []string{"postgres", "broker"} {
		if checks[name] != "ok" {
			if out != "" {
				out += "; "
			}
			out += name + " " + checks[name]
		}
	}
	return out
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) error {
	writeBody(w, http.StatusOK, "application/yaml", s.OpenAPI)
	return nil
}
