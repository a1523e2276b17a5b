package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// ExplainConnect turns the error of a connection attempt that timed out or was
// refused into one that says, in an operator's words, which server did not
// answer: "postgres at 127.0.0.1:5432 did not answer within 10s". pgx's own
// text ("failed to connect to `user=herald database=herald`: ... timeout:
// context deadline exceeded") stays reachable through errors.Unwrap, so
// Unavailable still recognizes it. Any other error is returned as it is.
func ExplainConnect(err error) error {
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) || ce.Config == nil || errors.Is(err, context.Canceled) {
		return err
	}
	addr := net.JoinHostPort(ce.Config.Host, strconv.Itoa(int(ce.Config.Port)))
	switch {
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		within := "in time"
		if ce.Config.ConnectTimeout > 0 {
			within = "within " + ce.Config.ConnectTimeout.String()
		}
		return &connectError{msg: fmt.Sprintf("postgres at %s did not answer %s", addr, within), err: err}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &connectError{msg: fmt.Sprintf("postgres at %s refused the connection: is it running, on that port?", addr), err: err}
	}
	return err
}

type connectError struct {
	msg string
	err error
}

func (e *connectError) Error() string { return e.msg }
func (e *connectError) Unwrap() error { return e.err }
