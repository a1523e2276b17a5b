package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/internal/brokerlink"
	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/mqttout"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

// patience is how long a test waits for something that takes a moment on an
// idle machine; generous, because the suite runs on loaded 2-core machines.
const patience = 60 * time.Second

// env is a database with game g1, the stores, and a private broker.
type env struct {
	t          *testing.T
	ctx        context.Context
	pool       *pgxpool.Pool
	campaigns  *campaigns.Store
	segments   *segments.Store
	dispatches *dispatch.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool, _ := dbtest.NewPool(t)
	e := &env{t: t, ctx: audit.WithActor(context.Background(), audit.Actor{Name: "test"}), pool: pool,
		campaigns: campaigns.NewStore(pool, 0), segments: segments.NewStore(pool), dispatches: dispatch.NewStore(pool)}
	_, err := games.NewStore(pool).Create(e.ctx, games.Game{ID: "g1", Name: "g1", DefaultLocale: "en"})
	require.NoError(t, err)
	return e
}

// startWorker connects to broker and starts workers of batch topics each;
// both stop at cleanup, the workers first.
func (e *env) startWorker(broker string, cfg dispatch.WorkerConfig) *dispatch.Worker {
	e.t.Helper()
	conn, err := mqttout.Dial(mqttout.Config{URL: broker, Log: slog.New(slog.DiscardHandler)})
	require.NoError(e.t, err)
	e.t.Cleanup(conn.Close)
	cfg.Publisher, cfg.Prefix, cfg.Log = brokerlink.Publisher{Conn: conn}, "herald", slog.New(slog.DiscardHandler)
	w := e.dispatches.NewWorker(cfg)
	w.Start(context.Background())
	e.t.Cleanup(w.Stop)
	return w
}

// membersSegment creates a segment of uploaded members (ids, one per line)
// and returns it with its member list.
func (e *env) membersSegment(ids string) (segments.Segment, int64) {
	e.t.Helper()
	members, err := segments.ParseRule([]byte(`{"members":true}`), "rule")
	require.NoError(e.t, err)
	seg, err := e.segments.Create(e.ctx, segments.Segment{GameID: "g1", Name: "s", Rule: members})
	require.NoError(e.t, err)
	_, err = e.segments.ReplaceMembers(e.ctx, "g1", seg.ID, strings.NewReader(ids))
	require.NoError(e.t, err)
	var list int64
	require.NoError(e.t, e.pool.QueryRow(e.ctx, `SELECT member_list_id FROM segments WHERE id = $1`, seg.ID).Scan(&list))
	return seg, list
}

// notice creates a notice to audience, sent now unless schedule says otherwise.
func (e *env) notice(audience, schedule string) campaigns.Campaign {
	e.t.Helper()
	var in campaigns.Input
	require.NoError(e.t, json.Unmarshal(fmt.Appendf(nil, `{"kind":"notice","name":"n","audience":%s,
		"content":{"title":{"en":"t"},"body":{"en":"b"}}%s}`, audience, schedule), &in))
	c, err := e.campaigns.Create(e.ctx, "g1", in)
	require.NoError(e.t, err)
	return c
}

func (e *env) dispatchOf(id uuid.UUID) dispatch.Dispatch {
	e.t.Helper()
	ds, err := dispatch.Of(e.ctx, e.pool, id)
	require.NoError(e.t, err)
	require.Len(e.t, ds, 1)
	return ds[0]
}

// watcher keeps what a broker holds under a filter, as a client sees it.
type watcher struct {
	mu       sync.Mutex
	retained map[string][]byte // by topic, as the latest message left it (empty: cleared)
	live     int               // messages that arrived without the retain flag
}

func watch(t *testing.T, broker, filter string) *watcher {
	t.Helper()
	w := &watcher{retained: map[string][]byte{}}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetCleanSession(true).SetAutoReconnect(false).
		SetOrderMatters(false).SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if !m.Retained() && len(m.Payload()) > 0 {
			w.live++
		}
		w.retained[m.Topic()] = append([]byte(nil), m.Payload()...)
	})
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil, "connect: %v", tok.Error())
	t.Cleanup(func() { c.Disconnect(100) })
	tok = c.Subscribe(filter, 0, nil)
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil, "subscribe: %v", tok.Error())
	return w
}

// held returns the topics whose latest message is not empty, with their envelopes.
func (w *watcher) held(t *testing.T) map[string]protocol.Envelope {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]protocol.Envelope{}
	for topic, payload := range w.retained {
		if len(payload) == 0 {
			continue
		}
		e, err := protocol.DecodeEnvelope(payload)
		require.NoError(t, err, "%s", payload)
		out[topic] = e
	}
	return out
}

func (w *watcher) seen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.retained)
}

// TestWorkerPublishesClearsAndTellsTheOwner: a member-list notice and a
// broadcast are published a few topics at a time, with the dispatch's envelope
// on every topic; a recall and an expiry clear every topic, and the campaign
// whose dispatch expired is told, through OnCleared, that it has expired.
func TestWorkerPublishesClearsAndTellsTheOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	broker := brokertest.Start(t)
	online := watch(t, broker.URL, "herald/g1/#")
	e.startWorker(broker.URL, dispatch.WorkerConfig{Batch: 3, OnCleared: e.campaigns.DispatchCleared})

	seg, _ := e.membersSegment("p1\np2\np3\np4\np5\np6\np7\n")
	recalled := e.notice(fmt.Sprintf(`{"segment_id":%q}`, seg.ID), "")
	expiring := e.notice(`{"rule":{"everyone":true}}`, "")

	require.Eventually(t, func() bool {
		return e.dispatchOf(recalled.ID).State == dispatch.StatePublished && e.dispatchOf(expiring.ID).State == dispatch.StatePublished
	}, patience, 10*time.Millisecond)
	d := e.dispatchOf(recalled.ID)
	require.EqualValues(t, 7, d.Topics)
	require.EqualValues(t, 7, d.Acked)
	require.Eventually(t, func() bool { return len(online.held(t)) == 8 }, patience, 10*time.Millisecond)
	held := online.held(t)
	for i := 1; i <= 7; i++ {
		env, ok := held[fmt.Sprintf("herald/g1/player/p%d/notice/%s", i, recalled.ID)]
		require.True(t, ok, "p%d", i)
		require.Equal(t, d.ID.String(), env.ID)
		require.Equal(t, recalled.ID.String(), env.Campaign)
	}
	require.Contains(t, held, "herald/g1/all/notice/"+expiring.ID.String())

	_, err := e.campaigns.Cancel(e.ctx, "g1", recalled.ID)
	require.NoError(t, err)
	_, err = e.dispatches.ExpireDue(e.ctx, time.Now().Add(8*24*time.Hour))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return e.dispatchOf(recalled.ID).State == dispatch.StateRecalled && e.dispatchOf(expiring.ID).State == dispatch.StateExpired
	}, patience, 10*time.Millisecond)
	require.Empty(t, online.held(t), "every topic cleared")
	require.EqualValues(t, 7, e.dispatchOf(recalled.ID).Cleared)

	got, err := e.campaigns.Get(e.ctx, "g1", expiring.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StatusExpired, got.Status, "told through OnCleared")
	got, err = e.campaigns.Get(e.ctx, "g1", recalled.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StatusCanceled, got.Status, "a canceled campaign stays canceled")
}

// TestNonRetainedDispatch: a dispatch whose messages are not retained reaches
// the players online only, leaves nothing on the broker, and at expiry has
// nothing to clear. Kick-outs are such dispatches.
func TestNonRetainedDispatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	broker := brokertest.Start(t)
	online := watch(t, broker.URL, "herald/g1/#")
	owner := e.notice(`{"rule":{"everyone":true}}`, `,"schedule":{"at":"2099-01-01T00:00:00Z"},"expires_at":"2099-01-02T00:00:00Z"`)
	fire := time.Now()
	err := pgx.BeginFunc(e.ctx, e.pool, func(tx pgx.Tx) error {
		_, _, err := dispatch.Record(e.ctx, tx, dispatch.New{Campaign: owner.ID, FireAt: fire, State: dispatch.StatePending,
			Template: dispatch.Template{Kind: protocol.KindKickout, Game: "g1", Msg: "k1",
				Content: json.RawMessage(`{"reason":"ban"}`), ExpiresAt: fire.Add(time.Minute)},
			Plan: segments.Plan{Targets: []segments.Target{{Scope: protocol.ScopePlayer, Keys: []string{"p1"}}}, Topics: 1}}, nil)
		return err
	})
	require.NoError(t, err)
	e.startWorker(broker.URL, dispatch.WorkerConfig{})

	require.Eventually(t, func() bool { return e.dispatchOf(owner.ID).State == dispatch.StatePublished }, patience, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		online.mu.Lock()
		defer online.mu.Unlock()
		return online.live == 1
	}, patience, 10*time.Millisecond, "the player online gets it, without the retain flag")
	later := watch(t, broker.URL, "herald/g1/#")
	_, err = e.dispatches.ExpireDue(e.ctx, fire.Add(time.Minute))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return e.dispatchOf(owner.ID).State == dispatch.StateExpired }, patience, 10*time.Millisecond)
	require.Zero(t, e.dispatchOf(owner.ID).Cleared, "nothing to clear")
	require.Zero(t, later.seen(), "nothing was retained, and no empty payload was sent")
}

// TestStopWaitsForTheHeartbeat: while a dispatch waits for a broker that is
// down, its lease is renewed; Stop returns only once the renewals have
// stopped and the lease was given back (goleak, in TestMain, checks that no
// goroutine outlives the test). A second Start starts nothing.
func TestStopWaitsForTheHeartbeat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.notice(`{"rule":{"everyone":true}}`, "")
	down := fmt.Sprintf("tcp://127.0.0.1:%d", brokertest.FreePort(t))
	w := e.startWorker(down, dispatch.WorkerConfig{Replica: "r1", Lease: 300 * time.Millisecond})
	w.Start(context.Background()) // a second Start: a no-op

	leaseUntil := func() (by *string, until *time.Time) {
		require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT leased_by, lease_until FROM dispatches WHERE campaign_id = $1`, c.ID).
			Scan(&by, &until))
		return by, until
	}
	var first time.Time
	require.Eventually(t, func() bool {
		by, until := leaseUntil()
		if by == nil || *by != "r1" {
			return false
		}
		if first.IsZero() {
			first = *until
		}
		return until.After(first)
	}, patience, 10*time.Millisecond, "claimed by r1 and renewed while the broker is down")

	w.Stop()
	by, until := leaseUntil()
	require.Nil(t, by, "given back at Stop")
	require.Nil(t, until)
	require.Equal(t, dispatch.StatePublishing, e.dispatchOf(c.ID).State, "another replica resumes it")
}

// TestWorkersBoundTheSendsUnderWay: a replica works on as many sends at once
// as it has workers, and no more: with the broker down, 3 of 5 due sends are
// held (leased, renewed) while 2 wait for a free worker, through the claimers'
// further looks; at Stop every lease is given back.
func TestWorkersBoundTheSendsUnderWay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for range 5 {
		e.notice(`{"rule":{"everyone":true}}`, "")
	}
	down := fmt.Sprintf("tcp://127.0.0.1:%d", brokertest.FreePort(t))
	// A renewal every 300 ms, each after more than a Poll (200 ms).
	w := e.startWorker(down, dispatch.WorkerConfig{Replica: "r1", Workers: 3, Lease: 900 * time.Millisecond})
	held := func() (n int, until time.Time) {
		require.NoError(t, e.pool.QueryRow(e.ctx, `
			SELECT count(*), coalesce(min(lease_until), now()) FROM dispatches WHERE leased_by = 'r1'`).Scan(&n, &until))
		return n, until
	}
	var first time.Time
	require.Eventually(t, func() bool {
		n, until := held()
		require.LessOrEqual(t, n, 3, "no more than 3 workers")
		if n < 3 {
			return false
		}
		if first.IsZero() {
			first = until
		}
		return until.After(first.Add(300 * time.Millisecond)) // every lease renewed twice since
	}, patience, 10*time.Millisecond, "3 sends under way, renewed")
	w.Stop()
	n, _ := held()
	require.Zero(t, n, "given back at Stop")
}
