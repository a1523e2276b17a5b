package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/pgtest"
)

// TestPostgresOutageAnswers503AndRecovers runs Herald on a private Postgres
// that it stops, then freezes (SIGSTOP). Meanwhile every kind of /v1 call
// answers 503 with Retry-After (its client gives up after 30 s: a hang fails),
// /readyz says why, a member upload under way fails with 503 and leaves the
// previous list, and once Postgres is back Herald serves again by itself and
// sends the campaign that came due during the outage.
func TestPostgresOutageAnswers503AndRecovers(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	broker := brokertest.Start(t)
	h := startHeraldWith(t, map[string]string{"HERALD_DATABASE_URL": pg.URL, "HERALD_MQTT_URL": broker.URL,
		"HERALD_TOPIC_PREFIX": "herald", "HERALD_DB_TIMEOUT": "2s"})
	h.createGame()
	seg := h.memberSegment("g1")
	online := subscribe(t, broker.URL, "herald/g1/#")
	notice := func(name string) string {
		return fmt.Sprintf(`{"kind":"notice","name":%q,"audience":{"rule":{"everyone":true}},
			"content":{"title":{"en":"t"},"body":{"en":"b"}}}`, name)
	}
	calls := []struct{ method, path, body string }{
		{"GET", "/v1/games", ""},
		{"GET", "/v1/games/g1", ""},
		{"POST", "/v1/games/g1/campaigns", notice("during the outage")},
		{"PATCH", "/v1/games/g1/segments/" + seg, `{"name":"renamed"}`},
		{"PUT", "/v1/games/g1/segments/" + seg + "/members", "p1\np2\n"},
		{"GET", "/v1/audit", ""},
	}

	for _, fault := range []struct {
		name        string
		start, stop func()
	}{
		{"stopped", pg.Stop, pg.Start},
		{"frozen", pg.Freeze, pg.Thaw},
	} {
		at := time.Now().Add(2 * time.Second)
		due := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
			"kind": "notice", "name": "due while " + fault.name, "audience": map[string]any{"rule": map[string]any{"everyone": true}},
			"content":  map[string]any{"title": map[string]any{"en": "t"}, "body": map[string]any{"en": "b"}},
			"schedule": map[string]any{"at": at},
		})["id"].(string)

		uploaded := make(chan answer, 1)
		upload := h.startSlowUpload(seg, 200*time.Millisecond, uploaded)
		waitFor(t, "the upload to stream", 20*time.Second, func() bool { return uploadsStreaming(t, pg.URL) == 1 })

		fault.start()
		upload.finish()
		a := <-uploaded
		requireRetryLater(t, a, fault.name+": the upload under way")
		t.Logf("postgres %s: the upload under way answered 503 %s after it began", fault.name, a.took.Round(time.Millisecond))
		for _, c := range calls {
			a := h.try(c.method, c.path, c.body)
			requireRetryLater(t, a, fault.name+": "+c.method+" "+c.path)
			t.Logf("postgres %s: %s %s answered 503 after %s", fault.name, c.method, c.path, a.took.Round(time.Millisecond))
		}
		ready := h.try("GET", "/readyz", "")
		require.Equal(t, http.StatusServiceUnavailable, ready.status)
		require.Contains(t, ready.body, "postgres")
		sleepUntil(at.Add(500 * time.Millisecond)) // the campaign comes due during the outage

		fault.stop()
		back := time.Now()
		waitFor(t, "Herald to serve again", 60*time.Second, func() bool { return h.try("GET", "/v1/games", "").status == http.StatusOK })
		t.Logf("postgres %s: Herald served again %s after Postgres came back", fault.name, time.Since(back).Round(time.Millisecond))
		waitFor(t, "the campaign that came due during the outage", 60*time.Second, func() bool {
			for _, m := range online.messages() {
				if m.Topic == "herald/g1/all/notice/"+due {
					return true
				}
			}
			return false
		})
		t.Logf("postgres %s: the campaign due during the outage went out %s after Postgres came back", fault.name, time.Since(back).Round(time.Millisecond))
		require.Equal(t, "live", h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+due, nil)["status"], "sent late, not missed")
		h.call(http.StatusOK, "GET", "/readyz", nil)
		require.EqualValues(t, 0, h.call(http.StatusOK, "GET", "/v1/games/g1/segments/"+seg, nil)["member_count"],
			"the failed upload left the previous (empty) list")
	}
}
