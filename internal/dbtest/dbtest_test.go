package dbtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func exists(t *testing.T, name string) bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ok bool
	if err := conn.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestChildBinary is what TestTestBinaryLeavesNothing runs in a test binary
// of its own: it makes a database and says the names involved.
func TestChildBinary(t *testing.T) {
	if os.Getenv("DBTEST_CHILD") == "" {
		t.Skip("run by TestTestBinaryLeavesNothing")
	}
	u, err := url.Parse(New(t))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("names %s %s\n", tmpl.name, strings.TrimPrefix(u.Path, "/"))
}

// TestTestBinaryLeavesNothing runs a test binary that uses a database: once
// it has ended, neither that database nor the template it was cloned from
// exists.
func TestTestBinaryLeavesNothing(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestChildBinary$", "-test.v")
	cmd.Env = append(os.Environ(), "DBTEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var template, db string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "names ") {
			fmt.Sscan(strings.TrimPrefix(line, "names "), &template, &db)
		}
	}
	if !ours.MatchString(template) || !ours.MatchString(db) {
		t.Fatalf("child said no names of ours: %s", out)
	}
	for _, name := range []string{template, db} {
		if exists(t, name) {
			t.Errorf("%s is still there", name)
		}
	}
}

// TestLeftoversOfKilledRunsAreDropped: databases named by this package more
// than an hour ago are dropped; newer ones, and any other, are not.
func TestLeftoversOfKilledRunsAreDropped(t *testing.T) {
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	stamp := func(prefix string, age time.Duration) string {
		return fmt.Sprintf("%s_%d_%s", prefix, time.Now().Add(-age).Unix(), strings.Repeat("ab", 4))
	}
	old := []string{stamp("t_testkilled", 2*time.Hour), stamp("herald_template", 3*time.Hour)}
	kept := []string{stamp("t_testrunning", time.Minute), "t_testkilled_notours"}
	for _, name := range append(old, kept...) {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = drop(name) })
	}
	dropLeftovers(ctx, admin)
	for _, name := range old {
		if exists(t, name) {
			t.Errorf("%s was left behind over an hour ago and is still there", name)
		}
	}
	for _, name := range kept {
		if !exists(t, name) {
			t.Errorf("%s was dropped", name)
		}
	}
}
