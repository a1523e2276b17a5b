// Package migrations holds Herald's Postgres schema as SQL files embedded in the
// binary and applies them with golang-migrate, so a deployed binary always carries
// the schema it needs: `herald serve` migrates up at start, `herald migrate`
// moves the schema by hand.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/golang-migrate/migrate/v4"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/heraldpush/herald/postgres"
)

// Files holds the migration SQL files, named NNNNNN_name.up.sql and .down.sql.
//
//go:embed *.sql
var Files embed.FS

// open returns a migrator for the database at url, connected with the
// settings of every Herald connection (postgres.Config). The caller closes it.
func open(url string, connectTimeout time.Duration) (*migrate.Migrate, error) {
	cfg, err := postgres.Config(url, connectTimeout)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	driver, err := pgxmigrate.WithInstance(db, &pgxmigrate.Config{})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("connect for migrations: %w", postgres.ExplainConnect(err))
	}
	src, err := iofs.New(Files, ".")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", driver)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("set up migrations: %w", err)
	}
	return m, nil
}

// Every function here takes connectTimeout, which bounds each connection
// attempt unless the URL sets connect_timeout, and returns as soon as ctx ends
// (a signal), whatever Postgres is doing: golang-migrate takes no context, so
// its work goes on in the background until its connection times out or the
// process exits, when Postgres rolls back the statement under way.

// Up applies every pending migration. A database already at the newest version
// is not an error.
func Up(ctx context.Context, url string, connectTimeout time.Duration) error {
	return run(ctx, url, connectTimeout, func(m *migrate.Migrate) error { return m.Up() })
}

// Down reverts the newest applied migration only; reverting everything at once is
// too easy a way to lose a production database.
func Down(ctx context.Context, url string, connectTimeout time.Duration) error {
	return run(ctx, url, connectTimeout, func(m *migrate.Migrate) error { return m.Steps(-1) })
}

// Version reports the schema version of the database and whether a failed
// migration left it dirty. Version 0 means no migration was applied.
func Version(ctx context.Context, url string, connectTimeout time.Duration) (uint, bool, error) {
	var version uint
	var dirty bool
	err := run(ctx, url, connectTimeout, func(m *migrate.Migrate) error {
		var err error
		version, dirty, err = m.Version()
		if errors.Is(err, migrate.ErrNilVersion) {
			return nil
		}
		return err
	})
	if err != nil {
		// The step may still be running (ctx ended): its results are not read.
		return 0, false, err
	}
	return version, dirty, nil
}

// run runs step on a migrator in its own goroutine and waits for it or for
// ctx, whichever ends first.
func run(ctx context.Context, url string, connectTimeout time.Duration, step func(*migrate.Migrate) error) error {
	done := make(chan error, 1)
	go func() { done <- runStep(url, connectTimeout, step) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("migrate: %w", ctx.Err())
	}
}

func runStep(url string, connectTimeout time.Duration, step func(*migrate.Migrate) error) error {
	m, err := open(url, connectTimeout)
	if err != nil {
		return err
	}
	stepErr := step(m)
	srcErr, dbErr := m.Close()
	if stepErr != nil && !errors.Is(stepErr, migrate.ErrNoChange) {
		return fmt.Errorf("migrate: %w", stepErr)
	}
	if err := errors.Join(srcErr, dbErr); err != nil {
		return fmt.Errorf("close migrator: %w", err)
	}
	return nil
}
