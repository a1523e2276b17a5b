package games_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/internal/brokerlink"
	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/mqttout"
	"github.com/heraldpush/herald/protocol"
)

// Two replicas publish the descriptors of one database while a game changes
// twenty times in a row: the broker ends up retaining the descriptor of the
// game as it is, and the database records it published. Marking every
// descriptor stale (what a restore does) publishes it again.
func TestDescriptorPublishersConverge(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	store := games.NewStore(pool)
	broker := brokertest.Start(t)
	var publishers []*games.DescriptorPublisher
	for range 2 {
		conn, err := mqttout.Dial(mqttout.Config{URL: broker.URL, Log: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		t.Cleanup(conn.Close)
		p := store.NewDescriptorPublisher(games.PublisherConfig{Broker: brokerlink.Publisher{Conn: conn},
			Prefix: "herald", Log: slog.New(slog.DiscardHandler), Poll: 10 * time.Millisecond})
		p.Start(context.Background())
		t.Cleanup(p.Stop)
		publishers = append(publishers, p)
	}
	retained := watchRetained(t, broker.URL, protocol.DescriptorTopic("herald", "g1"))

	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "test"})
	_, err := store.Create(ctx, games.Game{ID: "g1", Name: "G", DefaultLocale: "en",
		Tags: map[string]games.Tag{"region": {Values: []string{"v0"}}}})
	require.NoError(t, err)
	var last games.Game
	for i := 1; i <= 20; i++ {
		last, err = store.Update(ctx, "g1", func(g *games.Game) {
			r := g.Tags["region"]
			r.Values = append(r.Values, "v"+strconv.Itoa(i))
			g.Tags["region"] = r
		}, nil)
		require.NoError(t, err)
	}
	want, err := json.Marshal(last.Descriptor("herald"))
	require.NoError(t, err)
	published := func() bool {
		var done bool
		require.NoError(t, pool.QueryRow(ctx, `SELECT published = version FROM game_descriptors WHERE game_id = 'g1'`).Scan(&done))
		return done
	}
	eventually(t, "the last descriptor retained and recorded published", func() bool {
		return published() && string(retained.last()) == string(want)
	})
	d, err := protocol.DecodeDescriptor(retained.last())
	require.NoError(t, err)
	require.Len(t, d.Tags["region"].Values, 21)

	before := retained.count()
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return games.MarkDescriptorsStale(ctx, tx) }))
	eventually(t, "the descriptor published again", func() bool { return published() && retained.count() > before })
	require.Equal(t, string(want), string(retained.last()), "the same descriptor, byte for byte")
	var total int64
	for _, p := range publishers {
		total += p.Counters().Published
	}
	require.GreaterOrEqual(t, total, int64(2))
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 60s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// retainedWatch keeps what arrives on one topic.
type retainedWatch struct {
	mu       sync.Mutex
	payloads [][]byte
}

func (w *retainedWatch) last() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.payloads) == 0 {
		return nil
	}
	return w.payloads[len(w.payloads)-1]
}

func (w *retainedWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.payloads)
}

// watchRetained subscribes to topic until the test ends.
func watchRetained(t *testing.T, broker, topic string) *retainedWatch {
	t.Helper()
	w := &retainedWatch{}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetOrderMatters(true))
	require.True(t, c.Connect().WaitTimeout(30*time.Second))
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		w.mu.Lock()
		w.payloads = append(w.payloads, append([]byte(nil), m.Payload()...))
		w.mu.Unlock()
	})
	require.True(t, tok.WaitTimeout(30*time.Second))
	require.NoError(t, tok.Error())
	return w
}
