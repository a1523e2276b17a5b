package dispatch

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(dbtest.WithTemplate(m), goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
		// Closing a connection to a broker that is down (the tests of sends
		// waiting for it) leaves paho's Disconnect waiting out its quiesce, up
		// to a second, after the test.
		goleak.IgnoreTopFunction("github.com/eclipse/paho%2emqtt%2egolang.(*client).Disconnect.func1"))
}

// newOwner inserts a game g1 (if missing) and a campaign to own dispatches,
// straight into the tables: the tests of this package stand alone, without
// package campaigns.
func newOwner(t *testing.T, pool *pgxpool.Pool) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO games (id, name, default_locale) VALUES ('g1', 'g1', 'en') ON CONFLICT DO NOTHING`)
	require.NoError(t, err)
	id := uuid.New()
	_, err = pool.Exec(ctx, `
		INSERT INTO campaigns (id, game_id, kind, name, rule, content, priority, expires_at, send_at, status,
			plan_exact, plan_topics, plan_players)
		VALUES ($1, 'g1', 'notice', 'n', '{"everyone":true}', '{"title":{"en":"t"},"body":{"en":"b"}}', 5,
			now() + interval '1 day', now(), 'live', true, 1, 0)`, id)
	require.NoError(t, err)
	return id
}

// record records a retained notice to everyone of campaign owner, fired at fireAt.
func record(t *testing.T, pool *pgxpool.Pool, owner uuid.UUID, fireAt time.Time, targets []segments.Target, list *int64) {
	t.Helper()
	recordIn(t, pool, owner, "", fireAt, targets, list)
}

// recordIn is record in a players' zone: a send of a campaign in each
// player's time zone.
func recordIn(t *testing.T, pool *pgxpool.Pool, owner uuid.UUID, zone string, fireAt time.Time, targets []segments.Target, list *int64) {
	t.Helper()
	var ok bool
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) (err error) {
		ok, _, err = Record(context.Background(), tx, New{
			Campaign: owner, FireAt: fireAt, Zone: zone, State: StatePending,
			Template: Template{Kind: protocol.KindNotice, Game: "g1", Msg: owner.String(),
				Content: json.RawMessage(`{"title":{"en":"t"},"body":{"en":"b"}}`), Priority: 5,
				ExpiresAt: fireAt.Add(24 * time.Hour), Retain: true},
			Plan: segments.Plan{Targets: targets, Topics: int64(len(targets))}, List: list,
		}, nil)
		return err
	})
	require.NoError(t, err)
	require.True(t, ok, "recorded once")
}

var everyone = []segments.Target{{Scope: protocol.ScopeAll}}
