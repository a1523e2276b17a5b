package idempotency_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/idempotency"
	"github.com/heraldpush/herald/internal/dbtest"
)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newStore(t *testing.T) (*idempotency.Store, *clock) {
	pool, _ := dbtest.NewPool(t)
	c := &clock{now: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	return idempotency.NewStore(pool, c.Now), c
}

func request(key, body string) idempotency.Request {
	return idempotency.Request{KeyID: uuid.MustParse("01a214d1-eb0d-78a0-a273-2ad44985fccd"), Key: key,
		Hash: idempotency.Hash("POST", "/v1/games", "", []byte(body))}
}

func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	s, c := newStore(t)
	ctx := context.Background()
	req := request("k", `{"id":"g1"}`)

	first, err := s.Begin(ctx, req)
	require.NoError(t, err)
	require.Equal(t, idempotency.Owned, first.Outcome)
	busy, err := s.Begin(ctx, req)
	require.NoError(t, err)
	require.Equal(t, idempotency.InProgress, busy.Outcome, "a retry while the first is at work")
	other, err := s.Begin(ctx, request("k", `{"id":"g2"}`))
	require.NoError(t, err)
	require.Equal(t, idempotency.Mismatch, other.Outcome)

	resp := idempotency.Response{Status: 201, Headers: map[string]string{"Location": "/v1/games/g1"}, Body: []byte(`{"id":"g1"}`)}
	require.NoError(t, s.Finish(ctx, req, first.Owner, resp))
	replay, err := s.Begin(ctx, req)
	require.NoError(t, err)
	require.Equal(t, idempotency.Claim{Outcome: idempotency.Replay, Response: resp}, replay)

	c.add(idempotency.TTL - time.Second)
	n, err := s.Purge(ctx, 100)
	require.NoError(t, err)
	require.Zero(t, n, "kept 24 hours")
	c.add(time.Second)
	n, err = s.Purge(ctx, 100)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	again, err := s.Begin(ctx, req)
	require.NoError(t, err)
	require.Equal(t, idempotency.Owned, again.Outcome, "a purged key is new")
}

func TestKeyOfADeadOwnerIsTakenOver(t *testing.T) {
	t.Parallel()
	s, c := newStore(t)
	ctx := context.Background()
	req := request("k", `{}`)
	dead, err := s.Begin(ctx, req)
	require.NoError(t, err)
	c.add(idempotency.Lease - time.Second)
	busy, err := s.Begin(ctx, req)
	require.NoError(t, err)
	require.Equal(t, idempotency.InProgress, busy.Outcome)

	c.add(time.Second)
	mismatch, err := s.Begin(ctx, request("k", `{"other":1}`))
	require.NoError(t, err)
	require.Equal(t, idempotency.Mismatch, mismatch.Outcome, "only the same request takes a key over")
	heir, err := s.Begin(ctx, req)
	require.NoError(t, err)
	require.Equal(t, idempotency.Owned, heir.Outcome, "the lease passed: its replica is presumed dead")

	require.NoError(t, s.Finish(ctx, req, dead.Owner, idempotency.Response{Status: 500}), "a late owner's answer is dropped")
	busy, err = s.Begin(ctx, req)
	require.NoError(t, err)
	require.Equal(t, idempotency.InProgress, busy.Outcome)
	require.NoError(t, s.Abandon(ctx, req, heir.Owner))
	free, err := s.Begin(ctx, req)
	require.NoError(t, err)
	require.Equal(t, idempotency.Owned, free.Outcome, "an abandoned key is free")
}
