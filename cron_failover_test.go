package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
)

// leads reports whether the herald process at base leads the scheduler (its
// herald_scheduler_leader gauge), false when it does not answer.
func leads(base string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == "herald_scheduler_leader 1" {
			_, _ = io.Copy(io.Discard, resp.Body)
			return true
		}
	}
	return false
}

// TestCronExactlyOnceAcrossThreeProcesses runs three real `herald serve`
// processes on one database and a private broker, with campaigns firing every
// two seconds (one-off) and every minute (cron), and kills the scheduler
// leader with SIGKILL a few seconds before a minute's cron fires: another
// process takes over, every fire of the window is dispatched exactly once,
// and each dispatch reaches a real MQTT subscriber. It logs the fail-over
// time and how late the fires were.
func TestCronExactlyOnceAcrossThreeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for a minute or two: it waits for a minute's cron fires")
	}
	t.Parallel()
	broker := brokertest.Start(t)
	bin := buildHerald(t)
	dbURL := dbtest.New(t)
	vars := map[string]string{"HERALD_DATABASE_URL": dbURL, "HERALD_MQTT_URL": broker.URL, "HERALD_TOPIC_PREFIX": randomPrefix(),
		"HERALD_DISPATCH_LEASE": "2s"}
	type proc struct {
		base  string
		kill  func()
		alive bool
	}
	procs := make([]*proc, 3)
	for i := range procs {
		base, cmd := startHeraldProcess(t, bin, vars)
		procs[i] = &proc{base: base, alive: true, kill: func() {
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			_ = cmd.Wait()
		}}
	}
	h := &herald{t: t, base: procs[0].base, prefix: vars["HERALD_TOPIC_PREFIX"], broker: broker.URL, key: adminKey(t, dbURL)}
	h.createGame()
	online := subscribe(t, broker.URL, h.prefix+"/g1/all/#")
	leader := func() *proc {
		for _, p := range procs {
			if p.alive && leads(p.base) {
				return p
			}
		}
		return nil
	}
	waitFor(t, "a leader", patience, func() bool { return leader() != nil })

	// The kill comes 4 s before the first minute at least 15 s away; one-off
	// campaigns fire every 2 s from 5 s on to 10 s after that minute, and six
	// cron campaigns every minute.
	start := time.Now()
	minute := start.Add(15 * time.Second).Truncate(time.Minute).Add(time.Minute)
	if minute.Sub(start) >= 75*time.Second {
		minute = minute.Add(-time.Minute)
	}
	killAt, end := minute.Add(-4*time.Second), minute.Add(10*time.Second)
	body := func(name string) map[string]any {
		return map[string]any{"kind": "notice", "name": name, "audience": map[string]any{"rule": map[string]any{"everyone": true}},
			"content": map[string]any{"title": map[string]any{"en": name}, "body": map[string]any{"en": "b"}}, "ttl": "10m"}
	}
	var oneOff, crons []string
	first := map[string]time.Time{} // each cron campaign's first fire
	for at := start.Add(5 * time.Second); !at.After(end); at = at.Add(2 * time.Second) {
		b := body("at " + at.Format(time.TimeOnly))
		b["schedule"] = map[string]any{"at": at}
		oneOff = append(oneOff, h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", b)["id"].(string))
	}
	for i := range 6 {
		b := body(fmt.Sprintf("cron %d", i))
		b["schedule"] = map[string]any{"cron": "* * * * *", "timezone": "UTC"}
		c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", b)
		at, err := time.Parse(time.RFC3339, c["send_at"].(string))
		require.NoError(t, err)
		crons, first[c["id"].(string)] = append(crons, c["id"].(string)), at
	}

	sleepUntil(killAt)
	old := leader()
	require.NotNil(t, old, "a leader before the kill")
	old.kill()
	old.alive = false
	killed := time.Now()
	var next *proc
	waitFor(t, "a new leader", patience, func() bool { next = leader(); return next != nil })
	failover := time.Since(killed)
	t.Logf("fail-over: a new leader %v after the SIGKILL", failover.Round(time.Millisecond))
	h.base = next.base

	// Every fire of the window: each one-off campaign once, each cron
	// campaign at each minute from its creation to the last one in the window.
	sleepUntil(end)
	fires := 0
	for _, id := range oneOff {
		waitFor(t, "the one-off campaign's dispatch published", patience, func() bool {
			ds := h.dispatches("g1", id)
			return len(ds) == 1 && ds[0]["state"] == "published"
		})
		fires++
	}
	for _, id := range crons {
		var minutes []time.Time
		for m := first[id]; !m.After(end); m = m.Add(time.Minute) {
			minutes = append(minutes, m)
		}
		require.NotEmpty(t, minutes)
		waitFor(t, "the cron campaign's dispatches", patience, func() bool {
			ds := h.dispatches("g1", id)
			if len(ds) < len(minutes) {
				return false
			}
			last := ds[len(minutes)-1]["state"]
			return last == "published" || last == "replaced"
		})
		ds := h.dispatches("g1", id)
		for i, m := range minutes {
			at, err := time.Parse(time.RFC3339, ds[i]["fire_at"].(string))
			require.NoError(t, err)
			require.True(t, m.Equal(at), "campaign %s fired at %v, want %v", id, at, m)
			require.Contains(t, []any{"published", "replaced"}, ds[i]["state"], "sent, not missed: %v", ds[i])
			fires++
		}
	}
	// Once per dispatch in Postgres (the unique fire key), and each reaches
	// the subscriber (a publish cut off by the kill may be sent again: clients
	// de-duplicate on the id).
	got := map[string]int{}
	waitFor(t, "every dispatch at the subscriber", patience, func() bool {
		clear(got)
		for _, m := range online.messages() {
			if id := envelopeID(m.Payload); id != "" {
				got[id]++
			}
		}
		return len(got) >= fires
	})
	var dispatches, duplicates int
	lateness := firesLateness(t, dbURL)
	for id, n := range got {
		require.Contains(t, lateness, id, "an envelope of a dispatch that is not recorded")
		if n > 1 {
			duplicates++
		}
	}
	require.NoError(t, queryOne(dbURL, `SELECT count(*) FROM dispatches`, &dispatches))
	require.Equal(t, fires, dispatches, "exactly one dispatch per fire")
	var worst time.Duration
	for _, l := range lateness {
		worst = max(worst, l)
	}
	t.Logf("%d fires (%d one-off, %d cron) over %v, each dispatched once; %d envelopes delivered twice after the kill; latest fire %v after its time",
		fires, len(oneOff), fires-len(oneOff), end.Sub(start).Round(time.Second), duplicates, worst.Round(time.Millisecond))
}

// envelopeID reads the id of an envelope ("" for a removal or anything else).
func envelopeID(payload []byte) string {
	_, rest, ok := strings.Cut(string(payload), `"id":"`)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

// firesLateness returns, per dispatch id, how late its fire was recorded
// (created_at - fire_at).
func firesLateness(t *testing.T, dbURL string) map[string]time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT id::text, extract(epoch FROM created_at - fire_at)::float8 FROM dispatches`)
	out := map[string]time.Duration{}
	var id string
	var late float64
	_, err = pgx.ForEachRow(rows, []any{&id, &late}, func() error { out[id] = time.Duration(late * float64(time.Second)); return nil })
	require.NoError(t, err)
	return out
}

// queryOne scans one value from the database at dbURL.
func queryOne(dbURL, sql string, dest any) error {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql).Scan(dest)
}
