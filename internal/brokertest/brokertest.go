// Package brokertest starts private Mosquitto brokers for tests that need a broker
// of their own: one they can stop and start again, or configure (auth, ACLs).
package brokertest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Broker is a private Mosquitto on its own 127.0.0.1 port, with its own
// config and persistence directory in t.TempDir(). It can be stopped cleanly
// (SIGTERM: Mosquitto then saves its retained messages) and started again on
// the same port; cleanup kills it.
type Broker struct {
	t    testing.TB
	Port int
	URL  string
	Dir  string
	conf string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	out    *lockedBuffer
}

// New writes the broker's config (extra lines appended) and returns
// it without starting it.
func New(t testing.TB, extra ...string) *Broker {
	t.Helper()
	if _, err := exec.LookPath("mosquitto"); err != nil {
		t.Fatalf("mosquitto is not on PATH (%v): run scripts/services.sh to install it", err)
	}
	dir := t.TempDir()
	port := FreePort(t)
	conf := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
max_queued_messages 1000000
max_inflight_messages 0
persistence true
persistence_location %s/
persistence_file mosquitto.db
log_dest stderr
log_type error
log_type warning
`, port, dir)
	if os.Geteuid() == 0 {
		conf += "user root\n" // Mosquitto otherwise drops to user mosquitto, who cannot write dir
	}
	for _, l := range extra {
		conf += l + "\n"
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatalf("write mosquitto config: %v", err)
	}
	b := &Broker{
		t: t, Port: port, URL: "tcp://127.0.0.1:" + strconv.Itoa(port), Dir: dir, conf: path,
		out: &lockedBuffer{},
	}
	t.Cleanup(b.Kill)
	return b
}

// Start returns a private broker that accepts connections.
func Start(t testing.TB, extra ...string) *Broker {
	t.Helper()
	b := New(t, extra...)
	b.Start()
	return b
}

// Start starts Mosquitto and returns once it accepts TCP connections.
func (b *Broker) Start() {
	b.t.Helper()
	b.mu.Lock()
	if b.cmd != nil {
		b.mu.Unlock()
		b.t.Fatalf("test broker on port %d already running", b.Port)
	}
	cmd := exec.Command("mosquitto", "-c", b.conf)
	cmd.Stdout = b.out
	cmd.Stderr = b.out
	if err := cmd.Start(); err != nil {
		b.mu.Unlock()
		b.t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	b.cmd, b.exited = cmd, exited
	b.mu.Unlock()

	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(b.Port), time.Second)
		if err == nil {
			_ = conn.Close()
			return
		}
		select {
		case <-exited:
			b.t.Fatalf("mosquitto on port %d exited at start: %s", b.Port, b.out.String())
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquitto on port %d does not accept connections: %v; output: %s", b.Port, err, b.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for Mosquitto to exit (saving its persistence).
func (b *Broker) Stop() {
	b.t.Helper()
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.t.Errorf("SIGTERM mosquitto: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		b.t.Errorf("mosquitto on port %d ignored SIGTERM for 10 s; killed", b.Port)
	}
}

// Kill kills Mosquitto at once (SIGKILL): retained messages since the last save
// are lost, as after a crash.
func (b *Broker) Kill() {
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	b.cmd = nil
	b.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-exited
	}
}

// FreePort returns a 127.0.0.1 TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
