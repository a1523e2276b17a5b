package api

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// recoverer turns a panic in a handler into a logged 500 problem. Handlers must
// not panic on any input; this is the net under that promise, not the promise.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "handler panic", "method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				s.writeError(w, r, &httpError{status: http.StatusInternalServerError, detail: "internal error; the server log has the details"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// accessLog logs one line per request with its status and duration.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		s.log.InfoContext(r.Context(), "http request", "method", r.Method, "path", r.URL.Path,
			"status", ww.Status(), "bytes", ww.BytesWritten(), "duration_ms", time.Since(start).Milliseconds())
		if s.requests != nil {
			route := chi.RouteContext(r.Context()).RoutePattern() // the pattern, not the path: bounded labels
			if route == "" {
				route = "unmatched"
			}
			s.requests.WithLabelValues(r.Method, route, strconv.Itoa(ww.Status())).Inc()
		}
	})
}
