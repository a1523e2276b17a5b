package migrations_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/migrations"
)

// TestOperatorMigration: migration 13 turns a campaign whose only fire was
// missed from completed into missed, stops calling an uncounted audience 0
// players, and migrating down and up again keeps the schema working.
func TestOperatorMigration(t *testing.T) {
	t.Parallel()
	url, conn := beforeMigration(t, 13)
	ctx := context.Background()
	missed, members := uuid.New(), uuid.New()
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	insert := func(id uuid.UUID, status string, players int) {
		_, err := conn.Exec(ctx, `
			INSERT INTO campaigns (id, game_id, kind, name, rule, content, priority, expires_at, send_at,
				status, plan_exact, plan_topics, plan_players)
			VALUES ($1, 'g1', 'notice', 'n', '{"everyone":true}', '{"title":{"en":"t"},"body":{"en":"b"}}', 5,
				$2::timestamptz + interval '1 day', $2, $3, true, 1, $4)`, id, at, status, players)
		require.NoError(t, err)
	}
	insert(missed, "completed", 0)
	insert(members, "live", 42)
	_, err := conn.Exec(ctx, `
		INSERT INTO dispatches (id, campaign_id, fire_at, state, expires_at, targets, kind, game_id, msg, content,
			priority, retain)
		VALUES ($1, $2, $3, 'missed', $3::timestamptz + interval '1 day', '[{"scope":"all"}]', 'notice', 'g1',
			$4, '{}', 5, true)`, uuid.New(), missed, at, missed.String())
	require.NoError(t, err)

	require.NoError(t, migrations.Up(ctx, url, 30*time.Second))
	read := func(id uuid.UUID) (status string, players *int64, note *string) {
		require.NoError(t, conn.QueryRow(ctx, `SELECT status, plan_players, plan_players_note FROM campaigns WHERE id = $1`,
			id).Scan(&status, &players, &note))
		return
	}
	status, players, note := read(missed)
	require.Equal(t, "missed", status)
	require.Nil(t, players, "an everyone audience was never counted")
	require.NotNil(t, note)
	status, players, note = read(members)
	require.Equal(t, "live", status)
	require.EqualValues(t, 42, *players)
	require.Nil(t, note)

	downBelow(t, url, 13)
	require.NoError(t, conn.QueryRow(ctx, `SELECT status FROM campaigns WHERE id = $1`, missed).Scan(&status))
	require.Equal(t, "completed", status, "down gives back what the older version knows")
	require.NoError(t, migrations.Up(ctx, url, 30*time.Second))
}
