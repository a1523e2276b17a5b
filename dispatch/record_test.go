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
			got, err = RecordAll(ctx, tx, []New{send})
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
