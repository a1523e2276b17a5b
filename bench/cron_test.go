package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// cronLateness makes sz.cron daily cron campaigns due in the same minute (one
// through the API, the rest copies of it in the database, then the
// scheduler told) and reports how late their fires were: recorded (the
// dispatch's created_at, the start of the fire's transaction), sent (sent_at,
// when its publishing began: its recording, for a send handed off to the
// recording replica's workers, else its claim) and acknowledged (first_ack_at,
// when the broker had it), each minus the fire time, p50 and p99. There is
// no baseline: the target is absolute (p99 <= 1 s). The wait for the sends
// waits for the last acknowledgement too.
func cronLateness(t *testing.T, sz sizes, runs int, rec *recorder) {
	h := startHerald(t, 0)
	db := connect(t, h.dbURL)
	ctx := context.Background()
	name := fmt.Sprintf("scheduler: %s cron campaigns due in one minute", number(float64(sz.cron)))
	for run := range runs {
		// The first minute at least cronMinLead away, daily, so that each
		// campaign fires once in the run.
		fire := time.Now().Add(sz.cronMinLead).Truncate(time.Minute).Add(time.Minute).UTC()
		c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
			"kind": "notice", "name": "daily", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
			"content":  map[string]any{"title": map[string]any{"en": "Daily gift"}, "body": map[string]any{"en": "Log in for it"}},
			"schedule": map[string]any{"cron": fmt.Sprintf("%d %d * * *", fire.Minute(), fire.Hour()), "timezone": "UTC"}, "ttl": "1h",
		})
		if _, err := db.Exec(ctx, `
			INSERT INTO campaigns (id, game_id, kind, name, segment_id, rule, content, priority, starts_at, expires_at,
				ttl_ms, misfire_grace_ms, schedule, send_at, status, plan_exact, plan_topics, plan_players)
			SELECT gen_random_uuid(), game_id, kind, name || ' ' || i, segment_id, rule, content, priority, starts_at, expires_at,
				ttl_ms, misfire_grace_ms, schedule, send_at, status, plan_exact, plan_topics, plan_players
			FROM campaigns, generate_series(2, $2) AS i WHERE id = $1`, c["id"], sz.cron); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `SELECT pg_notify('herald_schedule', '')`); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(fire) {
			t.Fatal("set up too slowly: the fire time passed")
		}
		t.Logf("%d campaigns due at %s", sz.cron, fire.Format(time.TimeOnly))
		time.Sleep(time.Until(fire))
		h.resetPeakRSS()
		profiled := h.profile(fmt.Sprintf("cron-run%d", run+1))
		cpu, machine := meterCPU(t, h.pid), meterMachine(t)
		watch := newStallWatch()
		for {
			var acked int
			if err := db.QueryRow(ctx, `SELECT count(*) FROM dispatches WHERE fire_at = $1 AND first_ack_at IS NOT NULL`, fire).Scan(&acked); err != nil {
				t.Fatal(err)
			}
			if acked == sz.cron {
				break
			}
			if watch.stalled(int64(acked)) {
				t.Fatalf("%d of %d fires acknowledged by the broker, none more for a minute", acked, sz.cron)
			}
			time.Sleep(200 * time.Millisecond)
		}
		heraldCPU, machineCPU := cpu.cores()[0], machine.cores()
		rss := h.peakRSSMiB()
		profiled()
		var recorded50, recorded99, sent50, sent99, acked50, acked99 float64
		if err := db.QueryRow(ctx, `
			SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - fire_at)),
				percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - fire_at)),
				percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - fire_at)),
				percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - fire_at)),
				percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_ack_at - fire_at)),
				percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM first_ack_at - fire_at))
			FROM dispatches WHERE fire_at = $1`, fire).Scan(&recorded50, &recorded99, &sent50, &sent99, &acked50, &acked99); err != nil {
			t.Fatal(err)
		}
		rec.add(figure{row: name + ": recorded lateness p50", unit: "ms", herald: recorded50 * 1000, base: math.NaN()})
		rec.add(figure{row: name + ": recorded lateness p99", unit: "ms", herald: recorded99 * 1000, base: math.NaN(), goal: ptr(atMost(1000, "ms"))})
		rec.add(figure{row: name + ": sent lateness p50", unit: "ms", herald: sent50 * 1000, base: math.NaN()})
		rec.add(figure{row: name + ": sent lateness p99", unit: "ms", herald: sent99 * 1000, base: math.NaN(), goal: ptr(atMost(1000, "ms"))})
		rec.add(figure{row: name + ": acknowledged lateness p50", unit: "ms", herald: acked50 * 1000, base: math.NaN()})
		rec.add(figure{row: name + ": acknowledged lateness p99", unit: "ms", herald: acked99 * 1000, base: math.NaN(), goal: ptr(atMost(1000, "ms"))})
		// What limits it: the cores Herald and the whole machine (Postgres
		// above all) kept busy from the due time until the last was sent.
		rec.add(figure{row: name + ": Herald's peak RSS", unit: "MiB", herald: rss, base: math.NaN()})
		rec.add(figure{row: name + ": Herald's CPU", unit: "cores", herald: heraldCPU, base: math.NaN()})
		rec.add(figure{row: fmt.Sprintf("%s: the machine's CPU (of %d)", name, runtime.NumCPU()), unit: "cores", herald: machineCPU, base: math.NaN()})
		if _, err := db.Exec(ctx, `UPDATE campaigns SET status = 'canceled'`); err != nil { // no further fires
			t.Fatal(err)
		}
	}
}
