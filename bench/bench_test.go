package bench

import (
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sizes is how much work each scenario does.
type sizes struct {
	fanout      int // members of the fan-out campaign
	players     int // simulated players online for the broadcast
	upload      int // ids in the member upload
	receipts    int // receipts the simulator sends
	kickRate    int // kick-out requests per second
	kickSecs    int // for this long
	waited      int // waited kick-outs (and bare round trips)
	cron        int // cron campaigns due in the same minute
	apiRate     int // API requests per second, of each kind
	apiSecs     int // for this long
	cronMinLead time.Duration
}

// fullSizes are issue 13's sizes times scale (BENCH_SCALE). Rates stay: a
// tenth of a rate would not be the same test; their durations shrink.
func fullSizes(scale float64) sizes {
	n := func(full int, least int) int { return max(least, int(math.Round(float64(full)*scale))) }
	return sizes{
		fanout: n(1_000_000, 1000), players: n(5_000, 100), upload: n(10_000_000, 1000), receipts: n(1_000_000, 1000),
		kickRate: 1000, kickSecs: n(30, 3), waited: n(300, 30), cron: n(10_000, 10),
		apiRate: 500, apiSecs: n(20, 3), cronMinLead: 20 * time.Second,
	}
}

// smokeSizes are small enough for the whole smoke run to take about a minute
// on a loaded 2-core machine (the cron scenario waits for a minute to start,
// beside the others).
var smokeSizes = sizes{
	fanout: 2000, players: 100, upload: 5000, receipts: 1500,
	kickRate: 100, kickSecs: 1, waited: 10, cron: 20,
	apiRate: 50, apiSecs: 1, cronMinLead: 5 * time.Second,
}

// scenario is one row group of the table: it sets up once, then measures
// Herald and its baseline runs times, recording figures.
type scenario struct {
	name string
	run  func(t *testing.T, sz sizes, runs int, rec *recorder)
}

var scenarios = []scenario{
	{"fanout", fanoutAndExpiry},
	{"broadcast", broadcast},
	{"upload", memberUpload},
	{"receipts", receiptsFromSim},
	{"kickouts", kickoutLoad},
	{"waited-kickout", waitedKickout},
	{"cron", cronLateness},
	{"api", apiLoad},
}

// TestBench is `make bench`: every scenario (BENCH_ONLY, a regular expression
// of their names, narrows it) at issue 13's sizes times BENCH_SCALE (default
// 1), BENCH_RUNS times (default 3), then one table on standard output.
// BENCH_PROFILE=DIR writes CPU profiles of the herald process during the
// fan-out, the upload and the cron fires.
func TestBench(t *testing.T) {
	if os.Getenv("BENCH") != "1" {
		t.Skip("run by make bench (BENCH=1)")
	}
	scale := envFloat(t, "BENCH_SCALE", 1)
	runs := envInt(t, "BENCH_RUNS", 3)
	only, err := regexp.Compile(os.Getenv("BENCH_ONLY"))
	if err != nil {
		t.Fatalf("BENCH_ONLY: %v", err)
	}
	sz, rec := fullSizes(scale), newRecorder()
	start := time.Now()
	for _, s := range scenarios {
		if only.MatchString(s.name) {
			t.Run(s.name, func(t *testing.T) { s.run(t, sz, runs, rec) })
		}
	}
	os.Stdout.WriteString("\nBENCH_SCALE=" + strconv.FormatFloat(scale, 'g', -1, 64) + ", BENCH_RUNS=" + strconv.Itoa(runs) +
		", took " + time.Since(start).Round(time.Second).String() + "\n\n")
	rec.write(os.Stdout)
}

// TestSmoke runs every scenario once at a tiny size so that the benchmarks
// cannot rot: each must produce its figures, and each checks on its own that
// nothing was lost (every member published and cleared, every receipt stored,
// every player reached). Speeds are not asserted.
func TestSmoke(t *testing.T) {
	if os.Getenv("BENCH") == "1" {
		t.Skip("make bench runs TestBench")
	}
	rec := newRecorder()
	t.Run("all", func(t *testing.T) {
		// The cron scenario mostly waits for its minute: it runs beside the rest.
		var cron scenario
		var rest []scenario
		for _, s := range scenarios {
			if s.name == "cron" {
				cron = s
			} else {
				rest = append(rest, s)
			}
		}
		t.Run(cron.name, func(t *testing.T) {
			t.Parallel()
			cron.run(t, smokeSizes, 1, rec)
		})
		t.Run("others", func(t *testing.T) {
			t.Parallel()
			for _, s := range rest {
				t.Run(s.name, func(t *testing.T) { s.run(t, smokeSizes, 1, rec) })
			}
		})
	})
	figures := rec.figures()
	if len(figures) == 0 {
		t.Fatal("no figures")
	}
	for _, f := range figures {
		if math.IsNaN(f.herald) || math.IsInf(f.herald, 0) || f.herald < 0 {
			t.Errorf("%s: Herald's figure is %v", f.row, f.herald)
		}
		if math.IsInf(f.base, 0) || f.base < 0 {
			t.Errorf("%s: the baseline's figure is %v", f.row, f.base)
		}
	}
	if !t.Failed() {
		var tbl strings.Builder
		rec.write(&tbl)
		t.Logf("smoke figures (tiny sizes, not speeds to compare):\n%s", tbl.String())
	}
}

func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

func envFloat(tb testing.TB, name string, def float64) float64 {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0) {
		tb.Fatalf("%s=%q: want a positive number", name, v)
	}
	return f
}

// openLoop calls do(i) rate times a second for secs seconds, each call on its
// own schedule whatever the previous ones do (so that a slow answer delays no
// later request and latency is not hidden by coordinated omission), and
// returns the latencies of the calls that succeeded and the errors.
func openLoop(rate, secs int, do func(i int) error) (lat []time.Duration, errs []error) {
	n := rate * secs
	lats := make([]time.Duration, n)
	fails := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		wg.Go(func() {
			t0 := time.Now()
			fails[i] = do(i)
			lats[i] = time.Since(t0)
		})
	}
	wg.Wait()
	for i, err := range fails {
		if err != nil {
			errs = append(errs, err)
		} else {
			lat = append(lat, lats[i])
		}
	}
	return lat, errs
}

// percentile returns the p-th percentile (0-100) of sorted durations, in ms.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	return float64(sorted[int(float64(len(sorted)-1)*p/100)]) / float64(time.Millisecond)
}

// stallWatch tells when a long wait has stopped making progress: a scenario
// fails when nothing moved for a minute, however long the whole wait, since
// on a loaded machine a fixed deadline would fail a slow run that still moves.
type stallWatch struct {
	last     int64
	deadline time.Time
}

func newStallWatch() *stallWatch {
	return &stallWatch{last: -1, deadline: time.Now().Add(time.Minute)}
}

// stalled records progress (a count that grows while the wait moves) and
// reports whether it has not changed for a minute.
func (w *stallWatch) stalled(progress int64) bool {
	if progress != w.last {
		w.last, w.deadline = progress, time.Now().Add(time.Minute)
	}
	return time.Now().After(w.deadline)
}
