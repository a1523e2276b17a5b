package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/internal/brokertest"
)

// fanoutAndExpiry sends a notice to a segment of sz.fanout listed members
// (retained, QoS 1) and reports publishes/s from the API call to the last
// broker acknowledgement and Herald's peak RSS meanwhile, next to a bare paho
// publisher (one connection, QoS 1, acknowledgements awaited per 1,000) of as
// many retained messages of about the same size. Then the campaign expires
// (its expires_at moved to now) and Herald's clears/s are set beside the bare
// publisher clearing its own topics.
func fanoutAndExpiry(t *testing.T, sz sizes, runs int, rec *recorder) {
	h := startHerald(t, 0)
	seg := h.call(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "listed", "rule": map[string]any{"members": true}})
	segID := seg["id"].(string)
	h.call(http.StatusOK, "PUT", "/v1/games/g1/segments/"+segID+"/members", ids("p", sz.fanout, false))
	db := connect(t, h.dbURL)
	bare := pahoClient(t, h.broker.URL, "bare-publisher")
	payload := make([]byte, 300) // about the notice's envelope
	rowName := fmt.Sprintf("fan-out to %s members, retained QoS 1: publishes/s", number(float64(sz.fanout)))

	for run := range runs {
		h.resetPeakRSS()
		profiled := h.profile(fmt.Sprintf("fanout-run%d", run+1))
		cpu := meterCPU(t, h.pid, h.broker.PID())
		start := time.Now()
		c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
			"kind": "notice", "name": fmt.Sprintf("bench %d", run), "audience": map[string]any{"segment_id": segID},
			"content": map[string]any{"title": map[string]any{"en": "Season 4 starts"}, "body": map[string]any{"en": "Log in for your gift"}},
		})
		id := c["id"].(string)
		d := h.waitDispatch(id, func(d dispatchView) bool { return d.State == "published" }, func(d dispatchView) int64 { return d.Acked })
		if d.Acked != int64(sz.fanout) || d.Failed != 0 || d.LastAckAt == nil {
			t.Fatalf("fan-out: %d of %d acknowledged, %d failed", d.Acked, sz.fanout, d.Failed)
		}
		heraldRate := float64(sz.fanout) / d.LastAckAt.Sub(start).Seconds()
		heraldCPU := cpu.cores()
		rss := h.peakRSSMiB()
		profiled()

		topic := func(i int) string { return fmt.Sprintf("bare/g1/player/p%07d/notice/%d", i, run) }
		cpu = meterCPU(t, h.broker.PID())
		t0 := time.Now()
		if err := brokertest.BarePublish(bare, topic, payload, sz.fanout, 1000, true); err != nil {
			t.Fatalf("bare publish: %v", err)
		}
		bareRate := float64(sz.fanout) / time.Since(t0).Seconds()
		bareCPU := cpu.cores()
		rec.add(figure{row: rowName, unit: "/s", herald: heraldRate, base: bareRate, goal: ptr(ratioAtLeast(1.0))})
		rec.add(figure{row: "fan-out: Herald's peak RSS", unit: "MiB", herald: rss, base: math.NaN(), goal: ptr(atMost(150, "MiB"))})
		// What limits it: the cores Herald and Mosquitto kept busy (2 on this
		// machine's kind), the broker's beside its own under the bare publisher.
		rec.add(figure{row: "fan-out: Herald's CPU", unit: "cores", herald: heraldCPU[0], base: math.NaN()})
		rec.add(figure{row: "fan-out: Mosquitto's CPU", unit: "cores", herald: heraldCPU[1], base: bareCPU[0]})

		// Expiry: the scheduler leader clears what expired once woken.
		ctx := context.Background()
		t0 = time.Now()
		if _, err := db.Exec(ctx, `UPDATE dispatches SET expires_at = now() WHERE campaign_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `SELECT pg_notify('herald_schedule', '')`); err != nil {
			t.Fatal(err)
		}
		d = h.waitDispatch(id, func(d dispatchView) bool { return d.State == "expired" }, func(d dispatchView) int64 { return d.Cleared })
		if d.Cleared != int64(sz.fanout) || d.ClearedAt == nil {
			t.Fatalf("expiry: %d of %d cleared", d.Cleared, sz.fanout)
		}
		heraldClears := float64(sz.fanout) / d.ClearedAt.Sub(t0).Seconds()
		t0 = time.Now()
		if err := brokertest.BarePublish(bare, topic, nil, sz.fanout, 1000, true); err != nil {
			t.Fatalf("bare clear: %v", err)
		}
		bareClears := float64(sz.fanout) / time.Since(t0).Seconds()
		rec.add(figure{row: "expiry of that campaign: clears/s", unit: "/s", herald: heraldClears, base: bareClears, goal: ptr(ratioAtLeast(0.9))})
	}
}

func ptr[T any](v T) *T { return &v }

// dispatchView is what the bench reads of a campaign's dispatch.
type dispatchView struct {
	ID        string     `json:"id"`
	State     string     `json:"state"`
	SentAt    *time.Time `json:"sent_at"`
	Acked     int64      `json:"acked"`
	Failed    int64      `json:"failed"`
	LastAckAt *time.Time `json:"last_ack_at"`
	Cleared   int64      `json:"cleared"`
	ClearedAt *time.Time `json:"cleared_at"`
}

// waitDispatch polls the campaign's only dispatch until done holds, failing
// the test only when progress (a count that grows while the work goes on)
// stalls for a minute.
func (h *herald) waitDispatch(campaign string, done func(dispatchView) bool, progress func(dispatchView) int64) dispatchView {
	h.tb.Helper()
	watch := newStallWatch()
	for {
		var c struct{ Dispatches []dispatchView }
		raw, err := h.do(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+campaign, nil)
		if err != nil {
			h.tb.Fatal(err)
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			h.tb.Fatal(err)
		}
		n := int64(-1) // no dispatch yet
		if len(c.Dispatches) == 1 {
			d := c.Dispatches[0]
			if done(d) {
				return d
			}
			n = progress(d)
		}
		if watch.stalled(n) {
			h.tb.Fatalf("campaign %s: no progress for a minute: %s", campaign, raw)
		}
		// Seldom: the figures come from the dispatch's own times, and every
		// poll is a request Herald serves while it fans out.
		time.Sleep(100 * time.Millisecond)
	}
}

// ids streams n player ids, prefix plus 7 digits, one per line; shuffled
// spreads them over the id space in a fixed order (as a game's export would
// be) rather than sorted.
func ids(prefix string, n int, shuffled bool) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 64<<10)
		var line []byte
		for i := range n {
			j := i
			if shuffled {
				j = (i * 7919) % n
			}
			line = append(fmt.Appendf(line[:0], "%s%07d", prefix, j), '\n')
			if _, err := w.Write(line); err != nil {
				return // the reader went away
			}
		}
		pw.CloseWithError(w.Flush())
	}()
	return pr
}

func connect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to the bench database: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// pahoClient is a bare paho connection, the baselines' publisher.
func pahoClient(t *testing.T, broker, id string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(true).
		SetUsername("bench").SetPassword(password).
		SetOrderMatters(false).SetKeepAlive(2 * time.Minute).SetPingTimeout(time.Minute))
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}
