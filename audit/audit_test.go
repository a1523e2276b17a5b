package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/internal/dbtest"
)

// TestRecordNeedsAnActorAndCommitsWithTheChange: a change nobody answers for is
// refused, and an entry exists exactly when its transaction commits.
func TestRecordNeedsAnActorAndCommitsWithTheChange(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	store := audit.NewStore(pool)
	entry := audit.Entry{Action: "game.create", Game: "g1", ObjectType: "game", ObjectID: "g1", Detail: map[string]int{"n": 1}}

	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		return audit.Record(context.Background(), tx, entry)
	})
	require.ErrorIs(t, err, audit.ErrNoActor)

	keyID := uuid.New()
	ctx := audit.WithActor(context.Background(), audit.Actor{KeyID: &keyID, Name: "ops"})
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, audit.Record(ctx, tx, entry))
	require.NoError(t, tx.Rollback(ctx))
	rows, _, err := store.List(ctx, audit.Query{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, rows, "rolled back with its change")

	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return audit.Record(ctx, tx, entry) }))
	rows, more, err := store.List(ctx, audit.Query{Limit: 10})
	require.NoError(t, err)
	require.False(t, more)
	require.Len(t, rows, 1)
	r := rows[0]
	require.Equal(t, &keyID, r.KeyID)
	require.Equal(t, "ops", r.KeyName)
	require.Equal(t, "game.create", r.Action)
	require.Equal(t, "g1", *r.Game)
	require.Equal(t, map[string]any{"n": 1.0}, r.Detail)
}

// TestListFilters: by game, by time, in pages, and within the games of a key
// limited to some: their rows, and the rows about keys limited to some of them.
func TestListFilters(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	store := audit.NewStore(pool)
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "test"})
	record := func(game string) {
		require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return audit.Record(ctx, tx, audit.Entry{Action: "segment.create", Game: game, ObjectType: "segment", ObjectID: uuid.NewString()})
		}))
	}
	record("g1")
	record("g2")
	record("g1")
	keys := auth.NewStore(pool)
	_, _, err := keys.Create(ctx, auth.Input{Name: "g1 key", Role: auth.RoleOperator, Games: []string{"g1"}})
	require.NoError(t, err)
	_, _, err = keys.Create(ctx, auth.Input{Name: "every game", Role: auth.RoleOperator})
	require.NoError(t, err)

	list := func(q audit.Query) []audit.Row {
		if q.Limit == 0 {
			q.Limit = 100
		}
		rows, _, err := store.List(ctx, q)
		require.NoError(t, err)
		return rows
	}
	require.Len(t, list(audit.Query{}), 5)
	require.Len(t, list(audit.Query{Game: "g1"}), 2)
	require.Len(t, list(audit.Query{Since: time.Now().Add(time.Hour)}), 0)
	within := list(audit.Query{Within: []string{"g1"}})
	require.Len(t, within, 3, "g1's rows and the g1 key's creation, not g2's nor the key for every game")
	require.Equal(t, "api_key.create", within[2].Action)

	first, more, err := store.List(ctx, audit.Query{Limit: 2})
	require.NoError(t, err)
	require.True(t, more)
	rest := list(audit.Query{After: first[1].ID})
	require.Len(t, rest, 3)
	require.Greater(t, rest[0].ID, first[1].ID)
}
