package migrations_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/migrations"
)

// TestDispatchEnvelopeBackfill: a dispatch recorded before migration 5 gets its
// envelope template from its campaign, and migrating down and up again keeps
// the schema working.
func TestDispatchEnvelopeBackfill(t *testing.T) {
	t.Parallel()
	url, conn := beforeMigration(t, 5)
	ctx := context.Background()
	campaign, dispatch := uuid.New(), uuid.New()
	startsAt := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	_, err := conn.Exec(ctx, `
		INSERT INTO campaigns (id, game_id, kind, name, rule, content, priority, starts_at, expires_at, send_at,
			status, plan_exact, plan_topics, plan_players)
		VALUES ($1, 'g1', 'notice', 'n', '{"everyone":true}', '{"title":{"en":"t"},"body":{"en":"b"}}', 7, $2,
			$2::timestamptz + interval '1 day', $2, 'live', true, 1, 0)`, campaign, startsAt)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `
		INSERT INTO dispatches (id, campaign_id, fire_at, state, expires_at, targets, topics_total)
		VALUES ($1, $2, $3, 'published', $3::timestamptz + interval '1 day', '[{"scope":"all"}]', 1)`,
		dispatch, campaign, startsAt)
	require.NoError(t, err)

	require.NoError(t, migrations.Up(context.Background(), url, 30*time.Second))
	var (
		kind, game, msg, content string
		priority                 int
		starts                   time.Time
		retain                   bool
	)
	require.NoError(t, conn.QueryRow(ctx, `
		SELECT kind, game_id, msg, content::text, priority, starts_at, retain FROM dispatches WHERE id = $1`,
		dispatch).Scan(&kind, &game, &msg, &content, &priority, &starts, &retain))
	require.Equal(t, "notice", kind)
	require.Equal(t, "g1", game)
	require.Equal(t, campaign.String(), msg)
	require.JSONEq(t, `{"title":{"en":"t"},"body":{"en":"b"}}`, content)
	require.Equal(t, 7, priority)
	require.True(t, starts.Equal(startsAt))
	require.True(t, retain, "every campaign's messages are retained")
}

// beforeMigration gives a new database migrated down to just before version,
// with game g1, and a connection to it.
func beforeMigration(t *testing.T, version uint) (string, *pgx.Conn) {
	t.Helper()
	url := dbtest.New(t)
	downBelow(t, url, version)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, `INSERT INTO games (id, name, default_locale) VALUES ('g1', 'g1', 'en')`)
	require.NoError(t, err)
	return url, conn
}

// downBelow reverts migrations until the schema is older than version.
func downBelow(t *testing.T, url string, version uint) {
	t.Helper()
	for {
		v, dirty, err := migrations.Version(context.Background(), url, 30*time.Second)
		require.NoError(t, err)
		require.False(t, dirty)
		if v < version {
			return
		}
		require.NoError(t, migrations.Down(context.Background(), url, 30*time.Second))
	}
}
