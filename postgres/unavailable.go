package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// Unavailable reports whether err means that Postgres could not do the work now
// but may well later: it is down, restarting, frozen, too slow, out of
// connections, or a lock or statement timed out. Callers answer such errors
// with "try again later" (HTTP 503) rather than as a failure of their own.
//
// A context canceled by the caller is not unavailability: nobody waits for the
// answer. A context whose deadline passed is: the database did not answer in
// the time it was given (which covers waiting for a pooled connection).
func Unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return unavailableState(pgErr.Code)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, puddle.ErrClosedPool): // the pool closes at shutdown
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// The server closed the connection mid-conversation (a restart, a
		// crash). pgconn marks its own errors with SafeToRetry; an EOF from
		// anywhere else (a request body) is not the database's.
		var fromPgconn interface{ SafeToRetry() bool }
		return errors.As(err, &fromPgconn)
	}
	return false
}

// unavailableState reports whether a SQLSTATE means "not now" rather than "no":
// class 08 (connection exception), 53300 (too many connections), 55P03 (lock
// not available: lock_timeout), 57014 (query canceled: a statement timeout or
// the cancel request of a context deadline) and 57P01-57P03 (the server is
// shutting down, crashed, or cannot take connections yet).
func unavailableState(code string) bool {
	if strings.HasPrefix(code, "08") {
		return true
	}
	switch code {
	case "53300", "55P03", "57014", "57P01", "57P02", "57P03":
		return true
	}
	return false
}
