package receipts

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/dbtest"
)

// A send's UUIDv7 falls between the bounds of its day's partition.
func TestDayBounds(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 25, 23, 59, 59, 999e6, time.UTC)
	id := idAt(t, at)
	d, ok := sendDay(id)
	require.True(t, ok)
	assert.Equal(t, dayOf(at), d)
	assert.Equal(t, "receipts_p20261125", partitionName(d))
	assert.Less(t, dayBound(d).String(), id.String())
	assert.Less(t, id.String(), dayBound(d+1).String())
	assert.Equal(t, idAt(t, at.Add(time.Millisecond)).String()[:13], dayBound(d + 1).String()[:13])
	back, ok := partitionDay(partitionName(d))
	require.True(t, ok)
	assert.Equal(t, d, back)
	_, ok = sendDay(uuid.New())
	assert.False(t, ok, "a UUIDv4 is no send")
}

func partitions(t testing.TB, s *Store) []string {
	t.Helper()
	days, err := partitionDays(context.Background(), s.db)
	require.NoError(t, err)
	var names []string
	for _, d := range days {
		names = append(names, partitionName(d))
	}
	return names
}

// Maintain creates the partitions of today and the next Ahead days, and drops
// whole days past retention with their receipts. Ingestion creates the
// partition of an older send's day when it needs it, and counts the receipts
// of sends past retention as expired.
func TestPartitionsAheadAndRetention(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.NewPool(t)
	ctx := context.Background()
	now := time.Now()
	store := NewStore(db, 30*24*time.Hour)
	created, dropped, err := store.Maintain(ctx, now)
	require.NoError(t, err)
	today := dayOf(now)
	want := []string{partitionName(today), partitionName(today + 1), partitionName(today + 2)}
	assert.Equal(t, want, created)
	assert.Empty(t, dropped)
	created, _, err = store.Maintain(ctx, now)
	require.NoError(t, err)
	assert.Empty(t, created, "nothing twice")

	old := newSend(t, db, "g1", now.Add(-40*24*time.Hour))
	recent := newSend(t, db, "g1", now.Add(-5*24*time.Hour))
	in := store.NewIngester(Config{Prefix: "herald", Log: testLog()})
	in.Start(ctx)
	in.Handle(topic("g1", "p1"), payload(old, "delivered", now))
	in.Handle(topic("g1", "p1"), payload(recent, "delivered", now))
	in.Stop()
	assert.Equal(t, Counters{Received: 2, Stored: 1, Expired: 1}, in.Counters())
	recentDay := dayOf(now.Add(-5 * 24 * time.Hour))
	assert.ElementsMatch(t, append(want, partitionName(recentDay)), partitions(t, store),
		"the recent send's day got its partition, the old one's did not")
	assert.EqualValues(t, 1, count(t, db, "send_id = $1", recent))

	// 26 days on, the recent send's day is past 30 days of retention.
	later := now.Add(26 * 24 * time.Hour)
	_, dropped, err = store.Maintain(ctx, later)
	require.NoError(t, err)
	assert.Equal(t, []string{partitionName(recentDay)}, dropped)
	assert.Zero(t, count(t, db, "true"))
	assert.NotContains(t, partitions(t, store), partitionName(recentDay))
	assert.Contains(t, partitions(t, store), partitionName(dayOf(later)+Ahead))
}

// A partition dropped under a replica that knew it (another replica's clock
// ran ahead) does not lose the batch: the write finds the partition missing,
// creates it again and stores the receipts.
func TestWriteRecreatesAPartitionDroppedUnderIt(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.NewPool(t)
	ctx := context.Background()
	now := time.Now()
	send := newSend(t, db, "g1", now)
	store, in := startIngester(t, db, Config{})
	in.Handle(topic("g1", "p1"), payload(send, "delivered", now))
	waitSettled(t, in, 1)

	_, dropped, err := NewStore(db, 24*time.Hour).Maintain(ctx, now.Add(3*24*time.Hour))
	require.NoError(t, err)
	require.Contains(t, dropped, partitionName(dayOf(now)))
	missing, err := store.missingDays(ctx, []int64{dayOf(now)})
	require.NoError(t, err)
	require.Empty(t, missing, "the ingesting store still believes in it")

	in.Handle(topic("g1", "p2"), payload(send, "delivered", now))
	waitSettled(t, in, 2)
	assert.Equal(t, Counters{Received: 2, Stored: 2}, in.Counters())
	assert.EqualValues(t, 1, count(t, db, "player_id = 'p2'"))
}
