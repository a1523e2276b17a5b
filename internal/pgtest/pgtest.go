// Package pgtest runs a private PostgreSQL cluster for tests that must stop,
// restart or freeze the database, which the shared server (internal/dbtest)
// must never suffer. The cluster lives in the test's temporary directory, on a
// free 127.0.0.1 port, and is gone when the test ends.
package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/internal/brokertest"
)

// Cluster is a private PostgreSQL server: initdb'd once, then started, stopped,
// frozen and thawed at will. Cleanup thaws and stops it.
type Cluster struct {
	t    testing.TB
	Port int
	// URL reaches the database "postgres" as the superuser, without a password
	// (the cluster trusts local TCP connections).
	URL  string
	bin  string
	data string
	cred *syscall.Credential

	log string // the server's output

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	frozen []int // the pids Freeze stopped
}

// Start creates a cluster and starts it.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: binDir(t)}
	dir := t.TempDir()
	c.log = filepath.Join(dir, "postgres.log")
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root: run them as the postgres
		// user, which must reach and own the directory.
		c.cred = postgresUser(t)
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			t.Fatalf("open the temporary directory to postgres: %v", err)
		}
		if err := os.Chown(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			t.Fatalf("give the temporary directory to postgres: %v", err)
		}
	}
	c.data = filepath.Join(dir, "data")
	initdb := c.command("initdb", "-D", c.data, "-U", "postgres", "--auth=trust", "--no-sync",
		"--no-instructions", "-E", "UTF8", "--locale=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.Port = brokertest.FreePort(t)
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port)
	t.Cleanup(c.cleanup)
	c.Start()
	return c
}

// Start starts the server and returns once it accepts queries.
func (c *Cluster) Start() {
	c.t.Helper()
	c.mu.Lock()
	if c.cmd != nil {
		c.mu.Unlock()
		c.t.Fatalf("test postgres on port %d already running", c.Port)
	}
	cmd := c.command("postgres", "-D", c.data, "-p", strconv.Itoa(c.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+filepath.Dir(c.data),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=16MB", "-c", "max_connections=60")
	logFile, err := os.OpenFile(c.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.mu.Unlock()
		c.t.Fatalf("open the test postgres log: %v", err)
	}
	defer logFile.Close() // the server has its own copy
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		c.mu.Unlock()
		c.t.Fatalf("start postgres: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	c.cmd, c.exited = cmd, exited
	c.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, c.URL)
		if err == nil {
			_ = conn.Close(ctx)
			cancel()
			return
		}
		cancel()
		select {
		case <-exited:
			c.t.Fatalf("test postgres on port %d exited at start: %s", c.Port, c.Output())
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("test postgres on port %d does not accept connections: %v; output: %s", c.Port, err, c.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down the way an operator does (fast shutdown: open
// sessions are ended) and waits for it to exit.
func (c *Cluster) Stop() {
	c.t.Helper()
	c.Thaw()
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		c.t.Errorf("test postgres on port %d ignored SIGINT for 30 s; killed", c.Port)
	}
}

// Freeze stops every process of the server (SIGSTOP), as a hung host or a
// stalled disk would: connections stay open and nothing answers.
func (c *Cluster) Freeze() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil || c.frozen != nil {
		c.t.Fatalf("test postgres on port %d is not running, or already frozen", c.Port)
	}
	// The postmaster first, so that it starts no process we would miss.
	pids := []int{c.cmd.Process.Pid}
	if err := syscall.Kill(pids[0], syscall.SIGSTOP); err != nil {
		c.t.Fatalf("freeze postmaster: %v", err)
	}
	pids = append(pids, children(pids[0])...)
	for _, pid := range pids[1:] {
		_ = syscall.Kill(pid, syscall.SIGSTOP) // one may have exited meanwhile
	}
	c.frozen = pids
}

// Thaw lets a frozen server run again (SIGCONT); it does nothing otherwise.
func (c *Cluster) Thaw() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.frozen) - 1; i >= 0; i-- { // the postmaster last
		_ = syscall.Kill(c.frozen[i], syscall.SIGCONT)
	}
	c.frozen = nil
}

// Pid is the postmaster's process id (0 while stopped).
func (c *Cluster) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Output is what the server has logged so far.
func (c *Cluster) Output() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

func (c *Cluster) cleanup() {
	c.Stop()
}

// command runs one of the server's programs, as the postgres user when we are
// root.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// Pdeathsig: if the test binary dies without its cleanups (a timeout
	// panic), the server goes with it; its own processes follow the postmaster.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// binDir finds the directory of the newest installed server
// (/usr/lib/postgresql/N/bin, Debian's layout), or HERALD_PG_BIN.
func binDir(t testing.TB) string {
	t.Helper()
	if v := os.Getenv("HERALD_PG_BIN"); v != "" {
		return v
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	t.Fatal("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (run scripts/services.sh, or set HERALD_PG_BIN)")
	return ""
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func postgresUser(t testing.TB) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root, the test cluster needs the postgres user: %v", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// children returns the pids whose parent is pid.
func children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}
