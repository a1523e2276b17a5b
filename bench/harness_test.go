package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
)

// heraldBin is the herald binary, built once per test binary from the module
// root into binDir (which TestMain removes).
var heraldBin struct {
	once sync.Once
	path string
	err  error
}

var binDir string

func buildHerald(tb testing.TB) string {
	tb.Helper()
	heraldBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "herald-bench-")
		if err != nil {
			heraldBin.err = err
			return
		}
		binDir = dir
		heraldBin.path = filepath.Join(dir, "herald")
		out, err := exec.Command("go", "build", "-o", heraldBin.path, "..").CombinedOutput()
		if err != nil {
			heraldBin.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if heraldBin.err != nil {
		tb.Fatalf("build herald: %v", heraldBin.err)
	}
	return heraldBin.path
}

// herald is a `herald serve` process on a private broker configured as the
// README's "Broker security" section recommends for production (see
// startBroker) and a fresh database, with game g1 created and rate limits out
// of the way. It is interrupted when the test ends.
type herald struct {
	tb     testing.TB
	base   string // http://127.0.0.1:port
	pprof  string // host:port of its debug listener
	key    string // an admin API key
	prefix string
	dbURL  string
	broker *brokertest.Broker
	pid    int
	http   *http.Client
}

func startHerald(tb testing.TB, players int) *herald {
	tb.Helper()
	bin := buildHerald(tb)
	h := &herald{tb: tb, prefix: "herald", dbURL: dbtest.New(tb), broker: startBroker(tb, players),
		http: &http.Client{Timeout: 10 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}}
	out, err := exec.Command(bin, "apikey", "create", "--name", "bench", "--role", "admin", "--database-url", h.dbURL).Output()
	if err != nil {
		tb.Fatalf("herald apikey create: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	h.key = lines[len(lines)-1]

	env := map[string]string{
		"HERALD_DATABASE_URL": h.dbURL, "HERALD_MQTT_URL": h.broker.URL, "HERALD_TOPIC_PREFIX": h.prefix,
		"HERALD_MQTT_USERNAME": "herald", "HERALD_MQTT_PASSWORD": password,
		"HERALD_PPROF_ADDR": "127.0.0.1:0", "HERALD_RATE_LIMIT": "1000000", "HERALD_RATE_BURST": "1000000",
		"HERALD_DB_TIMEOUT": "15s", // a loaded 2-core machine's busy Postgres is not an outage
	}
	cmd := exec.Command(bin, "serve", "--http-addr", "127.0.0.1:0")
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start herald: %v", err)
	}
	h.pid = cmd.Process.Pid
	logPath := filepath.Join(tb.TempDir(), "herald.log")
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(45 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if tb.Failed() {
			raw, _ := os.ReadFile(logPath)
			tb.Logf("herald's log ends:\n%s", tail(string(raw), 30))
		}
	})
	logFile, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for h.base == "" && sc.Scan() {
		fmt.Fprintln(logFile, sc.Text())
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		switch line.Msg {
		case "pprof listening":
			h.pprof = line.Addr
		case "listening":
			h.base = "http://" + line.Addr
		}
	}
	if h.base == "" {
		tb.Fatalf("herald exited before listening: %v", sc.Err())
	}
	go func() { // the scanner may hold lines read ahead: it goes on
		defer logFile.Close()
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
		}
	}()
	h.call(http.StatusCreated, "POST", "/v1/games", map[string]any{"id": "g1", "name": "Bench", "default_locale": "en"})
	return h
}

// password is every account's on the bench's brokers.
const password = "bench-secret"

// benchACL is the README's ACL (brokertest.HeraldACL, for the prefix
// "herald") plus two accounts of the bench's own: bench, the baselines' bare
// paho clients, which publish under bare/ and, for the broadcast's baseline,
// where Herald does; and simgw, the simulator's connections that carry many
// players each (the README's rules give a connection only its own player's
// topics), which reads and writes what its players would.
const benchACL = `
# make bench's accounts
user bench
topic readwrite bare/#
topic write herald/#
user simgw
topic read herald/#
topic write herald/+/receipts/+
`

// startBroker starts a private Mosquitto as the README recommends for
// production: set_tcp_nodelay, a deep max_queued_messages (brokertest's
// defaults), no anonymous clients, a password file and the README's ACL.
// Accounts: herald, bench, simgw, and players sim-1 to sim-{players} and p1,
// each with the password above. TLS is left out: it would cost Herald and the
// baselines alike, and on loopback measure mostly the cipher.
func startBroker(tb testing.TB, players int) *brokertest.Broker {
	tb.Helper()
	users := map[string]string{"herald": password, "bench": password, "simgw": password, "p1": password}
	for i := 1; i <= players; i++ {
		users["sim-"+strconv.Itoa(i)] = password
	}
	return brokertest.StartWith(tb, brokertest.Options{Listener: brokertest.Security{
		PasswordFile: brokertest.WritePasswordFile(tb, users),
		ACLFile:      brokertest.WriteFile(tb, "herald.acl", brokertest.HeraldACL+benchACL),
	}})
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// do sends a request (body: nil, a string sent as text/plain, an io.Reader,
// or a value sent as JSON) and returns the answer's body, or an error when the
// request failed or its status is not want.
func (h *herald) do(want int, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd, ctype = strings.NewReader(b), "text/plain"
	case io.Reader:
		rd, ctype = b, "text/plain"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+h.key)
	req.Header.Set("Content-Type", ctype)
	resp, err := h.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return raw, fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	return raw, nil
}

// call is do for the scenario's own goroutine: it fails the test on an error
// and decodes the answer.
func (h *herald) call(want int, method, path string, body any) map[string]any {
	h.tb.Helper()
	raw, err := h.do(want, method, path, body)
	if err != nil {
		h.tb.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			h.tb.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return out
}

// resetPeakRSS starts the process's peak resident set (VmHWM) afresh, so that
// what peakRSSMiB reads next belongs to the work in between.
func (h *herald) resetPeakRSS() {
	h.tb.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", h.pid), []byte("5"), 0); err != nil {
		h.tb.Fatalf("reset peak RSS: %v", err)
	}
}

// peakRSSMiB reads the process's peak resident set since resetPeakRSS.
func (h *herald) peakRSSMiB() float64 {
	h.tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.pid))
	if err != nil {
		h.tb.Fatal(err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				h.tb.Fatalf("VmHWM %q: %v", rest, err)
			}
			return float64(kb) / 1024
		}
	}
	h.tb.Fatalf("no VmHWM in /proc/%d/status", h.pid)
	return 0
}

// cpuSeconds is the CPU time (user and system) process pid has used so far.
func cpuSeconds(tb testing.TB, pid int) float64 {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatalf("CPU time of %d: %v", pid, err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces:
	// state is the first, utime the 12th and stime the 13th.
	_, rest, _ := strings.Cut(string(raw), ") ")
	f := strings.Fields(rest)
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("/proc/%d/stat: %q", pid, raw)
	}
	return (utime + stime) / clockTicks
}

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every architecture Go supports on Linux.
const clockTicks = 100

// cpuMeter measures how many cores processes kept busy over a stretch of time.
type cpuMeter struct {
	tb    testing.TB
	pids  []int
	start time.Time
	cpu   []float64
}

func meterCPU(tb testing.TB, pids ...int) *cpuMeter {
	m := &cpuMeter{tb: tb, pids: pids, start: time.Now()}
	for _, pid := range pids {
		m.cpu = append(m.cpu, cpuSeconds(tb, pid))
	}
	return m
}

// cores returns, per process, the CPU seconds used since meterCPU divided by
// the wall seconds passed: 1.0 is one core kept busy.
func (m *cpuMeter) cores() []float64 {
	wall := time.Since(m.start).Seconds()
	out := make([]float64, len(m.pids))
	for i, pid := range m.pids {
		out[i] = (cpuSeconds(m.tb, pid) - m.cpu[i]) / wall
	}
	return out
}

// profile takes a CPU profile of the process for its first BENCH_PROFILE_SECONDS
// (default 10) from now into BENCH_PROFILE/name.pprof, when BENCH_PROFILE
// names a directory; it returns a function that waits for the profile to be
// written. Read one with `go tool pprof -top FILE`.
func (h *herald) profile(name string) (wait func()) {
	h.tb.Helper()
	dir := os.Getenv("BENCH_PROFILE")
	if dir == "" {
		return func() {}
	}
	secs := envInt(h.tb, "BENCH_PROFILE_SECONDS", 10)
	path := filepath.Join(dir, name+".pprof")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+30)*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", h.pprof, secs), nil)
		if err != nil {
			done <- err
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d: %s", resp.StatusCode, raw)
		}
		if err == nil {
			err = os.MkdirAll(dir, 0o755)
		}
		if err == nil {
			err = os.WriteFile(path, raw, 0o644)
		}
		done <- err
	}()
	return func() {
		if err := <-done; err != nil {
			h.tb.Errorf("CPU profile %s: %v", name, err)
			return
		}
		h.tb.Logf("CPU profile of herald written to %s", path)
	}
}

// machineMeter measures how many of the machine's cores were busy over a
// stretch of time (from /proc/stat: everything but idle and iowait), whoever
// kept them busy: Herald, Postgres, the broker and the bench itself. Next to
// runtime.NumCPU it shows when a figure is bound by the machine's CPU.
type machineMeter struct {
	tb        testing.TB
	busy, all float64
	start     time.Time
}

func meterMachine(tb testing.TB) *machineMeter {
	busy, all := machineTicks(tb)
	return &machineMeter{tb: tb, busy: busy, all: all, start: time.Now()}
}

// cores returns the cores kept busy since meterMachine: the share of busy
// ticks times the number of CPUs.
func (m *machineMeter) cores() float64 {
	busy, all := machineTicks(m.tb)
	if all == m.all {
		return math.NaN()
	}
	return (busy - m.busy) / (all - m.all) * float64(runtime.NumCPU())
}

// machineTicks reads the aggregate cpu line of /proc/stat: the ticks spent
// busy and in all.
func machineTicks(tb testing.TB) (busy, all float64) {
	tb.Helper()
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		tb.Fatalf("machine CPU: %v", err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		tb.Fatalf("/proc/stat: %q", line)
	}
	for i, s := range f[1:9] {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			tb.Fatalf("/proc/stat: %q", line)
		}
		all += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, all
}
