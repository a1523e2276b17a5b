package api

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// unavailableRetry is what a 503 tells the caller to wait before trying again: long
// enough for a database restart or an upload to make progress, short enough
// not to matter to an operator at a console.
const unavailableRetry = 5 * time.Second

// bounded gives a request's database work DBTimeout in all, waiting for a pooled
// connection included: a database that is down, frozen or too busy costs the
// caller that long at most, and the answer is a 503 (see writeError).
func (s *Server) bounded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.DBTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// uploadSlot lets at most MaxUploads member uploads stream at once on this
// replica, each holding a database connection for as long as its client
// sends; one more answers 503 with Retry-After at once instead of taking a
// connection that requests and sends need.
func (s *Server) uploadSlot(next http.Handler) http.Handler {
	return s.serve(func(w http.ResponseWriter, r *http.Request) error {
		select {
		case s.uploads <- struct{}{}:
			defer func() { <-s.uploads }()
			next.ServeHTTP(w, r)
			return nil
		default:
			// The body is left unread: closing the connection spares waiting for
			// the rest of it before the answer goes out.
			w.Header().Set("Connection", "close")
			return &httpError{status: http.StatusServiceUnavailable, detail: fmt.Sprintf(
				"this server is already receiving %d member uploads, its limit; retry after the Retry-After delay", s.MaxUploads)}
		}
	})
}
