package sim

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/heraldpush/herald/client"
	"github.com/heraldpush/herald/protocol"
)

// Summary is what a simulation counted, over all its players. Durations are
// readable strings ("1.5s").
type Summary struct {
	Players     int     `json:"players"`      // asked for
	Connected   int64   `json:"connected"`    // players connected
	Failed      int64   `json:"failed"`       // players that could not connect
	Connections int64   `json:"connections"`  // MQTT connections
	ConnectRate float64 `json:"connect_rate"` // players connected per second, from the start to the latest
	Elapsed     string  `json:"elapsed"`

	Received   map[protocol.Kind]int64 `json:"received"` // messages accepted, per kind
	Removals   int64                   `json:"removals"`
	Replaced   int64                   `json:"replaced"`
	Filtered   int64                   `json:"filtered"`
	Duplicates int64                   `json:"duplicates"`
	Expired    int64                   `json:"expired"`
	Invalid    int64                   `json:"invalid"`
	Ignored    int64                   `json:"ignored"`
	Receipts   int64                   `json:"receipts_sent"`
	Displayed  int64                   `json:"displayed"`
	Clicked    int64                   `json:"clicked"`

	// Delivery latency, from each message's sent_at to its arrival.
	LatencyP50 string `json:"latency_p50"`
	LatencyP99 string `json:"latency_p99"`
}

// Snapshot sums what the players have counted so far.
func (s *Sim) Snapshot() Summary {
	s.mu.Lock()
	sessions := slices.Clone(s.sessions)
	started, lastUp := s.started, s.lastUp
	s.mu.Unlock()
	sum := Summary{
		Players: len(s.attrs), Connected: s.connected.Load(), Failed: s.failed.Load(),
		Connections: s.connections.Load(), Displayed: s.displayed.Load(), Clicked: s.clicked.Load(),
		Received: map[protocol.Kind]int64{},
	}
	if !started.IsZero() {
		sum.Elapsed = time.Since(started).Round(time.Millisecond).String()
	}
	if secs := lastUp.Sub(started).Seconds(); sum.Connected > 0 && secs > 0 {
		sum.ConnectRate = float64(sum.Connected) / secs
	}
	for _, p := range sessions {
		st := p.Stats()
		for k, n := range st.Received {
			sum.Received[k] += n
		}
		sum.Removals += st.Removals
		sum.Replaced += st.Replaced
		sum.Filtered += st.Filtered
		sum.Duplicates += st.Duplicates
		sum.Expired += st.Expired
		sum.Invalid += st.Invalid
		sum.Ignored += st.Ignored
		sum.Receipts += st.ReceiptsSent
	}
	p50, p99 := s.lat.percentiles()
	sum.LatencyP50, sum.LatencyP99 = readable(p50), readable(p99)
	return sum
}

// PlayerStats returns what each connected player has counted so far, by
// player id: for tests and tools that check who got what.
func (s *Sim) PlayerStats() map[string]client.Stats {
	s.mu.Lock()
	players := maps.Clone(s.players)
	s.mu.Unlock()
	out := make(map[string]client.Stats, len(players))
	for id, p := range players {
		out[id] = p.Stats()
	}
	return out
}

func readable(d time.Duration) string {
	if d < 0 {
		return ""
	}
	return d.Round(10 * time.Microsecond).String()
}

// total is how many messages were accepted, of every kind.
func (sum Summary) total() int64 {
	var n int64
	for _, c := range sum.Received {
		n += c
	}
	return n
}

// ProgressLine is the one-line state printed while the simulation runs.
func (sum Summary) ProgressLine() string {
	return fmt.Sprintf("%s: %d/%d players connected (%.0f/s), %d received, %d filtered, %d duplicates, %d receipts",
		sum.Elapsed, sum.Connected, sum.Players, sum.ConnectRate, sum.total(), sum.Filtered, sum.Duplicates, sum.Receipts)
}

// WriteText prints the summary for people.
func (sum Summary) WriteText(w io.Writer) {
	var kinds []string
	for _, k := range []protocol.Kind{protocol.KindMarquee, protocol.KindNotice, protocol.KindAd, protocol.KindKickout} {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, sum.Received[k]))
	}
	fmt.Fprintf(w, `players        %d connected of %d (%d failed) over %d connections, %.0f/s
elapsed        %s
received       %s
removals       %d (%d replaced by a newer send)
filtered out   %d
duplicates     %d suppressed
expired        %d, invalid %d, ignored %d
receipts sent  %d (%d displayed, %d clicked)
latency        p50 %s, p99 %s (sent_at to arrival)
`, sum.Connected, sum.Players, sum.Failed, sum.Connections, sum.ConnectRate, sum.Elapsed,
		strings.Join(kinds, ", "), sum.Removals, sum.Replaced, sum.Filtered, sum.Duplicates,
		sum.Expired, sum.Invalid, sum.Ignored, sum.Receipts, sum.Displayed, sum.Clicked,
		orNone(sum.LatencyP50), orNone(sum.LatencyP99))
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// latencies keeps delivery latencies, up to maxLatencies of them.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

const maxLatencies = 1 << 22

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) < maxLatencies {
		l.d = append(l.d, d)
	}
}

// percentiles returns the 50th and 99th, or -1 without samples.
func (l *latencies) percentiles() (p50, p99 time.Duration) {
	l.mu.Lock()
	d := slices.Clone(l.d)
	l.mu.Unlock()
	if len(d) == 0 {
		return -1, -1
	}
	slices.Sort(d)
	at := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	return at(0.50), at(0.99)
}
