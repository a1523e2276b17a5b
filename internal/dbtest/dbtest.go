// Package dbtest gives each test its own Postgres database, cloned from a
// template that holds the migrated schema, so tests run in parallel against the
// real thing without seeing each other's rows.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldpush/herald/migrations"
)

// DefaultURL is the server tests use unless HERALD_TEST_DATABASE_URL says
// otherwise; its role needs CREATEDB. scripts/services.sh sets it up.
const DefaultURL = "postgres://herald:herald@127.0.0.1:5432/herald?sslmode=disable"

// ServerURL returns the URL of the database server tests create databases on.
func ServerURL() string {
	if v := os.Getenv("HERALD_TEST_DATABASE_URL"); v != "" {
		return v
	}
	return DefaultURL
}

// New creates a fresh, migrated database for t, dropped when t ends, and returns
// its URL.
func New(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		t.Fatalf("connect to test postgres at %s (run scripts/services.sh): %v", redact(ServerURL()), err)
	}
	defer admin.Close(ctx)

	template, err := ensureTemplate(ctx, admin)
	if err != nil {
		t.Fatalf("prepare template database: %v", err)
	}
	name := databaseName(t.Name())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{template}.Sanitize()); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), ServerURL())
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return withDatabase(ServerURL(), name)
}

// NewPool is New plus a pool on the new database, closed when t ends.
func NewPool(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	dbURL := New(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, dbURL
}

// ensureTemplate creates, once per schema version, a database holding the
// migrated schema. Its name carries a hash of the migration files, so a changed
// migration gets a new template; an advisory lock keeps parallel test binaries
// from building the same one twice.
func ensureTemplate(ctx context.Context, admin *pgx.Conn) (string, error) {
	sum, err := schemaHash()
	if err != nil {
		return "", err
	}
	name := "herald_template_" + sum
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(hashtext('herald dbtest template'))"); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}
	defer admin.Exec(ctx, "SELECT pg_advisory_unlock(hashtext('herald dbtest template'))") //nolint:errcheck // the connection closes anyway
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for template: %w", err)
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop half-built template: %w", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	if err := migrations.Up(ctx, withDatabase(ServerURL(), building), 30*time.Second); err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	// Renamed only once complete, so a crash mid-migration never leaves a template
	// that looks ready.
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+name); err != nil {
		return "", fmt.Errorf("finish template: %w", err)
	}
	return name, nil
}

func schemaHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.Files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.Files, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%s\x00", path, b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// databaseName turns a test name into a unique, valid database name.
func databaseName(test string) string {
	base := unsafeChars.ReplaceAllString(strings.ToLower(test), "_")
	if len(base) > 40 {
		base = base[:40]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "t_" + base + "_" + hex.EncodeToString(b[:])
}

func withDatabase(serverURL, name string) string {
	u, err := url.Parse(serverURL)
	if err != nil {
		return serverURL
	}
	u.Path = "/" + name
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}
