package migrations_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/migrations"
	"github.com/heraldpush/herald/segments"
)

// TestMemberChunksKeepLists: member lists stored a row per member before
// migration 15 read back whole and in order from their chunks after it, and
// migrating down gives the rows back.
func TestMemberChunksKeepLists(t *testing.T) {
	t.Parallel()
	url, conn := beforeMigration(t, 15)
	ctx := context.Background()
	seg := uuid.New()
	_, err := conn.Exec(ctx, `INSERT INTO segments (id, game_id, name, rule) VALUES ($1, 'g1', 's', '{"members":true}')`, seg)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `INSERT INTO member_lists (id, segment_id) VALUES (1, $1), (2, $1)`, seg)
	require.NoError(t, err)
	var long []string // more than one chunk
	for i := range 250 {
		long = append(long, fmt.Sprintf("p%d", i))
	}
	slices.Sort(long)
	short := []string{"B", "a", "a-b", "ab"} // in byte order
	_, err = conn.Exec(ctx, `
		INSERT INTO segment_members (list_id, player_id)
		SELECT 1, unnest($1::text[]) UNION ALL SELECT 2, unnest($2::text[])`, long, short)
	require.NoError(t, err)

	require.NoError(t, migrations.Up(ctx, url, 30*time.Second))
	for list, want := range map[int64][]string{1: long, 2: short} {
		got, err := segments.Members(ctx, conn, list, "", 1000)
		require.NoError(t, err)
		require.Equal(t, want, got, "list %d", list)
		got, err = segments.Members(ctx, conn, list, want[1], 2)
		require.NoError(t, err)
		require.Equal(t, want[2:4], got, "list %d resumed", list)
	}

	downBelow(t, url, 15)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM segment_members`).Scan(&n))
	require.Equal(t, len(long)+len(short), n)
	require.NoError(t, migrations.Up(ctx, url, 30*time.Second))
}
