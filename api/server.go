// Package api is Herald's HTTP interface: routes, request decoding, and the one
// error path that turns domain errors into RFC 9457 problems. It holds no business
// rules; those live in the domain packages it calls.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/segments"
)

// Broker is what readiness needs to know of the MQTT connection.
type Broker interface {
	// Connected reports whether the broker connection is up now.
	Connected() bool
}

// Config holds what the API serves and talks to.
type Config struct {
	Log         *slog.Logger
	DB          *pgxpool.Pool
	Broker      Broker
	Games       *games.Store
	Segments    *segments.Store
	Campaigns   *campaigns.Store
	TopicPrefix string
	OpenAPI     []byte // the openapi.yaml served at /openapi.yaml
}

// Server serves the HTTP API.
type Server struct {
	Config
	log *slog.Logger
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	return &Server{Config: cfg, log: cfg.Log}
}

// Handler returns the router with every route of the API.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.recoverer, s.accessLog)
	r.NotFound(s.notFound)
	r.MethodNotAllowed(s.methodNotAllowed)

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Get("/openapi.yaml", s.openapi)

	r.Route("/v1/games", func(r chi.Router) {
		r.Post("/", s.createGame)
		r.Get("/", s.listGames)
		r.Route("/{game}", func(r chi.Router) {
			r.Get("/", s.getGame)
			r.Patch("/", s.updateGame)
			r.Post("/plan", s.previewPlan)
			r.Route("/campaigns", func(r chi.Router) {
				r.Post("/", s.createCampaign)
				r.Get("/", s.listCampaigns)
				r.Get("/{id}", s.getCampaign)
				r.Patch("/{id}", s.updateCampaign)
				r.Post("/{id}/cancel", s.cancelCampaign)
				r.Get("/{id}/dispatches", s.listDispatches)
			})
			r.Route("/segments", func(r chi.Router) {
				r.Post("/", s.createSegment)
				r.Get("/", s.listSegments)
				r.Get("/{id}", s.getSegment)
				r.Patch("/{id}", s.updateSegment)
				r.Delete("/{id}", s.deleteSegment)
				r.Put("/{id}/members", s.replaceMembers)
			})
		})
	})
	return r
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when Postgres answers and the broker is connected, so a
// load balancer sends no traffic to a replica that could not do its work.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "broker": "ok"}
	ready := true
	if err := s.DB.Ping(ctx); err != nil {
		checks["postgres"], ready = "unreachable: "+err.Error(), false
	}
	if !s.Broker.Connected() {
		checks["broker"], ready = "not connected", false
	}
	if !ready {
		writeJSONType(w, http.StatusServiceUnavailable, "application/problem+json", struct {
			Problem
			Checks map[string]string `json:"checks"`
		}{Problem{Type: "about:blank", Title: http.StatusText(http.StatusServiceUnavailable),
			Status: http.StatusServiceUnavailable, Detail: "not ready: " + reasons(checks)}, checks})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
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

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(s.OpenAPI)
}
