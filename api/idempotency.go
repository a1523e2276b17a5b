package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/idempotency"
)

// idempotencyHeader names the header a creating POST may carry.
const idempotencyHeader = "Idempotency-Key"

// inProgressWait is how long a retry waits for the first request with its key
// to answer before it answers 409: longer than the longest request, a kick-out
// that waits 30 s for its receipts.
const inProgressWait = 35 * time.Second

// replayMode says how a stored success is given again.
type replayMode int

const (
	// replayAnswer sends the first answer again, status and body.
	replayAnswer replayMode = iota
	// refuseReplay answers a retry of a success with 409 naming what was
	// created: the first answer carried a secret shown once (API keys), which
	// is not stored.
	refuseReplay
)

// handleCreate registers a POST route that creates something: guarded by
// perm, honouring Idempotency-Key, with its database work bounded by limit
// (s.bounded; nil when the handler bounds its own steps, as a waiting kick-out
// does).
func (s *Server) handleCreate(r chi.Router, pattern string, perm auth.Permission, mode replayMode, limit func(http.Handler) http.Handler, h handlerFunc) {
	s.perms["POST /v1"+pattern] = perm
	// The guards come first: a refusal (a forbidden role, an archived game) is
	// not an answer a retry should get again.
	mw := append(s.guards("POST", pattern, perm, limit), s.idempotent(mode))
	r.With(mw...).Post(pattern, s.serve(h))
}

// idempotent makes a creating POST that carries an Idempotency-Key safe to
// retry: the first request with a key does the work and its answer is kept 24
// hours (2xx and 4xx; not 408, 429 or 499, nor a 5xx, which a retry should
// redo); a retry with the same method, path, query and body gets that answer
// again with Idempotent-Replayed: true; the same key with a different request
// is a 422; a retry while the first is still at work waits for its answer (409
// after inProgressWait). Keys belong to the API key that sent them. A dry run
// creates nothing and ignores the header.
func (s *Server) idempotent(mode replayMode) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return s.serve(func(w http.ResponseWriter, r *http.Request) error {
			values := r.Header.Values(idempotencyHeader)
			if s.Idempotency == nil || len(values) == 0 {
				next.ServeHTTP(w, r)
				return nil
			}
			if dry, err := boolQuery(r, "dry_run"); err == nil && dry {
				next.ServeHTTP(w, r)
				return nil
			}
			if len(values) > 1 || !validIdempotencyKey(values[0]) {
				return badRequest("the Idempotency-Key header is malformed",
					fielderr.List{{Field: idempotencyHeader, Message: "must be given once, 1 to 255 printable ASCII characters"}})
			}
			// Past the largest body a route takes, the rest is not read: the
			// handler refuses the request anyway.
			body, err := io.ReadAll(io.LimitReader(r.Body, max(maxJSONBody, maxKickoutBody)+1))
			if err != nil {
				return badRequest("the body could not be read", fielderr.List{{Field: "body", Message: err.Error()}})
			}
			// The handler reads the body again.
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
			req := idempotency.Request{KeyID: callerKey(r.Context()).ID, Key: values[0],
				Hash: idempotency.Hash(r.Method, r.URL.Path, r.URL.RawQuery, body)}
			return s.serveIdempotent(w, r, next, req, mode)
		})
	}
}

// serveIdempotent does the work of req once, or replays its first answer.
func (s *Server) serveIdempotent(w http.ResponseWriter, r *http.Request, next http.Handler, req idempotency.Request, mode replayMode) error {
	giveUp := time.Now().Add(inProgressWait)
	poll := 20 * time.Millisecond
	for {
		step, cancel := context.WithTimeout(r.Context(), s.DBTimeout)
		claim, err := s.Idempotency.Begin(step, req)
		cancel()
		if err != nil {
			return err
		}
		switch claim.Outcome {
		case idempotency.Owned:
			s.doOnce(w, r, next, req, claim.Owner, mode)
			return nil
		case idempotency.Replay:
			return replay(w, claim.Response, mode)
		case idempotency.Mismatch:
			return fielderr.New(idempotencyHeader,
				"was used in the last 24 hours for a different request (method, path or body); use a new key for a new request")
		}
		if time.Now().Add(poll).After(giveUp) {
			return &httpError{status: http.StatusConflict,
				detail: "the first request with this Idempotency-Key is still in progress; retry after the Retry-After delay",
				fields: fielderr.List{{Field: idempotencyHeader, Message: "in use by a request still in progress"}},
				header: retryAfterHeader(time.Second)}
		}
		select {
		case <-r.Context().Done():
			return r.Context().Err()
		case <-time.After(poll):
		}
		poll = min(2*poll, 250*time.Millisecond)
	}
}

// doOnce runs the handler as the owner of req's key and keeps its answer, or
// gives the key up when the answer is worth retrying (or the handler panicked).
func (s *Server) doOnce(w http.ResponseWriter, r *http.Request, next http.Handler, req idempotency.Request, owner uuid.UUID, mode replayMode) {
	rec := &recorder{ResponseWriter: w}
	kept := false
	defer func() {
		if kept {
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.DBTimeout)
		defer cancel()
		if err := s.Idempotency.Abandon(ctx, req, owner); err != nil {
			s.log.WarnContext(r.Context(), "give up idempotency key", "err", err) // it expires with its lease
		}
	}()
	next.ServeHTTP(rec, r)
	if !storable(rec.status) {
		return
	}
	resp := idempotency.Response{Status: rec.status, Headers: map[string]string{}, Body: rec.body.Bytes()}
	for _, h := range []string{"Content-Type", "Location"} {
		if v := w.Header().Get(h); v != "" {
			resp.Headers[h] = v
		}
	}
	if mode == refuseReplay && rec.status < 300 {
		resp.Body = withoutSecret(resp.Body)
	}
	// The caller has its answer now rather than after the write below: a
	// retry meanwhile finds the key in progress and waits for it.
	if err := http.NewResponseController(w).Flush(); err != nil {
		s.log.DebugContext(r.Context(), "flush idempotent answer", "err", err) // the client left; keep the answer all the same
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.DBTimeout)
	defer cancel()
	if err := s.Idempotency.Finish(ctx, req, owner, resp); err != nil {
		s.log.WarnContext(r.Context(), "store idempotent answer", "err", err)
		return
	}
	kept = true
}

// storable reports whether an answer is final for the request that got it:
// a success or the caller's mistake, not a failure to retry.
func storable(status int) bool {
	switch {
	case status >= 200 && status < 300:
		return true
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status == 499:
		return false
	}
	return status >= 400 && status < 500
}

// replay sends a stored answer again.
func replay(w http.ResponseWriter, resp idempotency.Response, mode replayMode) error {
	if mode == refuseReplay && resp.Status < 300 {
		return writeJSONType(w, http.StatusConflict, "application/problem+json", struct {
			Problem
			Created json.RawMessage `json:"created"`
		}{Problem{Type: "about:blank", Title: http.StatusText(http.StatusConflict), Status: http.StatusConflict,
			Detail: "this Idempotency-Key already created the API key in created; its secret was shown once, in the first answer, and is not kept: " +
				"use that answer, or revoke the key and create another",
			Errors: []fielderr.Error{{Field: idempotencyHeader, Message: "already created an API key"}}}, resp.Body})
	}
	for h, v := range resp.Headers {
		w.Header().Set(h, v)
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body) // the status is sent; a failed write means the client left
	return nil
}

// withoutSecret removes the secret member from a created API key's answer.
func withoutSecret(body []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return []byte("{}") // never keep what may hold a secret
	}
	delete(m, "secret")
	out, err := json.Marshal(m)
	if err != nil {
		return []byte("{}")
	}
	return out
}

// validIdempotencyKey reports whether k is 1 to 255 printable ASCII characters.
func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// recorder passes an answer through and keeps a copy of its status and body.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (rec *recorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	rec.body.Write(b)
	return rec.ResponseWriter.Write(b)
}
