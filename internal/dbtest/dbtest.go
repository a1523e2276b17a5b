// Package dbtest gives each test its own Postgres database, cloned from a
// template that holds the migrated schema, so tests run in parallel against the
// real thing without seeing each other's rows.
//
// The template belongs to one test binary: it is made when the binary's first
// test asks for a database and dropped when its tests end, and each test's
// database is dropped when the test ends, so a run leaves nothing behind. For
// that, every package that uses dbtest has
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
// A run that was killed cannot clean up: the next run drops what such runs
// left (databases named by this package, more than an hour old).
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// Main runs the package's tests, drops the template database, and exits with
// the tests' status. Call it from TestMain.
func Main(m *testing.M) {
	os.Exit(WithTemplate(m).Run())
}

// WithTemplate returns m for a TestMain that hands it on, e.g. to
// goleak.VerifyTestMain: its Run runs the tests, then drops the template.
func WithTemplate(m *testing.M) interface{ Run() int } {
	return binary{m}
}

type binary struct{ m *testing.M }

func (b binary) Run() int {
	tmpl.mu.Lock()
	tmpl.managed = true
	tmpl.mu.Unlock()
	code := b.m.Run()
	if err := dropTemplate(); err != nil {
		fmt.Fprintln(os.Stderr, "dbtest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// tmpl is this test binary's template database.
var tmpl struct {
	mu      sync.Mutex
	managed bool   // Main runs the tests, and drops the template after them
	name    string // "" until made
}

// New creates a fresh, migrated database for t, dropped when t ends, and returns
// its URL.
func New(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	template, err := ensureTemplate(ctx)
	if err != nil {
		t.Fatalf("prepare template database: %v", err)
	}
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		t.Fatalf("connect to test postgres at %s (run scripts/services.sh): %v", redact(ServerURL()), err)
	}
	defer admin.Close(ctx)
	name := databaseName("t_" + unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_"))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{template}.Sanitize()); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := drop(name); err != nil {
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

// ensureTemplate returns the name of this binary's template, making it on
// first use: created under another name, migrated, then renamed, so that it
// never looks ready half-built. Making it is also when what killed runs left
// behind is dropped.
func ensureTemplate(ctx context.Context) (string, error) {
	tmpl.mu.Lock()
	defer tmpl.mu.Unlock()
	if !tmpl.managed {
		return "", fmt.Errorf("this package's TestMain must call dbtest.Main(m) (or run dbtest.WithTemplate(m)), which drops the template database when the tests end")
	}
	if tmpl.name != "" {
		return tmpl.name, nil
	}
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		return "", fmt.Errorf("connect to test postgres at %s (run scripts/services.sh): %w", redact(ServerURL()), err)
	}
	defer admin.Close(ctx)
	dropLeftovers(ctx, admin)
	name := databaseName("herald_template")
	building := name + "_building"
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	if err := migrations.Up(ctx, withDatabase(ServerURL(), building), 30*time.Second); err != nil {
		_ = drop(building)
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+name); err != nil {
		_ = drop(building)
		return "", fmt.Errorf("finish template: %w", err)
	}
	tmpl.name = name
	return name, nil
}

func dropTemplate() error {
	tmpl.mu.Lock()
	defer tmpl.mu.Unlock()
	if tmpl.name == "" {
		return nil
	}
	if err := drop(tmpl.name); err != nil {
		return fmt.Errorf("drop template database %s: %w", tmpl.name, err)
	}
	tmpl.name = ""
	return nil
}

// drop drops the database name, disconnecting whoever is still on it. A
// backend this role may not end (an autovacuum worker analysing the freshly
// migrated tables; seen on a fresh machine, where the tests' role is no
// superuser) makes the drop fail with insufficient_privilege: it is tried
// again until that backend is gone, within a minute.
func drop(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for {
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" { // insufficient_privilege
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ours matches the names databaseName gives, with their creation time.
var ours = regexp.MustCompile(`^(?:t_[a-z0-9_]*|herald_template)_([0-9]{10})_[0-9a-f]{8}(?:_building)?$`)

// leftoverAge is how old a database of ours must be to count as left behind
// by a run that was killed: no test binary runs that long.
const leftoverAge = time.Hour

// dropLeftovers drops the databases of ours that are more than leftoverAge
// old. One still in use (a test binary that does run that long) is left
// alone: it is dropped without FORCE, which fails while anyone is connected.
func dropLeftovers(ctx context.Context, admin *pgx.Conn) {
	rows, err := admin.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE 't\\_%' OR datname LIKE 'herald\\_template\\_%'")
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		m := ours.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		created, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || time.Since(time.Unix(created, 0)) < leftoverAge {
			continue
		}
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize())
	}
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// databaseName makes a unique database name of prefix (at most 40 characters
// of it are kept), the creation time in Unix seconds, and a random suffix.
func databaseName(prefix string) string {
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s_%d_%s", prefix, time.Now().Unix(), hex.EncodeToString(b[:]))
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
