package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/kickouts"
	"github.com/heraldpush/herald/postgres"
	"github.com/heraldpush/herald/segments"
)

// Problem is an RFC 9457 problem details object. Errors lists the offending
// fields of bad input.
type Problem struct {
	Type   string           `json:"type"`
	Title  string           `json:"title"`
	Status int              `json:"status"`
	Detail string           `json:"detail"`
	Errors []fielderr.Error `json:"errors,omitempty"`
}

// httpError is an error that already knows its status and what to tell the
// caller; handlers return it for refusals that are not domain errors.
type httpError struct {
	status int
	detail string
	fields fielderr.List
}

func (e *httpError) Error() string { return e.detail }

func badRequest(detail string, fields fielderr.List) error {
	return &httpError{status: http.StatusBadRequest, detail: detail, fields: fields}
}

// writeError is the one way a handler reports failure. Domain errors map to their
// status; anything unknown is a 500 whose text is logged, never sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := Problem{Type: "about:blank"}
	var he *httpError
	var tooBig *http.MaxBytesError
	fields, isFields := fielderr.As(err)
	switch {
	case errors.As(err, &he):
		p.Status, p.Detail, p.Errors = he.status, he.detail, he.fields
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
		retryAfter(w, unavailableRetry)
	}
	s.writeJSONType(w, r, p.Status, "application/problem+json", p)
}

// writeJSON sends v as the JSON body of a response with status.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	s.writeJSONType(w, r, status, "application/json", v)
}

// writeJSONType encodes v before it writes anything, so that a value that
// cannot be encoded becomes a logged 500 problem instead of a success status
// followed by an empty or cut-off body.
func (s *Server) writeJSONType(w http.ResponseWriter, r *http.Request, status int, contentType string, v any) {
	body, err := encodeJSON(v)
	if err != nil {
		s.log.ErrorContext(r.Context(), "encode response", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		w.Header().Del("Location")
		writeProblem(w, http.StatusInternalServerError, "internal error; the server log has the details")
		return
	}
	writeBody(w, status, contentType, body)
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
	{segments.ErrNotFound, http.StatusNotFound, "no such segment in this game", ""},
	{segments.ErrInUse, http.StatusConflict, "a campaign uses this segment as its audience; cancel or delete that first", ""},
	{segments.ErrTooComplex, http.StatusUnprocessableEntity, "the rule is too complex to resolve", "rule"},
	{campaigns.ErrNotFound, http.StatusNotFound, "no such campaign in this game", ""},
	{campaigns.ErrSent, http.StatusConflict, "the campaign was already sent; only a campaign waiting for its send time can change", ""},
	{campaigns.ErrFinished, http.StatusConflict, "the campaign already expired or completed; there is nothing to recall", ""},
	{auth.ErrNotFound, http.StatusNotFound, "no such API key", ""},
	{kickouts.ErrNotFound, http.StatusNotFound, "no such kick-out in this game", ""},
}

// domainProblem fills p for a known domain error and reports whether err was one.
func domainProblem(err error, p *Problem) bool {
	for _, d := range domainErrors {
		if errors.Is(err, d.err) {
			p.Status, p.Detail = d.status, d.detail
			if d.field != "" {
				p.Errors = []fielderr.Error{{Field: d.field, Message: err.Error()}}
			}
			return true
		}
	}
	return false
}

// writeProblem sends a problem with the given status and detail. A problem of
// strings and a number always encodes.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	body, _ := encodeJSON(Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
	writeBody(w, status, "application/problem+json", body)
}

// notFound and methodNotAllowed give chi's own refusals the problem shape.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path)
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
}
