package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
)

// BenchmarkCronLateness fires 10,000 cron campaigns due in the same minute
// through a real Herald (in-process, its own database) and a private broker,
// and reports how late their fires were: recorded (the dispatch's created_at,
// the start of the fire's transaction) and sent (sent_at, when a fan-out
// worker took the dispatch), each minus the fire time, p50 and p99.
//
//	go test -run '^$' -bench CronLateness -benchtime 1x .
//
// HERALD_BENCH_CAMPAIGNS changes the count.
func BenchmarkCronLateness(b *testing.B) {
	campaigns := 10_000
	if n, err := strconv.Atoi(os.Getenv("HERALD_BENCH_CAMPAIGNS")); err == nil && n > 0 {
		campaigns = n
	}
	broker := brokertest.Start(b)
	dbURL := dbtest.New(b)
	h := startHeraldWith(b, map[string]string{"HERALD_DATABASE_URL": dbURL, "HERALD_MQTT_URL": broker.URL, "HERALD_TOPIC_PREFIX": randomPrefix()})
	h.createGame()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)

	for b.Loop() {
		// The first minute at least 20 s away, daily, so that each campaign fires
		// once in the run: one created through the API, the others copies of it.
		fire := time.Now().Add(20 * time.Second).Truncate(time.Minute).Add(time.Minute).UTC()
		c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
			"kind": "notice", "name": "daily", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
			"content":  map[string]any{"title": map[string]any{"en": "Daily gift"}, "body": map[string]any{"en": "Log in for it"}},
			"schedule": map[string]any{"cron": fmt.Sprintf("%d %d * * *", fire.Minute(), fire.Hour()), "timezone": "UTC"}, "ttl": "1h",
		})
		if _, err := conn.Exec(ctx, `
			INSERT INTO campaigns (id, game_id, kind, name, segment_id, rule, content, priority, starts_at, expires_at,
				ttl_ms, misfire_grace_ms, schedule, send_at, status, plan_exact, plan_topics, plan_players)
			SELECT gen_random_uuid(), game_id, kind, name || ' ' || i, segment_id, rule, content, priority, starts_at, expires_at,
				ttl_ms, misfire_grace_ms, schedule, send_at, status, plan_exact, plan_topics, plan_players
			FROM campaigns, generate_series(2, $2) AS i WHERE id = $1`, c["id"], campaigns); err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `SELECT pg_notify('herald_schedule', '')`); err != nil {
			b.Fatal(err)
		}
		if time.Now().After(fire) {
			b.Fatal("set up too slowly: the fire time passed")
		}
		b.Logf("%d campaigns due at %s", campaigns, fire.Format(time.TimeOnly))
		for {
			var sent int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM dispatches WHERE fire_at = $1 AND sent_at IS NOT NULL`, fire).Scan(&sent); err != nil {
				b.Fatal(err)
			}
			if sent == campaigns {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		var recorded50, recorded99, sent50, sent99 float64
		if err := conn.QueryRow(ctx, `
			SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - fire_at)),
				percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - fire_at)),
				percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - fire_at)),
				percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - fire_at))
			FROM dispatches WHERE fire_at = $1`, fire).Scan(&recorded50, &recorded99, &sent50, &sent99); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(recorded50*1000, "recorded-p50-ms")
		b.ReportMetric(recorded99*1000, "recorded-p99-ms")
		b.ReportMetric(sent50*1000, "sent-p50-ms")
		b.ReportMetric(sent99*1000, "sent-p99-ms")
		b.Logf("%d fires: recorded p50 %.0f ms, p99 %.0f ms; sent p50 %.0f ms, p99 %.0f ms after their time",
			campaigns, recorded50*1000, recorded99*1000, sent50*1000, sent99*1000)
		var publish, total float64
		if err := conn.QueryRow(ctx, `
			SELECT avg(extract(epoch FROM last_ack_at - sent_at)), extract(epoch FROM max(updated_at) - min(sent_at))
			FROM dispatches WHERE fire_at = $1`, fire).Scan(&publish, &total); err != nil {
			b.Fatal(err)
		}
		b.Logf("fan-out: %.1f ms from claim to acknowledgement on average, %.1f s for all", publish*1000, total)
		if _, err := conn.Exec(ctx, `UPDATE campaigns SET status = 'canceled'`); err != nil { // no further fires
			b.Fatal(err)
		}
	}
}
