// Package migrations holds Herald's Postgres schema as SQL files embedded in the
// binary and applies them with golang-migrate, so a deployed binary always carries
// the schema it needs: `herald serve` migrates up at start, `herald migrate`
// moves the schema by hand.
package migrations

import (
	"embed"
	"errors"
	"fmt"

	"github.com/golang-migrate/migrate/v4"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// Files holds the migration SQL files, named NNNNNN_name.up.sql and .down.sql.
//
//go:embed *.sql
var Files embed.FS

// open returns a migrator for the database at url. The caller closes it.
func open(url string) (*migrate.Migrate, error) {
	// Parsed as the pool parses it, so that pool settings in the URL
	// (pool_max_conns) are not sent to the server as unknown parameters.
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	driver, err := pgxmigrate.WithInstance(db, &pgxmigrate.Config{})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("connect for migrations: %w", err)
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

// Up applies every pending migration. A database already at the newest version
// is not an error.
func Up(url string) error {
	return run(url, func(m *migrate.Migrate) error { return m.Up() })
}

// Down reverts the newest applied migration only; reverting everything at once is
// too easy a way to lose a production database.
func Down(url string) error {
	return run(url, func(m *migrate.Migrate) error { return m.Steps(-1) })
}

// Version reports the schema version of the database and whether a failed
// migration left it dirty. Version 0 means no migration was applied.
func Version(url string) (version uint, dirty bool, err error) {
	err = run(url, func(m *migrate.Migrate) error {
		version, dirty, err = m.Version()
		if errors.Is(err, migrate.ErrNilVersion) {
			return nil
		}
		return err
	})
	return version, dirty, err
}

func run(url string, step func(*migrate.Migrate) error) error {
	m, err := open(url)
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
