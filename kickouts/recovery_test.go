package kickouts

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/mqttout"
	"github.com/heraldpush/herald/receipts"
)

// patience is how long a test waits for what takes a moment on an idle
// machine; generous, because the suite runs on loaded 2-core machines.
const patience = 60 * time.Second

// fixture is a Service on its own database and a private broker, with a game g1.
type fixture struct {
	svc    *Service
	broker *brokertest.Broker
	ctx    context.Context
	game   games.Game
}

func newFixture(t *testing.T, edit func(*Config)) *fixture {
	t.Helper()
	pool, _ := dbtest.NewPool(t)
	broker := brokertest.Start(t)
	log := slog.New(slog.DiscardHandler)
	conn, err := mqttout.Dial(mqttout.Config{URL: broker.URL, Log: log})
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "test"})
	gs := games.NewStore(pool)
	g, err := gs.Create(ctx, games.Game{ID: "g1", Name: "G1", DefaultLocale: "en"})
	require.NoError(t, err)
	cfg := Config{DB: pool, Receipts: receipts.NewStore(pool, 0), Publisher: conn, Prefix: "herald", Log: log,
		Poll: 50 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	return &fixture{svc: New(cfg), broker: broker, ctx: ctx, game: g}
}

// create creates a kick-out in g1 and answers without waiting.
func (f *fixture) create(in Input) (Status, error) {
	return f.svc.CreateAndWait(f.ctx, f.game, in, 0)
}

func (f *fixture) start(t *testing.T) {
	f.svc.Start(context.Background())
	t.Cleanup(f.svc.Stop)
}

// listen subscribes a paho client to filter and returns the payloads it gets.
func listen(t *testing.T, url, filter string) func() [][]byte {
	var mu sync.Mutex
	var got [][]byte
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetCleanSession(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			mu.Lock()
			got = append(got, m.Payload())
			mu.Unlock()
		}))
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil, "connect: %v", tok.Error())
	t.Cleanup(func() { c.Disconnect(100) })
	tok = c.Subscribe(filter, 1, nil)
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil, "subscribe: %v", tok.Error())
	return func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return append([][]byte(nil), got...)
	}
}

// TestRecoveryPublishesAKickoutCutOffByACrash stores a kick-out as a replica
// that died right after its commit leaves it: never published, its lease
// passed. Another replica's recovery publishes it while its ttl lasts, and
// leaves alone one whose ttl passed.
func TestRecoveryPublishesAKickoutCutOffByACrash(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	got := listen(t, f.broker.URL, "herald/g1/player/#")

	reason := "ban"
	k, ttl, err := Input{Players: []string{"p1"}, Reason: &reason}.build("g1", "en")
	require.NoError(t, err)
	k.ID = uuid.Must(uuid.NewV7())
	k.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	k.ExpiresAt = k.CreatedAt.Add(ttl)
	require.NoError(t, f.svc.store.insert(f.ctx, k, k.CreatedAt))
	stale := k
	stale.ID, stale.CreatedAt, stale.ExpiresAt = uuid.Must(uuid.NewV7()), k.CreatedAt.Add(-time.Hour), k.CreatedAt.Add(-time.Hour+time.Minute)
	require.NoError(t, f.svc.store.insert(f.ctx, stale, stale.CreatedAt))
	st, err := f.svc.Status(f.ctx, "g1", k.ID)
	require.NoError(t, err)
	require.Equal(t, StatePending, st.State)
	require.Equal(t, PlayerPending, st.Players[0].Status)

	f.start(t)
	require.Eventually(t, func() bool { return len(got()) > 0 }, patience, 10*time.Millisecond, "recovery publishes it")
	var env map[string]any
	require.NoError(t, json.Unmarshal(got()[0], &env))
	require.Equal(t, k.ID.String(), env["id"])
	require.Eventually(t, func() bool {
		st, err := f.svc.Status(f.ctx, "g1", k.ID)
		return err == nil && st.State == StatePublished && st.Players[0].Status == PlayerPublished
	}, patience, 10*time.Millisecond, "and marks it published")
	st, err = f.svc.Status(f.ctx, "g1", stale.ID)
	require.NoError(t, err)
	require.Equal(t, StateExpired, st.State, "an expired kick-out is never sent")
	require.Equal(t, PlayerNotDelivered, st.Players[0].Status)
	require.Len(t, got(), 1)
}

// TestKickoutWhileTheBrokerIsDownIsPendingThenPublished: the request answers
// pending once PublishTimeout passed; recovery publishes it when the broker is
// back.
func TestKickoutWhileTheBrokerIsDownIsPendingThenPublished(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.PublishTimeout, c.DBTimeout = 300*time.Millisecond, time.Second })
	f.start(t)
	f.broker.Stop()
	reason := "maintenance"
	st, err := f.create(Input{Players: []string{"p1", "p2"}, Reason: &reason})
	require.NoError(t, err)
	require.Equal(t, StatePending, st.State)
	require.Equal(t, 2, st.Counts.Pending)
	require.Nil(t, st.PublishedAt)

	f.broker.Start()
	require.Eventually(t, func() bool {
		st, err := f.svc.Status(f.ctx, "g1", st.ID)
		return err == nil && st.State == StatePublished && st.Counts.Published == 2
	}, patience, 20*time.Millisecond, "recovery publishes it once the broker is back")
}
