package games_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/internal/dbtest"
)

func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	l, ok := fielderr.As(err)
	require.True(t, ok, "want field errors, got %v", err)
	var out []string
	for _, e := range l {
		out = append(out, e.Field)
	}
	return out
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     []string // nil: valid
	}{
		{"minimal", `{"id":"g1","name":"G","default_locale":"en"}`, nil},
		{"tags", `{"id":"g1","name":"G","default_locale":"zh-Hant-TW","tags":{"region":{"values":["eu","na"]},"level":{"bands":[[10,19],[1,9]]}}}`, nil},
		{"bad id, name and locale", `{"id":"a/b","name":"","default_locale":"english"}`, []string{"id", "name", "default_locale"}},
		{"both values and bands", `{"id":"g1","name":"G","default_locale":"en","tags":{"t":{"values":["a"],"bands":[[1,2]]}}}`, []string{"tags.t"}},
		{"neither", `{"id":"g1","name":"G","default_locale":"en","tags":{"t":{}}}`, []string{"tags.t"}},
		{"bad tag name", `{"id":"g1","name":"G","default_locale":"en","tags":{"a b":{"values":["x"]}}}`, []string{"tags.a b"}},
		{"bad and repeated values", `{"id":"g1","name":"G","default_locale":"en","tags":{"t":{"values":["a","#","a"]}}}`, []string{"tags.t.values[1]", "tags.t.values[2]"}},
		{"a band not a pair", `{"id":"g1","name":"G","default_locale":"en","tags":{"t":{"bands":[[1,2],[3],[4,5,6]]}}}`, []string{"tags.t.bands[1]", "tags.t.bands[2]"}},
		{"a band backwards and overlapping ones", `{"id":"g1","name":"G","default_locale":"en","tags":{"t":{"bands":[[9,1],[1,10],[10,20]]}}}`, []string{"tags.t.bands[0]", "tags.t.bands[2]"}},
	}
	for _, tt := range tests {
		var g games.Game
		require.NoError(t, json.Unmarshal([]byte(tt.in), &g), tt.name)
		err := g.Validate()
		if tt.want == nil {
			require.NoError(t, err, tt.name)
			continue
		}
		require.Equal(t, tt.want, fieldsOf(t, err), tt.name)
	}
	var tag games.Tag
	require.Error(t, json.Unmarshal([]byte(`{"values":["a"],"colour":"red"}`), &tag), "unknown members are refused")
	require.Equal(t, "30-39", games.Band{30, 39}.Name())
}

func TestStore(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "test"})
	store := games.NewStore(pool)
	for _, id := range []string{"g3", "g1", "g2"} {
		_, err := store.Create(ctx, games.Game{ID: id, Name: "Game " + id, DefaultLocale: "en"})
		require.NoError(t, err)
	}
	_, err := store.Create(ctx, games.Game{ID: "g1", Name: "again", DefaultLocale: "en"})
	require.ErrorIs(t, err, games.ErrExists)
	g, err := store.Get(ctx, "g2")
	require.NoError(t, err)
	require.Equal(t, "Game g2", g.Name)
	require.Equal(t, map[string]games.Tag{}, g.Tags, "no tags are stored as {}")
	_, err = store.Get(ctx, "nope")
	require.ErrorIs(t, err, games.ErrNotFound)

	ids := func(list []games.Game) []string {
		var out []string
		for _, g := range list {
			out = append(out, g.ID)
		}
		return out
	}
	page, more, err := store.List(ctx, "", 2, nil)
	require.NoError(t, err)
	require.True(t, more)
	require.Equal(t, []string{"g1", "g2"}, ids(page))
	page, more, err = store.List(ctx, "g2", 2, nil)
	require.NoError(t, err)
	require.False(t, more)
	require.Equal(t, []string{"g3"}, ids(page))
	page, _, err = store.List(ctx, "", 10, []string{"g3", "g1", "g9"})
	require.NoError(t, err)
	require.Equal(t, []string{"g1", "g3"}, ids(page), "only the games a key may touch")

	var rows int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'game.create'`).Scan(&rows))
	require.Equal(t, 3, rows, "each change is audited")
}

// TestUpdateChecks: Update validates the changed game and lets its check veto
// the change inside the transaction; a vetoed or invalid change stores nothing.
func TestUpdateChecks(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "test"})
	store := games.NewStore(pool)
	_, err := store.Create(ctx, games.Game{ID: "g1", Name: "G", DefaultLocale: "en"})
	require.NoError(t, err)
	rename := func(name string) func(*games.Game) { return func(g *games.Game) { g.Name = name } }

	var seen string
	veto := func(ctx context.Context, tx pgx.Tx, g games.Game) error {
		seen = g.Name
		return fielderr.New("name", "vetoed")
	}
	_, err = store.Update(ctx, "g1", rename("New"), veto)
	require.Equal(t, []string{"name"}, fieldsOf(t, err))
	require.Equal(t, "New", seen, "the check sees the changed game")
	_, err = store.Update(ctx, "g1", rename(strings.Repeat("x", 201)), nil)
	require.Equal(t, []string{"name"}, fieldsOf(t, err))
	g, err := store.Get(ctx, "g1")
	require.NoError(t, err)
	require.Equal(t, "G", g.Name, "nothing stored")

	failing := func(context.Context, pgx.Tx, games.Game) error { return errors.New("database down") }
	_, err = store.Update(ctx, "g1", rename("New"), failing)
	require.ErrorContains(t, err, "database down")

	g, err = store.Update(ctx, "g1", rename("New"), nil)
	require.NoError(t, err)
	require.Equal(t, "New", g.Name)
	_, err = store.Update(ctx, "nope", rename("New"), nil)
	require.ErrorIs(t, err, games.ErrNotFound)
}
