package campaigns_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/internal/clocktest"
	"github.com/heraldpush/herald/internal/dbtest"
)

// TestSchedulesFollowTheStoreClock moves the store's clock instead of waiting:
// a send-now campaign is sent at the clock's time and lives 7 days; an {"at"}
// one is scheduled, not due before its time, sent at it, and a fire found
// later than the grace period is recorded as missed.
func TestSchedulesFollowTheStoreClock(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "test"})
	start := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := clocktest.New(start)
	store := campaigns.NewStore(pool, 0).WithClock(clock.Now)
	_, err := games.NewStore(pool).Create(ctx, games.Game{ID: "g1", Name: "g1", DefaultLocale: "en"})
	require.NoError(t, err)
	create := func(schedule string) campaigns.Campaign {
		var in campaigns.Input
		require.NoError(t, json.Unmarshal(fmt.Appendf(nil, `{"kind":"notice","name":"n","audience":{"rule":{"everyone":true}},
			"content":{"title":{"en":"t"},"body":{"en":"b"}}%s}`, schedule), &in))
		c, err := store.Create(ctx, "g1", in)
		require.NoError(t, err)
		return c
	}

	now := create("")
	require.Equal(t, campaigns.StatusLive, now.Status)
	require.True(t, now.SendAt.Equal(start), "sent at the clock's time, %v", now.SendAt)
	require.True(t, now.ExpiresAt.Equal(start.Add(campaigns.NoticeLifetime)))
	require.Len(t, now.Dispatches, 1)

	later := create(fmt.Sprintf(`,"schedule":{"at":%q}`, start.Add(time.Hour).Format(time.RFC3339)))
	require.Equal(t, campaigns.StatusScheduled, later.Status)
	missed := create(fmt.Sprintf(`,"schedule":{"at":%q}`, start.Add(2*time.Hour).Format(time.RFC3339)))

	clock.Add(59 * time.Minute)
	fired, err := store.FireDue(ctx, clock.Now(), 5*time.Minute)
	require.NoError(t, err)
	require.Zero(t, fired, "nothing is due a minute early")

	clock.Add(time.Minute)
	fired, err = store.FireDue(ctx, clock.Now(), 5*time.Minute)
	require.NoError(t, err)
	require.Equal(t, 1, fired)
	got, err := store.Get(ctx, "g1", later.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StatusLive, got.Status)
	require.Equal(t, dispatch.StatePending, got.Dispatches[0].State)

	clock.Add(time.Hour + 6*time.Minute) // the second fire, found 6 minutes late
	fired, err = store.FireDue(ctx, clock.Now(), 5*time.Minute)
	require.NoError(t, err)
	require.Equal(t, 1, fired)
	got, err = store.Get(ctx, "g1", missed.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StatusCompleted, got.Status)
	require.Equal(t, dispatch.StateMissed, got.Dispatches[0].State)

	var in campaigns.Input
	require.NoError(t, json.Unmarshal(fmt.Appendf(nil, `{"kind":"notice","name":"n","audience":{"rule":{"everyone":true}},
		"content":{"title":{"en":"t"},"body":{"en":"b"}},"schedule":{"at":%q}}`, start.Format(time.RFC3339)), &in))
	_, err = store.Create(ctx, "g1", in)
	require.ErrorContains(t, err, "schedule.at", "by the store's clock, the start is in the past")
}
