package dispatch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/dbtest"
)

// TestLeaseKeepsADispatchToOneReplica: a claimed dispatch is nobody else's
// while its lease lasts; once it ran out (moved into the past here rather than
// waited for) another replica takes it over, and the first can neither renew
// nor checkpoint any more; a released dispatch is claimed again at once.
func TestLeaseKeepsADispatchToOneReplica(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	store := NewStore(pool)
	owner := newOwner(t, pool)
	record(t, pool, owner, time.Now(), everyone, nil)
	a, b := lease{replica: "a", length: time.Minute}, lease{replica: "b", length: time.Minute}

	j, err := claimOne(ctx, store, a)
	require.NoError(t, err)
	require.NotNil(t, j)
	require.Equal(t, StatePublishing, j.state, "a claimed send is publishing")
	require.Equal(t, owner, j.campaign)
	require.Equal(t, owner.String(), j.template.Msg, "the template comes from the dispatch row")
	require.True(t, j.template.Retain)
	other, err := claimOne(ctx, store, b)
	require.NoError(t, err)
	require.Nil(t, other, "held by a")
	n, err := store.renew(ctx, a, j.id)
	require.NoError(t, err)
	require.Equal(t, 1, n, "still a's")

	_, err = pool.Exec(ctx, `UPDATE dispatches SET lease_until = now() - interval '1 second' WHERE id = $1`, j.id)
	require.NoError(t, err)
	taken, err := claimOne(ctx, store, b)
	require.NoError(t, err)
	require.NotNil(t, taken, "a's lease ran out")
	require.Equal(t, j.id, taken.id)
	require.True(t, taken.sentAt.Equal(j.sentAt), "sent_at is set once")
	n, err = store.renew(ctx, a, j.id)
	require.NoError(t, err)
	require.Zero(t, n, "a lost the lease")
	_, err = store.checkpoint(ctx, j.id, a, position{Target: 1}, Result{Acked: 1})
	require.Error(t, err, "a may not checkpoint b's dispatch")

	require.NoError(t, store.release(ctx, b.replica, j.id))
	again, err := claimOne(ctx, store, a)
	require.NoError(t, err)
	require.NotNil(t, again, "released: claimed again at once")
	require.Equal(t, j.id, again.id)
}

// claimOne claims at most one dispatch under l: nil if there is none.
func claimOne(ctx context.Context, store *Store, l lease) (*job, error) {
	jobs, err := store.claim(ctx, l, 1)
	if len(jobs) == 0 {
		return nil, err
	}
	return jobs[0], err
}

// TestClaimAndFinishMany: a replica claims as many dispatches as it asks for
// in one go, none another replica holds; finishing them in one statement
// marks published and gives back the lease of those nothing else was asked
// of, keeps it for one recalled meanwhile (and names the reason), and leaves
// out one whose lease went to another replica.
func TestClaimAndFinishMany(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	store := NewStore(pool)
	owners := make([]uuid.UUID, 5)
	for i := range owners {
		owners[i] = newOwner(t, pool)
		record(t, pool, owners[i], time.Now(), everyone, nil)
	}
	a, b := lease{replica: "a", length: time.Minute}, lease{replica: "b", length: time.Minute}
	held, err := store.claim(ctx, b, 1)
	require.NoError(t, err)
	require.Len(t, held, 1)
	jobs, err := store.claim(ctx, a, 3)
	require.NoError(t, err)
	require.Len(t, jobs, 3, "as many as asked for")
	rest, err := store.claim(ctx, a, 10)
	require.NoError(t, err)
	require.Len(t, rest, 1, "only what nobody holds")
	for _, j := range append(jobs, rest...) {
		require.NotEqual(t, held[0].id, j.id)
		require.Equal(t, StatePublishing, j.state)
	}

	recalled, stolen := jobs[1], jobs[2]
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return Recall(ctx, tx, recalled.campaign) }))
	_, err = pool.Exec(ctx, `UPDATE dispatches SET leased_by = 'b' WHERE id = $1`, stolen.id)
	require.NoError(t, err)
	now := time.Now()
	var fs []finishing
	for _, j := range jobs {
		fs = append(fs, finishing{id: j.id, next: position{Target: 1}, res: Result{Acked: 1, FirstAck: now, LastAck: now}})
	}
	done, err := store.finish(ctx, a, fs)
	require.NoError(t, err)
	require.Len(t, done, 2, "the stolen one is not a's to finish")
	require.Equal(t, finished{released: true}, done[jobs[0].id])
	require.False(t, done[recalled.id].released, "kept to clear it")
	require.Equal(t, ReasonRecall, *done[recalled.id].reason)

	state := func(id uuid.UUID) (st State, by *string, acked int64) {
		require.NoError(t, pool.QueryRow(ctx, `SELECT state, leased_by, acked FROM dispatches WHERE id = $1`, id).Scan(&st, &by, &acked))
		return st, by, acked
	}
	st, by, acked := state(jobs[0].id)
	require.Equal(t, StatePublished, st)
	require.Nil(t, by)
	require.EqualValues(t, 1, acked)
	st, by, _ = state(recalled.id)
	require.Equal(t, StatePublishing, st, "its clear reaches one batch further")
	require.Equal(t, "a", *by)
	st, _, acked = state(stolen.id)
	require.Equal(t, StatePublishing, st)
	require.Zero(t, acked)
}

// TestCheckpointsCountAndSeeAClear: checkpoints move the walk and add to the
// counters; one after a recall returns the reason; markCleared tells the owner
// only when its last dispatch is cleared, in the same transaction.
func TestCheckpointsCountAndSeeAClear(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	store := NewStore(pool)
	owner := newOwner(t, pool)
	fire := time.Now().Truncate(time.Second)
	// Two zones of a campaign in players' time: sends in one zone wait for the
	// earlier ones to be cleared (TestASendWaitsForTheEarlierSendsOfItsCampaign).
	recordIn(t, pool, owner, "Asia/Shanghai", fire, everyone, nil)
	recordIn(t, pool, owner, "Europe/Berlin", fire.Add(time.Hour), everyone, nil)
	l := lease{replica: "a", length: time.Minute}

	first, err := claimOne(ctx, store, l)
	require.NoError(t, err)
	now := time.Now()
	reason, err := store.checkpoint(ctx, first.id, l, position{Target: 1}, Result{Acked: 1, Retried: 2, FirstAck: now, LastAck: now})
	require.NoError(t, err)
	require.Nil(t, reason)
	done, err := store.finish(ctx, l, []finishing{{id: first.id, next: position{Target: 1}}})
	require.NoError(t, err)
	require.Equal(t, map[uuid.UUID]finished{first.id: {released: true}}, done, "nothing asked of it: the lease is given back")
	ds, err := Of(ctx, pool, owner)
	require.NoError(t, err)
	require.Len(t, ds, 2)
	require.Equal(t, StatePublished, ds[0].State)
	require.EqualValues(t, 1, ds[0].Acked)
	require.EqualValues(t, 2, ds[0].Retried)
	require.NotNil(t, ds[0].FirstAckAt)

	second, err := claimOne(ctx, store, l)
	require.NoError(t, err)
	require.NotEqual(t, first.id, second.id)
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return Recall(ctx, tx, owner) })
	require.NoError(t, err)
	reason, err = store.checkpoint(ctx, second.id, l, position{Target: 1}, Result{Acked: 1})
	require.NoError(t, err)
	require.NotNil(t, reason)
	require.Equal(t, ReasonRecall, *reason, "the worker learns of the recall at its checkpoint")

	var told []uuid.UUID
	hook := func(ctx context.Context, tx pgx.Tx, campaign uuid.UUID) error {
		told = append(told, campaign)
		return nil
	}
	again, err := claimOne(ctx, store, l)
	require.NoError(t, err)
	require.Equal(t, first.id, again.id, "given back when published: claimed again to be cleared")
	require.NoError(t, store.markCleared(ctx, again, "a", StateRecalled, hook))
	require.Empty(t, told, "the other dispatch is not cleared yet")

	failing := func(ctx context.Context, tx pgx.Tx, campaign uuid.UUID) error { return errors.New("owner refused") }
	require.ErrorContains(t, store.markCleared(ctx, second, "a", StateRecalled, failing), "owner refused")
	ds, err = Of(ctx, pool, owner)
	require.NoError(t, err)
	require.Nil(t, ds[1].ClearedAt, "the owner's failure rolls the clearing back")

	require.NoError(t, store.markCleared(ctx, second, "a", StateRecalled, hook))
	require.Equal(t, []uuid.UUID{owner}, told, "told once, when the last one is cleared")
	ds, err = Of(ctx, pool, owner)
	require.NoError(t, err)
	require.Equal(t, StateRecalled, ds[1].State)
	require.NotNil(t, ds[1].ClearedAt)

	byOwner, err := OfEach(ctx, pool, []uuid.UUID{owner, uuid.New()})
	require.NoError(t, err)
	require.Equal(t, map[uuid.UUID][]Dispatch{owner: ds}, byOwner)
}

// TestExpireDueAndListsInUse: expiry marks exactly the dispatches due by the
// time it is given, and a member list is in use until its dispatch is cleared.
func TestExpireDueAndListsInUse(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	store := NewStore(pool)
	owner := newOwner(t, pool)
	fire := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	list := int64(42)
	record(t, pool, owner, fire, everyone, &list)                 // expires fire + 24h
	record(t, pool, owner, fire.Add(48*time.Hour), everyone, nil) // expires fire + 72h

	n, err := store.ExpireDue(ctx, fire.Add(24*time.Hour-time.Second))
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = store.ExpireDue(ctx, fire.Add(24*time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	n, err = store.ExpireDue(ctx, fire.Add(24*time.Hour))
	require.NoError(t, err)
	require.Zero(t, n, "marked once")

	inUse, err := store.ListsInUse(ctx, []int64{41, 42})
	require.NoError(t, err)
	require.Equal(t, []int64{42}, inUse)
	_, err = pool.Exec(ctx, `UPDATE dispatches SET cleared_at = now() WHERE member_list_id = 42`)
	require.NoError(t, err)
	inUse, err = store.ListsInUse(ctx, []int64{41, 42})
	require.NoError(t, err)
	require.Empty(t, inUse)
}

// TestASendWaitsForTheEarlierSendsOfItsCampaign: the sends of one campaign
// (in one zone) share retained topics, so a later send starts only once the
// earlier ones are cleared; Replace asks for that, and they end replaced.
func TestASendWaitsForTheEarlierSendsOfItsCampaign(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	store := NewStore(pool)
	owner := newOwner(t, pool)
	fire := time.Now().Truncate(time.Second)
	record(t, pool, owner, fire, everyone, nil)
	l := lease{replica: "a", length: time.Minute}
	first, err := claimOne(ctx, store, l)
	require.NoError(t, err)
	_, err = store.finish(ctx, l, []finishing{{id: first.id, next: position{Target: 1}}})
	require.NoError(t, err)

	next := New{Campaign: owner, FireAt: fire.Add(time.Hour)}
	record(t, pool, owner, next.FireAt, everyone, nil)
	waiting, err := claimOne(ctx, store, l)
	require.NoError(t, err)
	require.Nil(t, waiting, "the first send is still out")

	busy, live, err := func() (map[Key]time.Time, map[Key]bool, error) {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx) //nolint:errcheck // read only
		return Outstanding(ctx, tx, []uuid.UUID{owner})
	}()
	require.NoError(t, err)
	require.True(t, live[Key{Campaign: owner}])
	require.Equal(t, next.FireAt.UTC(), busy[Key{Campaign: owner}].UTC(), "the next send is pending")

	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return Replace(ctx, tx, []New{next}) }))
	clearing, err := claimOne(ctx, store, l)
	require.NoError(t, err)
	require.Equal(t, first.id, clearing.id, "the first send is cleared first")
	require.Equal(t, ReasonReplace, *clearing.reason)
	require.NoError(t, store.markCleared(ctx, clearing, "a", StateReplaced, nil))
	started, err := claimOne(ctx, store, l)
	require.NoError(t, err)
	require.NotNil(t, started, "then the next one starts")
	require.Equal(t, StatePublishing, started.state)
}
