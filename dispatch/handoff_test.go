package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/internal/brokerlink"
	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/mqttout"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

// TestASmallSendStartsWhereItWasRecorded: a send now to a topic is handed to
// the recording replica's workers: the campaign Create returns already shows
// it publishing (or published), sent when it was recorded, and it reaches
// the broker.
func TestASmallSendStartsWhereItWasRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	broker := brokertest.Start(t)
	online := watch(t, broker.URL, "herald/g1/#")
	w := e.startWorker(broker.URL, dispatch.WorkerConfig{})
	e.campaigns = e.campaigns.HandingOffTo(w)

	before := time.Now()
	c := e.notice(`{"rule":{"everyone":true}}`, "")
	require.Len(t, c.Dispatches, 1)
	d := c.Dispatches[0]
	require.Contains(t, []dispatch.State{dispatch.StatePublishing, dispatch.StatePublished}, d.State,
		"handed off in the recording: no claim needed")
	require.NotNil(t, d.SentAt)
	require.WithinDuration(t, before, *d.SentAt, time.Minute)
	require.Eventually(t, func() bool { return e.dispatchOf(c.ID).State == dispatch.StatePublished }, patience, 10*time.Millisecond)
	require.Eventually(t, func() bool { return len(online.held(t)) == 1 }, patience, 10*time.Millisecond)
}

// send is a retained notice of campaign owner fired at fire, to targets.
func send(owner uuid.UUID, fire time.Time, targets []segments.Target, list *int64) dispatch.New {
	topics := int64(len(targets))
	return dispatch.New{Campaign: owner, FireAt: fire, State: dispatch.StatePending,
		Template: dispatch.Template{Kind: protocol.KindNotice, Game: "g1", Msg: owner.String(),
			Content: json.RawMessage(`{"title":{"en":"t"},"body":{"en":"b"}}`), Priority: 5,
			ExpiresAt: fire.Add(24 * time.Hour), Retain: true},
		Plan: segments.Plan{Targets: targets, Topics: topics}, List: list}
}

func everyone() []segments.Target { return []segments.Target{{Scope: protocol.ScopeAll}} }

func players(ids ...string) []segments.Target {
	var out []segments.Target
	for _, id := range ids {
		out = append(out, segments.Target{Scope: protocol.ScopePlayer, Keys: []string{id}})
	}
	return out
}

// recordWith records sends with local's hand-off, starts what was handed off
// once committed, and returns the state of each send as the recording
// transaction saw it, by campaign.
func (e *env) recordWith(local *dispatch.Worker, sends ...dispatch.New) map[uuid.UUID]dispatch.State {
	e.t.Helper()
	states := map[uuid.UUID]dispatch.State{}
	var h *dispatch.Handoff
	err := pgx.BeginFunc(e.ctx, e.pool, func(tx pgx.Tx) error {
		recorded, handoff, err := dispatch.RecordAll(e.ctx, tx, sends, local)
		h = handoff
		if err != nil {
			return err
		}
		require.Len(e.t, recorded, len(sends))
		for _, s := range sends {
			var state dispatch.State
			if err := tx.QueryRow(e.ctx, `SELECT state FROM dispatches WHERE campaign_id = $1 AND fire_at = $2`,
				s.Campaign, s.FireAt).Scan(&state); err != nil {
				return err
			}
			states[s.Campaign] = state
		}
		return nil
	})
	h.Settle(err)
	require.NoError(e.t, err)
	return states
}

// later is a campaign whose own send is far off: it owns the sends a test
// records.
func (e *env) later() uuid.UUID {
	return e.notice(`{"rule":{"everyone":true}}`, `,"schedule":{"at":"2099-01-01T00:00:00Z"},"expires_at":"2099-01-02T00:00:00Z"`).ID
}

// TestSendsHandedOffTogetherCountTheirOwnAcks: the small sends of one
// recording are leased in it and published together, each with its own
// counters; a send to a member list in the same recording is left pending
// and published by a claim.
func TestSendsHandedOffTogetherCountTheirOwnAcks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	broker := brokertest.Start(t)
	online := watch(t, broker.URL, "herald/g1/#")
	w := e.startWorker(broker.URL, dispatch.WorkerConfig{Batch: 4})

	_, list := e.membersSegment("m1\nm2\nm3\n")

	fire := time.Now()
	a, b, c, big, many := e.later(), e.later(), e.later(), e.later(), e.later()
	states := e.recordWith(w,
		send(a, fire, everyone(), nil),
		send(b, fire, players("p1", "p2"), nil),
		send(c, fire, players("p3", "p4", "p5"), nil), // with b, more than a batch: a group of its own
		send(big, fire, []segments.Target{{Scope: protocol.ScopePlayer, Members: true}}, &list),
		send(many, fire, players("q1", "q2", "q3", "q4", "q5"), nil)) // more than a batch
	require.Equal(t, map[uuid.UUID]dispatch.State{a: dispatch.StatePublishing, b: dispatch.StatePublishing,
		c: dispatch.StatePublishing, big: dispatch.StatePending, many: dispatch.StatePending}, states)

	topics := map[uuid.UUID]int64{a: 1, b: 2, c: 3, big: 3, many: 5}
	require.Eventually(t, func() bool {
		for id := range topics {
			if e.dispatchOf(id).State != dispatch.StatePublished {
				return false
			}
		}
		return true
	}, patience, 10*time.Millisecond)
	for id, n := range topics {
		d := e.dispatchOf(id)
		require.Equal(t, n, d.Acked, "%s counts its own topics", id)
		require.Zero(t, d.Failed)
		require.NotNil(t, d.FirstAckAt)
		require.False(t, d.LastAckAt.Before(*d.FirstAckAt))
		require.False(t, d.FirstAckAt.Before(*d.SentAt))
	}
	require.Eventually(t, func() bool { return len(online.held(t)) == 14 }, patience, 10*time.Millisecond)
	held := online.held(t)
	require.Equal(t, e.dispatchOf(b).ID.String(), held["herald/g1/player/p2/notice/"+b.String()].ID)
	require.Equal(t, e.dispatchOf(c).ID.String(), held["herald/g1/player/p3/notice/"+c.String()].ID)
	require.Equal(t, e.dispatchOf(a).ID.String(), held["herald/g1/all/notice/"+a.String()].ID)
}

// TestHandOffsBeyondTheFreeSlotsWaitForAClaim: a recording leases no more
// sends than the workers have hand-off slots free, none while they are
// stopped, and none whose campaign has an earlier send still out; the rest
// are left pending and published by a claim once they may start.
func TestHandOffsBeyondTheFreeSlotsWaitForAClaim(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	broker := brokertest.Start(t)
	w := e.startWorker(broker.URL, dispatch.WorkerConfig{Handoffs: 1})

	fire := time.Now()
	a, b := e.later(), e.later()
	states := e.recordWith(w, send(a, fire, everyone(), nil), send(b, fire, everyone(), nil))
	require.ElementsMatch(t, []dispatch.State{dispatch.StatePublishing, dispatch.StatePending}, []dispatch.State{states[a], states[b]})
	published := func(ids ...uuid.UUID) func() bool {
		return func() bool {
			for _, id := range ids {
				ds, err := dispatch.Of(e.ctx, e.pool, id)
				require.NoError(t, err)
				if ds[len(ds)-1].State != dispatch.StatePublished {
					return false
				}
			}
			return true
		}
	}
	require.Eventually(t, published(a, b), patience, 10*time.Millisecond)

	// The next send of a, while a's first is still out: pending until the
	// first is cleared.
	next := fire.Add(time.Hour)
	require.Equal(t, dispatch.StatePending, e.recordWith(w, send(a, next, everyone(), nil))[a])
	_, err := e.dispatches.ExpireDue(e.ctx, fire.Add(24*time.Hour+time.Minute))
	require.NoError(t, err)
	require.Eventually(t, published(a), patience, 10*time.Millisecond)

	w.Stop()
	c := e.later()
	require.Equal(t, dispatch.StatePending, e.recordWith(w, send(c, fire, everyone(), nil))[c], "no hand-off to stopped workers")

	// A recording that rolls back gives its slot back: the next one takes it.
	one := e.startWorker(broker.URL, dispatch.WorkerConfig{Handoffs: 1})
	d := e.later()
	rolledBack := errors.New("rolled back")
	err = pgx.BeginFunc(e.ctx, e.pool, func(tx pgx.Tx) error {
		_, h, err := dispatch.RecordAll(e.ctx, tx, []dispatch.New{send(d, fire, everyone(), nil)}, one)
		require.NoError(t, err)
		defer h.Settle(rolledBack)
		return rolledBack
	})
	require.ErrorIs(t, err, rolledBack)
	require.Equal(t, dispatch.StatePublishing, e.recordWith(one, send(d, fire, everyone(), nil))[d])
}

// TestAHandedOffSendWaitsForTheBroker: a group handed off while the broker is
// down keeps its leases (renewed past their length) and is published once
// the broker is back, counted once; a send of the group recalled meanwhile
// is cleared right after.
func TestAHandedOffSendWaitsForTheBroker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	broker := brokertest.Start(t)
	// One connection: the publish that ends the test is on it, so no
	// reconnect of another is left sleeping in its backoff after the test.
	conn, err := mqttout.Dial(mqttout.Config{URL: broker.URL, Log: slog.New(slog.DiscardHandler), Connections: 1})
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	w := e.dispatches.NewWorker(dispatch.WorkerConfig{Publisher: brokerlink.Publisher{Conn: conn}, Prefix: "herald",
		Log: slog.New(slog.DiscardHandler), Lease: 5 * time.Second})
	w.Start(context.Background())
	t.Cleanup(w.Stop)
	broker.Stop()

	a, b := e.later(), e.later()
	states := e.recordWith(w, send(a, time.Now(), players("p1", "p2"), nil), send(b, time.Now(), players("p3"), nil))
	require.Equal(t, map[uuid.UUID]dispatch.State{a: dispatch.StatePublishing, b: dispatch.StatePublishing}, states)
	require.NoError(t, pgx.BeginFunc(e.ctx, e.pool, func(tx pgx.Tx) error { return dispatch.Recall(e.ctx, tx, b) }))
	// A lease of five seconds, renewed: still this replica's well after.
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		var leased int
		require.NoError(t, e.pool.QueryRow(e.ctx, `
			SELECT count(*) FROM dispatches WHERE campaign_id = ANY($1) AND leased_by IS NOT NULL AND lease_until > now()`,
			[]uuid.UUID{a, b}).Scan(&leased))
		require.Equal(t, 2, leased, "a lease ran out while the broker was down")
		time.Sleep(100 * time.Millisecond)
	}
	broker.Start()
	require.Eventually(t, func() bool {
		return e.dispatchOf(a).State == dispatch.StatePublished && e.dispatchOf(b).State == dispatch.StateRecalled
	}, patience, 10*time.Millisecond)
	require.EqualValues(t, 2, e.dispatchOf(a).Acked)
	require.EqualValues(t, 1, e.dispatchOf(b).Cleared)
	online := watch(t, broker.URL, "herald/g1/#") // what the broker retains
	require.Eventually(t, func() bool {
		held := online.held(t)
		_, recalled := held["herald/g1/player/p3/notice/"+b.String()]
		return len(held) == 2 && !recalled
	}, patience, 10*time.Millisecond)
}
