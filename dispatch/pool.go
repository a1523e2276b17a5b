package dispatch

import (
	"context"
	"sync"
	"time"

	"github.com/heraldpush/herald/postgres"
)

// claimers is how many claims one replica has under way at once, at most:
// when Postgres answers slowly (a busy machine), one claim at a time leaves
// workers idle while thousands of sends wait.
const claimers = 2

// work claims dispatches and runs each in a goroutine of its own, at most
// Workers at once, until ctx ends; then it waits for them. Whenever workers
// are free, a claimer claims as many dispatches as there are free workers in
// one statement (Store.claim), so that a minute when thousands of small sends
// are due costs a round trip per claim, not per send; a claim that finds
// nothing waits Poll.
func (w *Worker) work(ctx context.Context) {
	var background sync.WaitGroup
	background.Go(func() { w.finisher.run(ctx) })
	background.Go(func() { w.listen(ctx) })
	defer background.Wait()
	w.accept(ctx)
	defer w.refuse()
	var running sync.WaitGroup
	defer running.Wait()
	free := make(chan struct{}, w.cfg.Workers) // holds a token per busy worker
	var claiming sync.WaitGroup
	for range min(claimers, w.cfg.Workers) {
		claiming.Go(func() { w.claimLoop(ctx, free, &running) })
	}
	claiming.Wait()
}

// busyPoll is how soon a claimer that found work within busySpell looks
// again once it finds none: the fires of a busy minute are recorded a few
// hundred at a time, and each batch should not wait a whole Poll.
const (
	busyPoll  = 20 * time.Millisecond
	busySpell = time.Second
)

// claimLoop claims for the free workers and starts each dispatch it claimed
// in running, until ctx ends.
func (w *Worker) claimLoop(ctx context.Context, free chan struct{}, running *sync.WaitGroup) {
	var found time.Time // when a claim last found work
	for {
		n := take(ctx, free)
		if n == 0 {
			return
		}
		woken := w.woken() // taken before the claim: work recorded during it wakes this claimer
		jobs, wait := w.claim(ctx, n)
		if len(jobs) > 0 {
			found = time.Now()
		} else if time.Since(found) < busySpell {
			wait = min(wait, busyPoll)
		}
		for range n - len(jobs) {
			<-free
		}
		for _, j := range jobs {
			running.Go(func() {
				defer func() { <-free }()
				w.runLogged(ctx, j)
			})
		}
		if len(jobs) == 0 && !sleep(ctx, wait, woken) {
			return
		}
	}
}

// take waits for a free worker and returns how many are free, each now
// marked busy in free; 0 once ctx ended.
func take(ctx context.Context, free chan struct{}) int {
	select {
	case free <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for {
		select {
		case free <- struct{}{}:
			n++
		default:
			return n
		}
	}
}

// claim claims up to n dispatches (Store.claim). With none, it returns how
// long to wait before the next claim: Poll, or a gentler pace while the
// database is unavailable.
func (w *Worker) claim(ctx context.Context, n int) ([]*job, time.Duration) {
	claimCtx, cancel := context.WithTimeout(ctx, w.cfg.Lease) // a claim slower than a lease is stale anyway
	defer cancel()
	jobs, err := w.store.claim(claimCtx, w.lease(), n)
	switch {
	case err != nil && ctx.Err() == nil && postgres.Unavailable(err):
		// Postgres is down or frozen: say so at a gentler pace; the work
		// resumes from its checkpoints once it is back.
		w.cfg.Log.WarnContext(ctx, "claim dispatch: database unavailable", "err", err)
		return nil, max(w.cfg.Poll, time.Second)
	case err != nil && ctx.Err() == nil:
		w.cfg.Log.ErrorContext(ctx, "claim dispatch", "err", err)
	}
	return jobs, w.cfg.Poll
}

// sleep sleeps for d or until woken is closed, and reports whether ctx is
// still alive.
func sleep(ctx context.Context, d time.Duration, woken <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-woken:
	}
	return true
}
