package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/api"
	"github.com/heraldpush/herald/auth"
)

// answer is a raw HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var out map[string]any
	require.NoError(t, json.Unmarshal(a.body, &out), "%s", a.body)
	return out
}

// send posts body to path with an Idempotency-Key (none if key is nil).
func (s *testServer) send(path string, key *string, body any) answer {
	s.t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(s.t, err)
	req, err := http.NewRequest("POST", s.url+path, bytes.NewReader(raw))
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+s.key)
	if key != nil {
		req.Header.Set("Idempotency-Key", *key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: out}
}

func ptr(s string) *string { return &s }

// count returns how many rows of table the test database holds.
func (s *testServer) count(table string) int {
	s.t.Helper()
	var n int
	require.NoError(s.t, s.db.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n))
	return n
}

func TestIdempotencyKeyReplaysTheFirstAnswer(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	key := ptr("create g1 #1")
	game := map[string]any{"id": "g1", "name": "Game", "default_locale": "en"}

	first := s.send("/v1/games", key, game)
	require.Equal(t, http.StatusCreated, first.status, "%s", first.body)
	require.Empty(t, first.header.Get("Idempotent-Replayed"))
	again := s.send("/v1/games", key, game)
	require.Equal(t, http.StatusCreated, again.status, "the first answer, not 409 for a game that exists")
	require.Equal(t, first.body, again.body)
	require.Equal(t, first.header.Get("Location"), again.header.Get("Location"))
	require.Equal(t, "application/json", again.header.Get("Content-Type"))
	require.Equal(t, "true", again.header.Get("Idempotent-Replayed"))

	other := s.send("/v1/games", key, map[string]any{"id": "g2", "name": "Game", "default_locale": "en"})
	require.Equal(t, http.StatusUnprocessableEntity, other.status)
	require.Equal(t, []string{"Idempotency-Key"}, fields(other.json(t)), "the same key with a different body")
	s.must(http.StatusNotFound, "GET", "/v1/games/g2", nil)
	require.Equal(t, http.StatusUnprocessableEntity, s.send("/v1/games/g1/segments", key, game).status, "nor on another path")

	// Keys belong to the API key that sent them: another key's same key is its own.
	s.as(s.newKey(auth.Input{Name: "other admin", Role: auth.RoleAdmin})).must(http.StatusConflict, "POST", "/v1/games", game)

	// A refusal is an answer too: the retry gets it again, even once the cause is gone.
	seg := map[string]any{"name": "eu", "rule": map[string]any{"tag": "region", "in": []string{"eu"}}}
	refused := s.send("/v1/games/g1/segments", ptr("seg"), seg)
	require.Equal(t, http.StatusUnprocessableEntity, refused.status, "%s", refused.body)
	s.must(http.StatusOK, "PATCH", "/v1/games/g1", map[string]any{"tags": map[string]any{"region": map[string]any{"values": []string{"eu"}}}})
	replayed := s.send("/v1/games/g1/segments", ptr("seg"), seg)
	require.Equal(t, http.StatusUnprocessableEntity, replayed.status)
	require.Equal(t, refused.body, replayed.body)
	require.Equal(t, http.StatusCreated, s.send("/v1/games/g1/segments", ptr("seg 2"), seg).status)
}

func TestIdempotencyKeyOfCampaignsAndDryRuns(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	key := ptr("campaign-7f3a")
	first := s.send("/v1/games/g1/campaigns", key, notice(nil))
	require.Equal(t, http.StatusCreated, first.status, "%s", first.body)
	again := s.send("/v1/games/g1/campaigns", key, notice(nil))
	require.Equal(t, first.body, again.body)
	require.Equal(t, 1, s.count("campaigns"), "sent once")

	// A dry run creates nothing and ignores the key: it is neither taken nor checked.
	dry := s.send("/v1/games/g1/campaigns?dry_run=true", ptr("dry"), notice(nil))
	require.Equal(t, http.StatusOK, dry.status)
	require.Equal(t, http.StatusCreated, s.send("/v1/games/g1/campaigns", ptr("dry"), notice(nil)).status)
	require.Equal(t, http.StatusOK, s.send("/v1/games/g1/campaigns?dry_run=true", key, notice(nil)).status)
}

func TestIdempotencyKeyConcurrentRetriesDoTheWorkOnce(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	const n = 12
	answers := make([]answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i] = s.send("/v1/games/g1/campaigns", ptr("same"), notice(nil))
		})
	}
	close(start)
	wg.Wait()
	replays := 0
	for _, a := range answers {
		require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
		require.Equal(t, answers[0].json(t)["id"], a.json(t)["id"])
		if a.header.Get("Idempotent-Replayed") == "true" {
			replays++
		}
	}
	require.Equal(t, n-1, replays, "one request did the work, the others got its answer")
	require.Equal(t, 1, s.count("campaigns"))
}

func TestIdempotencyKeysExpireAfter24Hours(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	first := s.send("/v1/games/g1/campaigns", ptr("k"), notice(nil)).json(t)
	_, err := s.db.Exec(context.Background(), `UPDATE idempotency_keys SET created_at = created_at - interval '24 hours',
		expires_at = expires_at - interval '24 hours'`)
	require.NoError(t, err)
	later := s.send("/v1/games/g1/campaigns", ptr("k"), notice(nil))
	require.Equal(t, http.StatusCreated, later.status)
	require.Empty(t, later.header.Get("Idempotent-Replayed"))
	require.NotEqual(t, first["id"], later.json(t)["id"], "an expired key does the work again")
	require.Equal(t, 2, s.count("campaigns"))
}

func TestIdempotencyKeyMustBePrintableASCII(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	for _, key := range []string{"", strings.Repeat("k", 256), "clé"} {
		a := s.send("/v1/games", ptr(key), map[string]any{"id": "g1", "name": "Game", "default_locale": "en"})
		require.Equal(t, http.StatusBadRequest, a.status, "%q", key)
		require.Equal(t, []string{"Idempotency-Key"}, fields(a.json(t)))
	}
	require.Equal(t, http.StatusCreated, s.send("/v1/games", ptr(strings.Repeat("k", 255)),
		map[string]any{"id": "g1", "name": "Game", "default_locale": "en"}).status)
}

// TestAPIKeyCreationIsNotReplayed: the answer that carries a key's secret is
// not stored, so a retry learns which key was created, not its secret.
func TestAPIKeyCreationIsNotReplayed(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	in := map[string]any{"name": "ci", "role": "service"}
	first := s.send("/v1/api-keys", ptr("key-1"), in)
	require.Equal(t, http.StatusCreated, first.status)
	created := first.json(t)
	secret := created["secret"].(string)

	again := s.send("/v1/api-keys", ptr("key-1"), in)
	require.Equal(t, http.StatusConflict, again.status, "%s", again.body)
	problem := again.json(t)
	require.Equal(t, []string{"Idempotency-Key"}, fields(problem))
	require.Equal(t, created["id"], problem["created"].(map[string]any)["id"])
	require.NotContains(t, problem["created"], "secret")
	require.NotContains(t, string(again.body), secret[len(secret)-43:])
	var stored int
	require.NoError(t, s.db.QueryRow(context.Background(),
		`SELECT count(*) FROM idempotency_keys WHERE position($1::bytea IN body) > 0`, []byte(secret[len(secret)-43:])).Scan(&stored))
	require.Zero(t, stored, "the secret is not kept")
	require.Equal(t, 2, s.count("api_keys"), "the test's admin key and the one created")
}

// TestIdempotencyKeyOfAFailedRequestIsFree: a 503 (the database took too
// long) is not kept, so the retry does the work.
func TestIdempotencyKeyOfAFailedRequestIsFree(t *testing.T) {
	t.Parallel()
	s := newTestServerWith(t, brokerURL(), 1000, 2000, nil, func(c *api.Config) { c.DBTimeout = time.Second })
	s.createGame("g1")
	tx, err := s.db.Begin(context.Background())
	require.NoError(t, err)
	_, err = tx.Exec(context.Background(), `SELECT 1 FROM games WHERE id = 'g1' FOR UPDATE`) // a segment's creation waits for it
	require.NoError(t, err)
	seg := map[string]any{"name": "eu", "rule": map[string]any{"tag": "region", "in": []string{"eu"}}}
	failed := s.send("/v1/games/g1/segments", ptr("k"), seg)
	require.NoError(t, tx.Rollback(context.Background()))
	require.Equal(t, http.StatusServiceUnavailable, failed.status, "%s", failed.body)

	retried := s.send("/v1/games/g1/segments", ptr("k"), seg)
	require.Equal(t, http.StatusCreated, retried.status, "%s", retried.body)
	require.Empty(t, retried.header.Get("Idempotent-Replayed"))
	require.Equal(t, 1, s.count("segments"))
}
