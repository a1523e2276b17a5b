// Package brokertest starts private Mosquitto brokers for tests that need a broker
// of their own: one they can stop and start again, or secure (passwords, ACLs, TLS).
package brokertest

import (
	"bytes"
	"net"
	"os/exec"
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
	Port int    // the main listener's
	URL  string // the main listener's: tcp://127.0.0.1:Port, or mqtts:// with TLS
	// Listeners are the URLs of every listener: URL first, then one per
	// Options.More in order.
	Listeners []string
	Dir       string
	conf      string
	ports     []int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	out    *lockedBuffer
}

// New writes the broker's config (extra lines appended) and returns
// it without starting it.
func New(t testing.TB, extra ...string) *Broker {
	t.Helper()
	return NewWith(t, Options{Extra: extra})
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

	// Mosquitto opens its listeners one after the other: wait for each.
	deadline := time.Now().Add(10 * time.Second)
	for _, port := range b.ports {
		for {
			conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
			if err == nil {
				_ = conn.Close()
				break
			}
			select {
			case <-exited:
				b.t.Fatalf("mosquitto on port %d exited at start: %s", b.Port, b.out.String())
			default:
			}
			if time.Now().After(deadline) {
				b.t.Fatalf("mosquitto on port %d does not accept connections: %v; output: %s", port, err, b.out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// PID is the running Mosquitto's process id, 0 when it is stopped: for
// benchmarks that read its CPU time from /proc.
func (b *Broker) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Output is what Mosquitto has logged (errors and warnings) so far.
func (b *Broker) Output() string {
	return b.out.String()
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
