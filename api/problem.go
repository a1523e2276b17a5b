package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/kickouts"
	"github.com/heraldpush/herald/postgres"
	"github.com/heraldpush/herald/segments"
)

// Problem is an RFC 9457 problem details object. Errors lists the offending
// fields of bad input. A campaign refused for want of a confirmation of its
// audience carries the plan and the confirm_audience that confirms it.
type Problem struct {
	Type            string           `json:"type"`
	Title           string           `json:"title"`
	Status          int              `json:"status"`
	Detail          string           `json:"detail"`
	Errors          []fielderr.Error `json:"errors,omitempty"`
	Plan            *planResponse    `json:"plan,omitempty"`
	ConfirmAudience *int64           `json:"confirm_audience,omitempty"`
}

// httpError is an error that already knows its status and what to tell the
// caller; handlers and middleware return it for refusals that are not domain
// errors. header holds what the problem is sent with (Retry-After,
// WWW-Authenticate).
type httpError struct {
	status int
	detail string
	fields fielderr.List
	header http.Header
}

func (e *httpError) Error() string { return e.detail }

func badRequest(detail string, fields fielderr.List) error {
	return &httpError{status: http.StatusBadRequest, detail: detail, fields: fields}
}

// tooManyRequests refuses a caller that must wait before it tries again.
func tooManyRequests(wait time.Duration, detail string) error {
	return &httpError{status: http.StatusTooManyRequests, detail: detail, header: retryAfterHeader(wait)}
}

// handlerFunc is a handler whose failure is its error: one adapter (serve)
// writes it with writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// serve adapts h to net/http.
func (s *Server) serve(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// writeError is the one way a failure reaches the caller, from handlers
// (through serve) and middleware alike: domain errors map to their status,
// anything unknown is a 500 whose text is logged, never sent. Nothing may have
// been written yet.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := Problem{Type: "about:blank"}
	var he *httpError
	var tooBig *http.MaxBytesError
	var unconfirmed *campaigns.UnconfirmedError
	fields, isFields := fielderr.As(err)
	switch {
	case errors.As(err, &unconfirmed):
		plan := s.planBody(unconfirmed.Game, unconfirmed.Plan)
		p.Status, p.Detail, p.Plan = http.StatusConflict, unconfirmed.Error(), &plan
		p.ConfirmAudience = &unconfirmed.Confirm.Audience
	case errors.As(err, &he):
		p.Status, p.Detail, p.Errors = he.status, he.detail, he.fields
		maps.Copy(w.Header(), he.header)
	case errors.As(err, &tooBig):
		p.Status = http.StatusRequestEntityTooLarge
		p.Detail = "the request body is larger than the limit of this endpoint"
		p.Errors = []fielderr.Error{{Field: "body", Message: "too large"}}
	case isFields:
		p.Status, p.Detail, p.Errors = http.StatusUnprocessableEntity, "the request is invalid: "+fields.Error(), fields
	case domainProblem(err, &p):
	case errors.Is(r.Context().Err(), context.Canceled):
		// The caller went away (or the server is shutting down); nobody reads this.
		p.Status, p.Detail = 499, "request canceled"
		s.log.InfoContext(r.Context(), "request canceled", "method", r.Method, "path", r.URL.Path, "err", err)
	case postgres.Unavailable(err), errors.Is(r.Context().Err(), context.DeadlineExceeded):
		// Down, restarting, frozen, out of connections, or a lock or statement
		// out of time: nothing the caller did wrong, and worth trying again.
		p.Status, p.Detail = http.StatusServiceUnavailable, "the database is unavailable or too busy to answer in time; retry after the Retry-After delay"
		s.log.WarnContext(r.Context(), "database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
	default:
		p.Status, p.Detail = http.StatusInternalServerError, "internal error; the server log has the details"
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	p.Title = http.StatusText(p.Status)
	if p.Title == "" {
		p.Title = "Client Closed Request"
	}
	if p.Status == http.StatusServiceUnavailable {
		maps.Copy(w.Header(), retryAfterHeader(unavailableRetry))
	}
	w.Header().Del("Location") // a refusal created nothing
	body, _ := encodeJSON(p)   // a problem of strings and numbers always encodes
	writeBody(w, p.Status, "application/problem+json", body)
}

// writeJSON sends v as the JSON body of a response with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	return writeJSONType(w, status, "application/json", v)
}

// writeJSONType encodes v before it writes anything, so that a value that
// cannot be encoded is an error (a 500 problem from writeError) instead of a
// success status followed by an empty or cut-off body.
func writeJSONType(w http.ResponseWriter, status int, contentType string, v any) error {
	body, err := encodeJSON(v)
	if err != nil {
		return fmt.Errorf("encode a %d response: %w", status, err)
	}
	writeBody(w, status, contentType, body)
	return nil
}

func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(body) // the status is sent; a failed write means the client left
}

// domainErrors maps each domain error callers can cause to its status and what
// to tell them; field, when set, names the offending field.
var domainErrors = []struct {
	err           error
	status        int
	detail, field string
}{
	{games.ErrNotFound, http.StatusNotFound, "no such game", ""},
	{games.ErrExists, http.StatusConflict, "a game with this id already exists", "id"},
	{games.ErrArchived, http.StatusGone, "the game is archived; POST /v1/games/{game}/unarchive to use it again", ""},
	{campaigns.ErrGameBusy, http.StatusConflict, "a game is archived only once all its campaigns are finished; cancel them, or wait until they end", ""},
	{segments.ErrNotFound, http.StatusNotFound, "no such segment in this game", ""},
	{segments.ErrInUse, http.StatusConflict, "a campaign that is not finished uses this segment as its audience; cancel it, or wait until it ends", ""},
	{segments.ErrTooComplex, http.StatusUnprocessableEntity, "the rule is too complex to resolve", "rule"},
	{campaigns.ErrNotFound, http.StatusNotFound, "no such campaign in this game", ""},
	{campaigns.ErrSent, http.StatusConflict, "the campaign was already sent; only a campaign waiting for its send time can change", ""},
	{campaigns.ErrUnfinished, http.StatusConflict, "only a finished campaign (completed, missed, expired or canceled) can be deleted; cancel it first", ""},
	{campaigns.ErrFinished, http.StatusConflict, "the campaign already expired, completed or missed its fire; there is nothing to recall", ""},
	{campaigns.ErrNotRecurring, http.StatusConflict, "only a recurring (cron) campaign can be paused and resumed", ""},
	{campaigns.ErrEnded, http.StatusConflict, "the campaign has ended (completed, missed, canceled or expired): it fires no more", ""},
	{auth.ErrNotFound, http.StatusNotFound, "no such API key", ""},
	{kickouts.ErrNotFound, http.StatusNotFound, "no such kick-out in this game", ""},
}

// explained are the domain errors whose own text is added to the problem's
// detail: it names what stands in the way (the campaigns that use a segment,
// the campaign's status).
var explained = []error{segments.ErrInUse, campaigns.ErrUnfinished, campaigns.ErrGameBusy}

// domainProblem fills p for a known domain error and reports whether err was one.
func domainProblem(err error, p *Problem) bool {
	for _, d := range domainErrors {
		if errors.Is(err, d.err) {
			p.Status, p.Detail = d.status, d.detail
			if slices.ContainsFunc(explained, func(e error) bool { return errors.Is(err, e) }) {
				p.Detail += " (" + err.Error() + ")"
			}
			if d.field != "" {
				p.Errors = []fielderr.Error{{Field: d.field, Message: err.Error()}}
			}
			return true
		}
	}
	return false
}

// notFound and methodNotAllowed give chi's own refusals the problem shape.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, &httpError{status: http.StatusNotFound, detail: "no such route: " + r.Method + " " + r.URL.Path})
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, &httpError{status: http.StatusMethodNotAllowed, detail: r.Method + " is not allowed on " + r.URL.Path})
}
