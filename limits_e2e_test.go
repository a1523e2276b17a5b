package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
)

// answer is an HTTP response as a test looks at it, with how long it took.
type answer struct {
	status int
	header http.Header
	body   string
	took   time.Duration
	err    error
}

// try sends a request with a raw body ("" for none) and returns whatever
// comes back. Its client gives up after 30 s: a request still unanswered then
// hangs, which is what these tests are about.
func (h *herald) try(method, path, body string) answer {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	require.NoError(h.t, err)
	req.Header.Set("Authorization", "Bearer "+h.key)
	start := time.Now()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return answer{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(raw), took: time.Since(start), err: err}
}

// requireRetryLater checks that a answered 503 as a problem with Retry-After.
func requireRetryLater(t *testing.T, a answer, what string) {
	t.Helper()
	require.NoError(t, a.err, "%s: no answer after %s", what, a.took)
	require.Equal(t, http.StatusServiceUnavailable, a.status, "%s: %s", what, a.body)
	require.Equal(t, "application/problem+json", a.header.Get("Content-Type"), what)
	require.NotEmpty(t, a.header.Get("Retry-After"), "%s: 503 says when to retry", what)
}

// slowUpload is a member upload whose client sends one line every interval
// until it is told to finish; its answer goes to done.
type slowUpload struct {
	finish func()
	done   chan<- answer
}

// startSlowUpload starts a slow upload to segment of g1; done must have room
// for its answer.
func (h *herald) startSlowUpload(segment string, every time.Duration, done chan<- answer) *slowUpload {
	h.t.Helper()
	pr, pw := io.Pipe()
	stop := make(chan struct{})
	u := &slowUpload{finish: sync.OnceFunc(func() { close(stop) }), done: done}
	h.t.Cleanup(u.finish) // before the server stops: it waits for the request
	go func() {
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(pw, "slow-%d\n", i); err != nil {
				return
			}
			select {
			case <-stop:
				pw.Close()
				return
			case <-time.After(every):
			}
		}
	}()
	go func() {
		req, _ := http.NewRequest("PUT", h.base+"/v1/games/g1/segments/"+segment+"/members", pr)
		req.Header.Set("Authorization", "Bearer "+h.key)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			u.done <- answer{err: err}
			return
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		u.done <- answer{status: resp.StatusCode, header: resp.Header, body: string(raw), took: time.Since(start)}
	}()
	return u
}

// uploadsStreaming counts the member uploads copying into the database at url.
func uploadsStreaming(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `
		SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state = 'active' AND query ILIKE 'copy%member_chunks%'`).Scan(&n))
	return n
}

func (h *herald) memberSegment(game string) string {
	h.t.Helper()
	seg := h.call(http.StatusCreated, "POST", "/v1/games/"+game+"/segments", map[string]any{"name": "list", "rule": map[string]any{"members": true}})
	return seg["id"].(string)
}

// TestSlowUploadDelaysNoSend runs the scenario: while a member upload
// trickles in one line a second, a scheduled fire and an expiry of another
// game, and a fire to the very segment being uploaded, all happen within a
// second of their time, as a real subscriber sees.
func TestSlowUploadDelaysNoSend(t *testing.T) {
	t.Parallel()
	broker := brokertest.Start(t)
	dbURL := dbtest.New(t)
	h := startHeraldWith(t, map[string]string{"HERALD_DATABASE_URL": dbURL, "HERALD_MQTT_URL": broker.URL,
		"HERALD_TOPIC_PREFIX": "herald", "HERALD_FIRE_GRACE": "3s"})
	h.createGame()
	h.call(http.StatusCreated, "POST", "/v1/games", map[string]any{"id": "g2", "name": "Other", "default_locale": "en"})
	seg := h.memberSegment("g1")
	h.call(http.StatusOK, "PUT", "/v1/games/g1/segments/"+seg+"/members", "p1\np2\n")
	online := subscribe(t, broker.URL, "herald/g1/#", "herald/g2/#")

	uploaded := make(chan answer, 1)
	upload := h.startSlowUpload(seg, time.Second, uploaded)
	waitFor(t, "the upload to stream", 20*time.Second, func() bool { return uploadsStreaming(t, dbURL) == 1 })

	notice := func(game string, audience map[string]any, fields map[string]any) string {
		body := map[string]any{"kind": "notice", "name": "n", "audience": audience,
			"content": map[string]any{"title": map[string]any{"en": "t"}, "body": map[string]any{"en": "b"}}}
		for k, v := range fields {
			body[k] = v
		}
		return h.call(http.StatusCreated, "POST", "/v1/games/"+game+"/campaigns", body)["id"].(string)
	}
	everyone := map[string]any{"rule": map[string]any{"everyone": true}}
	now := time.Now()
	expiring := notice("g2", everyone, map[string]any{"expires_at": now.Add(2500 * time.Millisecond)})
	fireAt := now.Add(2 * time.Second).Truncate(time.Millisecond)
	// The segment's own campaign comes first in the leader's queue: it used to
	// block behind the upload, and every fire after it with it.
	toSegment := notice("g1", map[string]any{"segment_id": seg}, map[string]any{"schedule": map[string]any{"at": fireAt}})
	scheduled := notice("g2", everyone, map[string]any{"schedule": map[string]any{"at": fireAt.Add(time.Millisecond)}})

	seen := map[string]time.Time{} // what the subscriber got, when the test first saw it
	waitFor(t, "the fires and the expiry", 30*time.Second, func() bool {
		for _, m := range online.messages() {
			if strings.HasSuffix(m.Topic, "/descriptor") { // the games' descriptors, not sends
				continue
			}
			key := m.Topic
			if len(m.Payload) == 0 {
				key += " cleared"
			}
			if _, ok := seen[key]; !ok {
				seen[key] = time.Now()
			}
		}
		return len(seen) >= 5 // the expiring notice and its clearing, two fires to two players, one fire
	})
	require.Equal(t, 1, uploadsStreaming(t, dbURL), "the upload is still streaming")

	for _, c := range []struct {
		game, id string
		at       time.Time
	}{{"g1", toSegment, fireAt}, {"g2", scheduled, fireAt.Add(time.Millisecond)}} {
		d := h.dispatchOf(c.game, c.id)
		sentAt, err := time.Parse(time.RFC3339Nano, d["sent_at"].(string))
		require.NoError(t, err)
		t.Logf("campaign %s fired %s after its time (dispatch sent_at); the subscriber saw it %s after", c.id,
			sentAt.Sub(c.at).Round(time.Millisecond), firstSeen(seen, c.id).Sub(c.at).Round(time.Millisecond))
		require.Equal(t, "live", h.call(http.StatusOK, "GET", "/v1/games/"+c.game+"/campaigns/"+c.id, nil)["status"], "sent, not missed")
		require.LessOrEqual(t, sentAt.Sub(c.at), time.Second, "campaign %s fired within a second of its time", c.id)
	}
	waitFor(t, "the expired dispatch to be recorded cleared", 10*time.Second, func() bool { return h.dispatchOf("g2", expiring)["cleared_at"] != nil })
	d := h.dispatchOf("g2", expiring)
	expiresAt, err := time.Parse(time.RFC3339Nano, d["expires_at"].(string))
	require.NoError(t, err)
	clearedAt, err := time.Parse(time.RFC3339Nano, d["cleared_at"].(string))
	require.NoError(t, err)
	t.Logf("expiry cleared %s after expires_at (dispatch cleared_at); the subscriber saw the empty payload %s after",
		clearedAt.Sub(expiresAt).Round(time.Millisecond), seen["herald/g2/all/notice/"+expiring+" cleared"].Sub(expiresAt).Round(time.Millisecond))
	require.LessOrEqual(t, clearedAt.Sub(expiresAt), time.Second, "cleared within a second of expiry")

	upload.finish()
	a := <-uploaded
	require.NoError(t, a.err)
	require.Equal(t, http.StatusOK, a.status, a.body)
}

// dispatchOf returns the one dispatch of campaign id in game.
func (h *herald) dispatchOf(game, id string) map[string]any {
	h.t.Helper()
	ds := h.call(http.StatusOK, "GET", "/v1/games/"+game+"/campaigns/"+id, nil)["dispatches"].([]any)
	require.Len(h.t, ds, 1)
	return ds[0].(map[string]any)
}

// firstSeen is when the first message of campaign id reached the subscriber.
func firstSeen(seen map[string]time.Time, id string) time.Time {
	var first time.Time
	for key, at := range seen {
		if strings.Contains(key, id) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first
}

// TestUploadsBeyondTheLimitAnswer503 starts 20 slow uploads at once, as in the
// issue: the replica streams HERALD_MAX_UPLOADS of them (default 4), answers
// the others 503 with Retry-After at once, and keeps serving other requests.
func TestUploadsBeyondTheLimitAnswer503(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.New(t)
	h := startHeraldWith(t, map[string]string{"HERALD_DATABASE_URL": dbURL, "HERALD_MQTT_URL": brokertest.Start(t).URL, "HERALD_TOPIC_PREFIX": randomPrefix()})
	h.createGame()
	answers := make(chan answer, 20)
	var uploads []*slowUpload
	for range 20 {
		uploads = append(uploads, h.startSlowUpload(h.memberSegment("g1"), time.Second, answers))
	}
	for refused := range 16 {
		select {
		case a := <-answers:
			requireRetryLater(t, a, "an upload over the limit")
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d uploads refused", refused)
		}
	}
	waitFor(t, "the admitted uploads to stream", 20*time.Second, func() bool { return uploadsStreaming(t, dbURL) == 4 })
	a := h.try("GET", "/v1/games", "")
	require.NoError(t, a.err)
	require.Equal(t, http.StatusOK, a.status, "other requests are served meanwhile: %s", a.body)

	for _, u := range uploads {
		u.finish()
	}
	for range 4 {
		a := <-answers
		require.Equal(t, http.StatusOK, a.status, a.body)
	}
	h.call(http.StatusOK, "PUT", "/v1/games/g1/segments/"+h.memberSegment("g1")+"/members", "p1\n") // the slots are free again
}

// TestExhaustedPoolAnswers503 lets member uploads take every pooled
// connection: a request that cannot get one within HERALD_DB_TIMEOUT answers
// 503 with Retry-After instead of hanging, and requests work again once the
// uploads end.
func TestExhaustedPoolAnswers503(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.New(t)
	h := startHeraldWith(t, map[string]string{"HERALD_DATABASE_URL": dbURL + "&pool_max_conns=4",
		"HERALD_MQTT_URL": brokertest.Start(t).URL, "HERALD_TOPIC_PREFIX": randomPrefix(), "HERALD_DB_TIMEOUT": "1s", "HERALD_MAX_UPLOADS": "10"})
	h.createGame()
	// The scheduler leader holds one connection: three uploads take the rest.
	answers := make(chan answer, 3)
	var uploads []*slowUpload
	for range 3 {
		uploads = append(uploads, h.startSlowUpload(h.memberSegment("g1"), time.Second, answers))
	}
	waitFor(t, "three uploads to stream", 20*time.Second, func() bool { return uploadsStreaming(t, dbURL) == 3 })
	a := h.try("GET", "/v1/games", "")
	requireRetryLater(t, a, "a request with no connection to be had")
	t.Logf("GET /v1/games answered 503 after %s with the pool exhausted", a.took.Round(time.Millisecond))

	for _, u := range uploads {
		u.finish()
	}
	for range uploads {
		a := <-answers
		require.Equal(t, http.StatusOK, a.status, a.body)
	}
	h.call(http.StatusOK, "GET", "/v1/games", nil)
}
