package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/internal/clocktest"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/valid"
)

func actor() context.Context {
	return audit.WithActor(context.Background(), audit.Actor{Name: "test"})
}

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

// TestKeyLifetimeFollowsTheClock: a key works until its expiry on the store's
// clock and not after, and one that would expire in the past is refused.
func TestKeyLifetimeFollowsTheClock(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	start := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := clocktest.New(start)
	keys := auth.NewStore(pool).WithClock(clock.Now)

	key, secret, err := keys.Create(actor(), auth.Input{Name: "ops", Role: auth.RoleOperator,
		ExpiresAt: &valid.Time{Time: start.Add(time.Hour)}})
	require.NoError(t, err)
	got, err := keys.Authenticate(context.Background(), secret)
	require.NoError(t, err)
	require.Equal(t, key.ID, got.ID)

	clock.Add(time.Hour)
	_, err = keys.Authenticate(context.Background(), secret)
	require.ErrorIs(t, err, auth.ErrUnauthenticated, "expired at its expires_at")

	_, _, err = keys.Create(actor(), auth.Input{Name: "late", Role: auth.RoleOperator,
		ExpiresAt: &valid.Time{Time: start.Add(30 * time.Minute)}})
	require.Equal(t, []string{"expires_at"}, fieldsOf(t, err), "in the past by the store's clock")
}

// TestAuthenticateRefuses every way a presented key can fail, all alike.
func TestAuthenticateRefuses(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	keys := auth.NewStore(pool)
	key, secret, err := keys.Create(actor(), auth.Input{Name: "k", Role: auth.RoleService})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(secret, "hk_"))

	other := secret[:len(secret)-1] + map[bool]string{true: "A", false: "B"}[secret[len(secret)-1] != 'A']
	for name, presented := range map[string]string{
		"empty":           "",
		"no prefix":       strings.TrimPrefix(secret, "hk_"),
		"short":           secret[:len(secret)-1],
		"not hex id":      "hk_" + strings.Repeat("z", 32) + secret[35:],
		"wrong secret":    other,
		"unknown id":      "hk_" + strings.ReplaceAll(uuid.NewString(), "-", "") + secret[35:],
		"bad base64 tail": secret[:len(secret)-1] + "!",
	} {
		_, err := keys.Authenticate(context.Background(), presented)
		require.ErrorIs(t, err, auth.ErrUnauthenticated, name)
	}

	_, err = keys.Revoke(actor(), key.ID, nil)
	require.NoError(t, err)
	_, err = keys.Authenticate(context.Background(), secret)
	require.ErrorIs(t, err, auth.ErrUnauthenticated, "revoked")
	again, err := keys.Revoke(actor(), key.ID, nil)
	require.NoError(t, err, "revoking a revoked key changes nothing")
	require.NotNil(t, again.RevokedAt)
	_, err = keys.Revoke(actor(), uuid.New(), nil)
	require.ErrorIs(t, err, auth.ErrNotFound)
}

// TestKeysOfALimitedAdmin: a key limited to some games lists and revokes only
// keys limited to some of its games.
func TestKeysOfALimitedAdmin(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	keys := auth.NewStore(pool)
	create := func(name string, games []string) auth.Key {
		k, _, err := keys.Create(actor(), auth.Input{Name: name, Role: auth.RoleOperator, Games: games})
		require.NoError(t, err)
		return k
	}
	all := create("all", nil)
	g1 := create("g1", []string{"g1"})
	g12 := create("g1 g2", []string{"g1", "g2"})
	g3 := create("g3", []string{"g3"})

	names := func(within []string) []string {
		list, more, err := keys.List(context.Background(), uuid.Nil, 100, within)
		require.NoError(t, err)
		require.False(t, more)
		var out []string
		for _, k := range list {
			out = append(out, k.Name)
		}
		return out
	}
	require.Equal(t, []string{"all", "g1", "g1 g2", "g3"}, names(nil))
	require.Equal(t, []string{"g1", "g1 g2"}, names([]string{"g1", "g2"}))
	require.Equal(t, []string{"g1"}, names([]string{"g1"}))

	_, err := keys.Revoke(actor(), g3.ID, []string{"g1", "g2"})
	require.ErrorIs(t, err, auth.ErrNotFound, "another game's key is not found")
	_, err = keys.Revoke(actor(), all.ID, []string{"g1"})
	require.ErrorIs(t, err, auth.ErrNotFound, "a key for every game is wider than a limited one")
	_, err = keys.Revoke(actor(), g12.ID, []string{"g1", "g2"})
	require.NoError(t, err)

	require.True(t, all.Covers([]string{"g9"}))
	require.True(t, g12.Covers([]string{"g2"}))
	require.False(t, g1.Covers(nil))
	require.False(t, g1.Covers([]string{"g1", "g2"}))

	page, more, err := keys.List(context.Background(), uuid.Nil, 2, nil)
	require.NoError(t, err)
	require.True(t, more)
	require.Len(t, page, 2)
	rest, more, err := keys.List(context.Background(), page[1].ID, 2, nil)
	require.NoError(t, err)
	require.False(t, more)
	require.Len(t, rest, 2)
}

func TestCreateRefuses(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	keys := auth.NewStore(pool)
	_, _, err := keys.Create(actor(), auth.Input{Name: "", Role: "root", Games: []string{}})
	require.Equal(t, []string{"name", "role", "games"}, fieldsOf(t, err))
	_, _, err = keys.Create(actor(), auth.Input{Name: "k", Role: auth.RoleAdmin, Games: []string{"g1", "a/b"}})
	require.Equal(t, []string{"games[1]"}, fieldsOf(t, err))
	_, _, err = keys.Create(context.Background(), auth.Input{Name: "k", Role: auth.RoleAdmin})
	require.True(t, errors.Is(err, audit.ErrNoActor), "a change nobody answers for is refused: %v", err)
}

func TestRoles(t *testing.T) {
	t.Parallel()
	every := []auth.Permission{auth.PermGamesRead, auth.PermGamesWrite, auth.PermSegmentsRead, auth.PermSegmentsWrite,
		auth.PermCampaignsRead, auth.PermCampaignsWrite, auth.PermMarquee, auth.PermKickouts, auth.PermStatsRead,
		auth.PermKeys, auth.PermAudit}
	can := func(r auth.Role) []auth.Permission {
		var out []auth.Permission
		for _, p := range every {
			if r.Can(p) {
				out = append(out, p)
			}
		}
		return out
	}
	require.Equal(t, every, can(auth.RoleAdmin))
	require.Equal(t, every[:9], can(auth.RoleOperator), "everything but keys and the audit log")
	require.Equal(t, []auth.Permission{auth.PermGamesRead, auth.PermSegmentsRead, auth.PermSegmentsWrite,
		auth.PermCampaignsRead, auth.PermCampaignsWrite, auth.PermStatsRead}, can(auth.RoleMarketing), "no marquee, no kick-outs")
	require.Equal(t, []auth.Permission{auth.PermKickouts, auth.PermStatsRead}, can(auth.RoleService))
	require.Empty(t, can("root"))
	require.False(t, auth.Role("root").Valid())
}
