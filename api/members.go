package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/segments"
)

// idleTimeout is how long a member upload may go without sending data.
const idleTimeout = time.Minute

// finishPerMiB is how long storing an uploaded list may take, once its body
// has ended, per MiB of body on top of DBTimeout: de-duplicating and indexing a
// million ids (about 15 MiB) takes a few seconds, and a list of tens of
// millions minutes.
const finishPerMiB = 2 * time.Second

// errNotMembers refuses a member list for a segment whose rule would not use it.
var errNotMembers = &httpError{status: http.StatusConflict,
	detail: `this segment's rule does not use its member list: add {"members": true} to the rule before uploading members`}

// maxMemberUpload bounds one member list upload. At about 10 bytes an id, it
// leaves room for far more than a hundred million players.
const maxMemberUpload = 4 << 30

// errDatabaseStalled is why an upload is canceled when Postgres stops taking it.
var errDatabaseStalled = errors.New("the database stopped taking the upload")

// uploadBody reads a member upload and watches that it keeps moving. Each read
// gives the client idleTimeout (the connection's read deadline, moved forward
// before each read); between reads the database must take what was read within
// dbWait, and once the body has ended store the list within dbWait plus
// finishPerMiB per MiB read, or the upload is canceled with errDatabaseStalled.
// It remembers the body's own read error, so that a client that stalls or
// breaks off is told so. Its fields are read once the upload has returned.
type uploadBody struct {
	r      io.Reader
	rc     *http.ResponseController
	dbWait time.Duration
	stall  *time.Timer // cancels the upload
	read   int64       // bytes read so far
	ended  bool        // the whole body was read
	err    error       // the body's read error (io.EOF excluded)
}

func (b *uploadBody) Read(p []byte) (int, error) {
	b.stall.Stop() // the client's turn: the read deadline bounds it
	_ = b.rc.SetReadDeadline(time.Now().Add(idleTimeout))
	n, err := b.r.Read(p)
	b.read += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		b.ended = true
		b.stall.Reset(b.dbWait + time.Duration(float64(finishPerMiB)*float64(b.read)/(1<<20)))
	case err != nil:
		b.err = err
		b.stall.Reset(b.dbWait)
	default:
		b.stall.Reset(b.dbWait)
	}
	return n, err
}

// replaceMembers streams a text/plain body of player ids, one per line, into the
// segment's member list; the previous list stays until the new one is complete.
// It runs in an upload slot (uploadSlot) rather than under the request time
// limit: a list of millions streams for longer than any limit would allow, so
// the upload is bounded by its progress instead (uploadBody).
func (s *Server) replaceMembers(w http.ResponseWriter, r *http.Request) error {
	id, err := segmentID(r)
	if err != nil {
		return err
	}
	game := chi.URLParam(r, "game")
	if err := s.usesMembers(r, game, id); err != nil {
		return err
	}
	// Not the server's read and write timeouts either: this request instead gets
	// idleTimeout after each piece of body that arrives, so only a client that
	// stalls is cut off.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // errors mean "not supported": the server's own timeouts stay
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	body := &uploadBody{r: http.MaxBytesReader(w, r.Body, maxMemberUpload), rc: rc, dbWait: s.DBTimeout,
		stall: time.AfterFunc(s.DBTimeout, func() { cancel(errDatabaseStalled) })}
	_, err = s.Segments.ReplaceMembers(ctx, game, id, body)
	body.stall.Stop()
	_ = rc.SetWriteDeadline(time.Now().Add(idleTimeout))
	if err != nil {
		if !body.ended {
			// Whatever is left of the body stays unread: closing the connection
			// spares waiting for it before the answer goes out.
			w.Header().Set("Connection", "close")
		}
		return body.failure(ctx, err)
	}
	bounded, cancelGet := context.WithTimeout(r.Context(), s.DBTimeout)
	defer cancelGet()
	seg, err := s.Segments.Get(bounded, game, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, seg)
}

// usesMembers refuses an upload to a segment whose rule does not use its
// member list, before any of the body is read.
func (s *Server) usesMembers(r *http.Request, game string, id uuid.UUID) error {
	ctx, cancel := context.WithTimeout(r.Context(), s.DBTimeout)
	defer cancel()
	seg, err := s.Segments.Get(ctx, game, id)
	if err != nil {
		return err
	}
	if !segments.UsesMembers(seg.Rule) {
		return errNotMembers
	}
	return nil
}

// failure says who made the upload under ctx fail with err: the database that
// stopped taking it (503), or the client whose body was too large (413),
// stopped arriving (408) or could not be read (400); else err stands as it is.
func (b *uploadBody) failure(ctx context.Context, err error) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(context.Cause(ctx), errDatabaseStalled):
		return &httpError{status: http.StatusServiceUnavailable,
			detail: "the database stopped taking the upload; the previous list stays; retry after the Retry-After delay"}
	case b.err == nil, errors.Is(context.Cause(ctx), context.Canceled): // the client left: nobody reads this
		return err
	case errors.As(b.err, &tooBig):
		return b.err
	case errors.Is(b.err, os.ErrDeadlineExceeded):
		return &httpError{status: http.StatusRequestTimeout, detail: "the body stopped arriving for longer than " + idleTimeout.String()}
	}
	// The caller's body, not the server, failed (a malformed chunk, a cut-off
	// stream): a 400, not a 500.
	return badRequest("the request body could not be read to its end: "+b.err.Error(),
		fielderr.List{{Field: "body", Message: "could not be read"}})
}
