// Package postgres is how Herald talks to PostgreSQL: the connection pool, set up
// so that a database that is down, frozen or overloaded costs a caller a bounded
// wait and never a hang, and the one test that tells "the database is
// unavailable" from every other error.
package postgres

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Options sizes the pool and its time limits.
type Options struct {
	// MaxConns is the pool size unless the URL sets pool_max_conns (default 20).
	MaxConns int32
	// Timeout bounds each health-check ping of an idle connection (default 5 s).
	Timeout time.Duration
	// ConnectTimeout bounds each connection attempt unless the URL sets
	// connect_timeout (default: Timeout).
	ConnectTimeout time.Duration
}

// DefaultPoolSize is the pool size unless the database URL sets pool_max_conns.
// pgxpool's own default (4 on two cores) is too small for Herald: the scheduler
// leader holds a connection for as long as it leads, a member upload holds one
// for the whole upload, and fan-out workers and API requests need theirs.
const DefaultPoolSize = 20

// Open returns a pool on the database at url. Connections are made lazily, so
// a database that is down at start is not an error here.
//
// A context that ends while a query runs returns at once, even from a frozen
// server: pgx (v5.12's default context watcher) cuts the connection at the
// deadline and, in the background, sends the server a cancel request, so the
// statement stops instead of holding its locks. TCP keepalives find connections to a host that vanished, and a connection
// idle for more than a second is pinged before it is handed out, so the pool
// recovers by itself when Postgres comes back.
func Open(ctx context.Context, url string, opts Options) (*pgxpool.Pool, error) {
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultPoolSize
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = opts.Timeout
	}
	cfg, err := Config(url, opts.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.PingTimeout = opts.Timeout
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	return pool, nil
}

// Config parses url as the pool does (so pool settings such as pool_max_conns
// are not sent to the server) and sets what every connection Herald makes
// needs: connectTimeout bounds each attempt, from dialing to the end of
// authentication, unless the URL sets connect_timeout, so that a server that
// accepts connections but never answers costs a bounded wait; TCP keepalives
// find connections to a host that vanished.
func Config(url string, connectTimeout time.Duration) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cc := &cfg.ConnConfig.Config
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = connectTimeout
	}
	dialer := &net.Dialer{
		Timeout:         cc.ConnectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3},
	}
	cc.DialFunc = dialer.DialContext
	return cfg, nil
}
