package receipts

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/dbtest"
)

// Every message on the receipts topics ends in exactly one counter: stored
// once per (send, player, event), a duplicate, malformed, an unknown send or
// another game's send; the game and player come from the topic.
func TestIngestCountsEachReceiptOnce(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.NewPool(t)
	now := time.Now().Truncate(time.Millisecond)
	s1 := newSend(t, db, "g1", now.Add(-time.Minute))
	newSend(t, db, "g2", now.Add(-time.Minute))
	clock := now.Add(time.Second)
	_, in := startIngester(t, db, Config{Now: func() time.Time { return clock }})

	at := now.Add(-30 * time.Second)
	in.Handle(topic("g1", "p1"), payload(s1, "delivered", at))
	in.Handle(topic("g1", "p1"), payload(s1, "displayed", at))
	in.Handle(topic("g1", "p2"), payload(s1, "delivered", at))
	in.Handle(topic("g1", "p1"), payload(s1, "delivered", at)) // twice in a batch
	waitSettled(t, in, 4)
	in.Handle(topic("g1", "p1"), payload(s1, "delivered", at)) // again, in a later batch
	in.Handle(topic("g1", "p2"), payload(s1, "clicked", at))

	// Malformed: payloads and topics that are no receipt.
	in.Handle(topic("g1", "p1"), []byte(`{"id":1}`))
	in.Handle(topic("g1", "p1"), []byte(`{"id":"`+s1.String()+`","e":"liked","t":1}`))
	in.Handle("other/g1/receipts/p1", payload(s1, "delivered", at))
	in.Handle("herald/g1/receipts/p1/more", payload(s1, "delivered", at))
	in.Handle("herald/g1/notices/p1", payload(s1, "delivered", at))
	// Unknown sends: a UUIDv7 nobody sent, a UUIDv4, an id that is no UUID.
	in.Handle(topic("g1", "p1"), payload(idAt(t, now), "delivered", at))
	in.Handle(topic("g1", "p1"), payload(uuid.New(), "delivered", at))
	in.Handle(topic("g1", "p1"), []byte(`{"id":"not-a-uuid","e":"delivered","t":1}`))
	// Another game's send: g1's dispatch reported on g2's topic.
	in.Handle(topic("g2", "p1"), payload(s1, "delivered", at))
	waitSettled(t, in, 15)

	c := in.Counters()
	assert.Equal(t, Counters{Received: 15, Stored: 4, Duplicates: 2, Malformed: 5, UnknownSend: 3, OtherGame: 1}, c)

	rows, err := db.Query(context.Background(), `SELECT send_id, game_id, player_id, event, client_at, received_at
		FROM receipts ORDER BY player_id, event`)
	require.NoError(t, err)
	type stored struct {
		Send                 uuid.UUID
		Game, Player, Event  string
		ClientAt, ReceivedAt time.Time
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[stored])
	require.NoError(t, err)
	require.Len(t, got, 4)
	var keys []string
	for _, r := range got {
		assert.Equal(t, s1, r.Send)
		assert.Equal(t, "g1", r.Game)
		assert.True(t, r.ClientAt.Equal(at), "client_at is the receipt's t")
		assert.True(t, r.ReceivedAt.Equal(clock), "received_at is Herald's clock")
		keys = append(keys, r.Player+" "+r.Event)
	}
	assert.Equal(t, []string{"p1 delivered", "p1 displayed", "p2 clicked", "p2 delivered"}, keys)
}

// After each batch, the sends of its new delivered receipts are announced on
// NotifyChannel; duplicates and other events are not.
func TestIngestNotifiesNewDeliveries(t *testing.T) {
	t.Parallel()
	db, url := dbtest.NewPool(t)
	ctx := context.Background()
	listener, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer listener.Close(ctx)
	_, err = listener.Exec(ctx, "LISTEN "+NotifyChannel)
	require.NoError(t, err)
	next := func() []string {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, patience)
		defer cancel()
		n, err := listener.WaitForNotification(wctx)
		require.NoError(t, err)
		var p struct{ IDs []string }
		require.NoError(t, json.Unmarshal([]byte(n.Payload), &p), n.Payload)
		return p.IDs
	}

	now := time.Now()
	a, b, c := newSend(t, db, "g1", now), newSend(t, db, "g1", now), newSend(t, db, "g1", now)
	_, in := startIngester(t, db, Config{})
	in.Handle(topic("g1", "p1"), payload(a, "delivered", now))
	in.Handle(topic("g1", "p1"), payload(b, "displayed", now))
	assert.Equal(t, []string{a.String()}, next())
	in.Handle(topic("g1", "p1"), payload(a, "delivered", now)) // a duplicate
	waitSettled(t, in, 3)
	in.Handle(topic("g1", "p2"), payload(c, "delivered", now))
	assert.Equal(t, []string{c.String()}, next(), "the duplicate announced nothing")
}

// Long lists of sends are split into notifications Postgres takes.
func TestNotifyPayloadsSplit(t *testing.T) {
	t.Parallel()
	var ids []string
	for range 500 {
		ids = append(ids, uuid.NewString())
	}
	var got []string
	payloads := notifyPayloads(ids)
	require.Greater(t, len(payloads), 1)
	for _, p := range payloads {
		assert.LessOrEqual(t, len(p), notifyMax)
		var body struct{ IDs []string }
		require.NoError(t, json.Unmarshal([]byte(p), &body), p)
		got = append(got, body.IDs...)
	}
	assert.Equal(t, ids, got)
	assert.Empty(t, notifyPayloads(nil))
}

// While Postgres does not take receipts, the Ingester holds at most Buffer
// plus a Batch per writer, and Handle blocks (the broker connection with it)
// instead of queueing more; once Postgres takes them again, every receipt is
// stored.
func TestIngestBlocksWhenTheBufferIsFull(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.NewPool(t)
	ctx := context.Background()
	send := newSend(t, db, "g1", time.Now())
	store, in := startIngester(t, db, Config{Buffer: 20, Batch: 10, FlushEvery: time.Hour})
	_, _, err := store.Maintain(ctx, time.Now())
	require.NoError(t, err)

	lock, err := db.Begin(ctx)
	require.NoError(t, err)
	defer lock.Rollback(ctx) //nolint:errcheck // released below, or at the end
	_, err = lock.Exec(ctx, `LOCK TABLE receipts IN EXCLUSIVE MODE`)
	require.NoError(t, err)

	const n = 100
	var handled atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			in.Handle(topic("g1", fmt.Sprintf("p%d", i)), payload(send, "delivered", time.Now()))
			handled.Add(1)
		}
	}()
	// Each writer waits for the lock with a batch (the first written at once,
	// however small; the second filled to 10 meanwhile); 20 wait in the
	// buffer; the next receipt is in Handle, which cannot return: the count
	// received stays one above the count held. The buffer must be seen full:
	// one above also holds for a moment while a receipt is between being
	// counted and being buffered, and a loaded machine can stretch that moment
	// over two looks.
	last := int64(-1)
	waitProgress(t, "the writers blocked and the buffer full", func() bool {
		c := in.Counters()
		require.LessOrEqual(t, c.Buffered, int64(40), "more receipts held than Buffer + a Batch per writer")
		stable := c.Received == last
		last = c.Received
		return stable && c.Received == c.Buffered+1 && c.Buffered > 20 && len(in.buf) == cap(in.buf) && writersWaitForLock(t, db) == writers
	}, func() int64 { return in.Counters().Received })
	assert.EqualValues(t, last-1, handled.Load(), "Handle returned for the last receipt with the buffer full")
	select {
	case <-done:
		t.Fatal("every receipt was handed over while Postgres took none")
	default:
	}

	require.NoError(t, lock.Rollback(ctx))
	<-done
	waitSettled(t, in, n)
	assert.EqualValues(t, n, in.Counters().Stored)
	assert.EqualValues(t, n, count(t, db, "send_id = $1", send))
}

// writersWaitForLock counts the sessions of db that wait for a lock on an
// insert into receipts.
func writersWaitForLock(t testing.TB, db interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) int {
	var n int
	require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO receipts%'`).Scan(&n))
	return n
}

// Stop writes everything received before it returns, whatever the batching.
func TestStopWritesWhatWasReceived(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.NewPool(t)
	send := newSend(t, db, "g1", time.Now())
	store := NewStore(db, 0)
	in := store.NewIngester(Config{Prefix: "herald", Buffer: 1000, Batch: 1000, FlushEvery: time.Hour, Log: testLog()})
	in.Start(context.Background())
	for i := range 500 {
		in.Handle(topic("g1", fmt.Sprintf("p%d", i)), payload(send, "delivered", time.Now()))
	}
	in.Stop()
	assert.EqualValues(t, 500, count(t, db, "true"))
	assert.EqualValues(t, 500, in.Counters().Stored)
}

// Stop takes at most StopTimeout: receipts it could not write by then are
// counted Failed, not waited for.
func TestStopGivesUpWhenOutOfTime(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.NewPool(t)
	ctx := context.Background()
	send := newSend(t, db, "g1", time.Now())
	store := NewStore(db, 0)
	_, _, err := store.Maintain(ctx, time.Now())
	require.NoError(t, err)
	lock, err := db.Begin(ctx)
	require.NoError(t, err)
	defer lock.Rollback(ctx) //nolint:errcheck // the test's end
	_, err = lock.Exec(ctx, `LOCK TABLE receipts IN EXCLUSIVE MODE`)
	require.NoError(t, err)

	in := store.NewIngester(Config{Prefix: "herald", StopTimeout: time.Second, FlushEvery: time.Hour, Log: testLog()})
	in.Start(ctx)
	for i := range 5 {
		in.Handle(topic("g1", fmt.Sprintf("p%d", i)), payload(send, "delivered", time.Now()))
	}
	in.Stop()
	assert.EqualValues(t, 5, in.Counters().Failed)
	assert.Zero(t, in.Counters().Buffered)
	in.Handle(topic("g1", "late"), payload(send, "delivered", time.Now()))
	assert.EqualValues(t, 6, in.Counters().Failed, "a receipt after Stop is not waited for")
}

// The topic decides the game and the player: ids in the payload that name
// another player change nothing.
func TestPlayerComesFromTheTopic(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.NewPool(t)
	send := newSend(t, db, "g1", time.Now())
	_, in := startIngester(t, db, Config{})
	in.Handle(topic("g1", "p1"), []byte(`{"id":"`+send.String()+`","e":"delivered","t":1,"player":"p2","game":"g2"}`))
	waitSettled(t, in, 1)
	assert.EqualValues(t, 1, count(t, db, "player_id = 'p1' AND game_id = 'g1'"))
	assert.Zero(t, count(t, db, "player_id = 'p2' OR game_id = 'g2'"))
}
