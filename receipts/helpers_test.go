package receipts

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/heraldpush/herald/internal/dbtest"
)

// patience is how long a test waits for something that takes a moment on an
// idle machine; generous, because the suite runs on loaded 2-core machines.
const patience = 60 * time.Second

// TestMain checks that no goroutine outlives the tests, and drops the
// template database the tests' databases are cloned from.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(dbtest.WithTemplate(m), goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"))
}

func testLog() *slog.Logger {
	if os.Getenv("HERALD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// idAt is a UUIDv7 made at t: a send id of t's day.
func idAt(t testing.TB, at time.Time) uuid.UUID {
	t.Helper()
	id, err := uuid.NewV7()
	require.NoError(t, err)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(at.UnixMilli()))
	copy(id[:6], b[2:])
	return id
}

// newCampaign records a live notice campaign of game (and the game, if new)
// and returns its id.
func newCampaign(t testing.TB, db *pgxpool.Pool, game string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	_, err := db.Exec(ctx, `INSERT INTO games (id, name, default_locale) VALUES ($1, $1, 'en') ON CONFLICT DO NOTHING`, game)
	require.NoError(t, err)
	id := idAt(t, time.Now())
	_, err = db.Exec(ctx, `
		INSERT INTO campaigns (id, game_id, kind, name, rule, content, priority, expires_at, send_at, status,
			plan_exact, plan_topics, plan_players)
		VALUES ($1, $2, 'notice', 'test', '{"everyone": true}', '{}', 5, now() + interval '1 day', now(), 'live', true, 1, 0)`,
		id, game)
	require.NoError(t, err)
	return id
}

// newDispatch records a dispatch of campaign whose id was made, and whose
// fan-out started, at sentAt; it returns the dispatch id.
func newDispatch(t testing.TB, db *pgxpool.Pool, campaign uuid.UUID, sentAt time.Time) uuid.UUID {
	t.Helper()
	id := idAt(t, sentAt)
	_, err := db.Exec(context.Background(), `
		INSERT INTO dispatches (id, campaign_id, fire_at, state, sent_at, expires_at, targets,
			kind, game_id, msg, content, priority, retain)
		SELECT $1, c.id, $3::timestamptz, 'published', $3, $3::timestamptz + interval '1 day', '[]',
			c.kind, c.game_id, c.id::text, c.content, c.priority, true
		FROM campaigns c WHERE c.id = $2`, id, campaign, sentAt)
	require.NoError(t, err)
	return id
}

// newSend is a dispatch of a new campaign of game, sent at sentAt.
func newSend(t testing.TB, db *pgxpool.Pool, game string, sentAt time.Time) uuid.UUID {
	t.Helper()
	return newDispatch(t, db, newCampaign(t, db, game), sentAt)
}

// topic is the receipts topic of player in game under prefix "herald".
func topic(game, player string) string {
	return "herald/" + game + "/receipts/" + player
}

func payload(id uuid.UUID, event string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"id":%q,"e":%q,"t":%d}`, id, event, at.UnixMilli())
}

// startIngester starts an Ingester on a new Store of db, stopped when the test ends.
func startIngester(t testing.TB, db *pgxpool.Pool, cfg Config) (*Store, *Ingester) {
	t.Helper()
	s := NewStore(db, 0)
	if cfg.Prefix == "" {
		cfg.Prefix = "herald"
	}
	if cfg.Log == nil {
		cfg.Log = testLog()
	}
	in := s.NewIngester(cfg)
	in.Start(context.Background())
	t.Cleanup(in.Stop)
	return s, in
}

// waitProgress polls cond until it holds, failing only when progress (a count
// that grows while work is under way) has not changed for patience.
func waitProgress(t testing.TB, what string, cond func() bool, progress func() int64) {
	t.Helper()
	last, deadline := progress(), time.Now().Add(patience)
	for !cond() {
		if n := progress(); n != last {
			last, deadline = n, time.Now().Add(patience)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: nothing changed for %s", what, patience)
		}
		time.Sleep(time.Millisecond) // short: the benchmarks time what they wait for
	}
}

// settled is the progress of an Ingester: what it has received and finished.
func settled(in *Ingester) int64 {
	c := in.Counters()
	return c.Stored + c.Duplicates + c.Malformed + c.UnknownSend + c.OtherGame + c.Expired + c.Failed
}

// waitSettled waits until the Ingester has finished with n receipts.
func waitSettled(t testing.TB, in *Ingester, n int64) {
	t.Helper()
	waitProgress(t, fmt.Sprintf("%d receipts settled", n), func() bool { return settled(in) >= n },
		func() int64 { return settled(in) })
}

// count returns the stored receipts matching where (SQL over receipts).
func count(t testing.TB, db *pgxpool.Pool, where string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM receipts WHERE `+where, args...).Scan(&n))
	return n
}
