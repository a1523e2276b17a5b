package kickouts

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/receipts"
)

// TestWaitIsWokenByAReceiptNotification: a waiting request whose own re-reads
// are an hour apart answers as soon as another replica's ingestion stores the
// receipt and notifies herald_receipts.
func TestWaitIsWokenByAReceiptNotification(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Recheck = time.Hour })
	f.start(t)
	st, done := f.kickAndWait(t, "p1", "p2")
	// Another replica's ingestion: today's partition (its scheduler leader
	// keeps them), the rows, then the notification once they are committed.
	_, _, err := f.svc.cfg.Receipts.Maintain(context.Background(), time.Now())
	require.NoError(t, err)
	receipt := func(player string) {
		t.Helper()
		_, err := f.svc.cfg.DB.Exec(context.Background(), `
			INSERT INTO receipts (send_id, game_id, player_id, event, client_at, received_at)
			VALUES ($1, 'g1', $2, 'delivered', now(), now())`, st.ID, player)
		require.NoError(t, err)
	}
	notify := func(payload string) {
		t.Helper()
		_, err := f.svc.cfg.DB.Exec(context.Background(), `SELECT pg_notify($1, $2)`, receipts.NotifyChannel, payload)
		require.NoError(t, err)
	}
	// The hub listens from Start on; until its LISTEN is in, a notification is
	// missed. Keep notifying (harmless: each wakes the waiter to re-read) until
	// the waiter answers.
	receipt("p1")
	receipt("p2")
	deadline := time.After(patience)
	for {
		notify(`{"ids":["` + st.ID.String() + `"]}`)
		select {
		case r := <-done:
			require.NoError(t, r.err)
			require.Equal(t, StateDelivered, r.st.State)
			require.Equal(t, 2, r.st.Counts.Delivered)
			for _, p := range r.st.Players {
				require.Equal(t, PlayerDelivered, p.Status)
				require.NotNil(t, p.DeliveredAt)
			}
			return
		case <-deadline:
			t.Fatal("the waiting request was never woken")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestWaitEndsWithTheWaitOrTheTTL: without receipts a wait answers when it
// ends (players still published) or, sooner, when the ttl passes (not
// delivered).
func TestWaitEndsWithTheWaitOrTheTTL(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.start(t)
	reason, ttl := "ban", 2
	st, err := f.create(Input{Players: []string{"p1"}, Reason: &reason, TTLS: &ttl})
	require.NoError(t, err)
	short, err := f.svc.Wait(f.ctx, "g1", st.ID, 100*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, StatePublished, short.State, "the wait ended first")
	require.Equal(t, PlayerPublished, short.Players[0].Status)

	long, err := f.svc.Wait(f.ctx, "g1", st.ID, MaxWait)
	require.NoError(t, err)
	require.Equal(t, StateExpired, long.State, "the ttl passed first")
	require.Equal(t, PlayerNotDelivered, long.Players[0].Status)
	require.False(t, time.Now().Before(long.ExpiresAt))

	srv, err := f.create(Input{Server: ptr("s1"), Reason: &reason, TTLS: &ttl})
	require.NoError(t, err)
	done, err := f.svc.Wait(f.ctx, "g1", srv.ID, MaxWait)
	require.NoError(t, err)
	require.Equal(t, StateExpired, done.State, "a server kick-out is held until its ttl passes")
	require.Empty(t, done.Players)
}

func ptr[T any](v T) *T { return &v }

// TestDrainEndsWaits: a replica shutting down answers its waiting requests at
// once with the status as it stands.
func TestDrainEndsWaits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.start(t)
	reason := "ban"
	st, err := f.create(Input{Players: []string{"p1"}, Reason: &reason})
	require.NoError(t, err)
	done := make(chan Status, 1)
	go func() {
		st, err := f.svc.Wait(context.Background(), "g1", st.ID, MaxWait)
		assert.NoError(t, err)
		done <- st
	}()
	f.svc.Drain()
	select {
	case got := <-done:
		require.Equal(t, StatePublished, got.State)
	case <-time.After(MaxWait):
		t.Fatal("the wait did not end with the drain")
	}
	after, err := f.svc.Wait(f.ctx, "g1", st.ID, MaxWait)
	require.NoError(t, err)
	require.Equal(t, StatePublished, after.State, "a wait that starts while draining answers at once")
}
