package dispatch

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

// TestRecordAllHandsBackWhatItRecorded: a fire time finer than Postgres keeps
// (a send made now carries nanoseconds) still hands back the send it recorded,
// whole, so that the caller can replace the earlier sends of its campaign; a
// fire recorded already is not handed back.
func TestRecordAllHandsBackWhatItRecorded(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	owner := newOwner(t, pool)
	fire := time.Now()
	if fire.Nanosecond()%1000 == 0 {
		fire = fire.Add(123 * time.Nanosecond)
	}
	send := New{
		Campaign: owner, FireAt: fire, State: StatePending,
		Template: Template{Kind: protocol.KindNotice, Game: "g1", Msg: owner.String(),
			Content: json.RawMessage(`{"title":{"en":"t"},"body":{"en":"b"}}`), Priority: 5,
			ExpiresAt: fire.Add(time.Hour), Retain: true},
		Plan: segments.Plan{Targets: everyone, Topics: 1},
	}
	recordAll := func() []New {
		var got []New
		require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) (err error) {
			got, _, err = RecordAll(ctx, tx, []New{send}, nil)
			return err
		}))
		return got
	}
	got := recordAll()
	require.Len(t, got, 1)
	require.Equal(t, owner, got[0].Campaign, "the send handed back is the one recorded, not a zero value")
	require.Equal(t, send.Template.Msg, got[0].Template.Msg)
	require.Empty(t, recordAll(), "recorded already")
}

// TestAcksSpanEveryBatch: with two batches in flight a later batch's acks may
// come before an earlier one's; the dispatch's first and last acks are still
// the earliest and the latest of all (the fan-out rate is read from them).
func TestAcksSpanEveryBatch(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	store := NewStore(pool)
	owner := newOwner(t, pool)
	record(t, pool, owner, time.Now(), everyone, nil)
	l := lease{replica: "a", length: time.Minute}
	jobs, err := store.claim(ctx, l, 1)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	j := jobs[0]
	t0 := time.Now().Truncate(time.Millisecond)
	_, err = store.checkpoint(ctx, j.id, l, position{Target: 0, After: "p1"}, Result{Acked: 1, FirstAck: t0.Add(time.Second), LastAck: t0.Add(3 * time.Second)})
	require.NoError(t, err)
	_, err = store.finish(ctx, l, []finishing{{id: j.id, next: position{Target: 1}, res: Result{Acked: 1, FirstAck: t0, LastAck: t0.Add(2 * time.Second)}}})
	require.NoError(t, err)
	var first, last time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT first_ack_at, last_ack_at FROM dispatches WHERE id = $1`, j.id).Scan(&first, &last))
	require.True(t, first.Equal(t0), "first ack %s, want the second batch's %s", first, t0)
	require.True(t, last.Equal(t0.Add(3*time.Second)), "last ack %s, want the first batch's %s", last, t0.Add(3*time.Second))
}
