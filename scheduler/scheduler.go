// Package scheduler decides when things are sent and cleared: it fires scheduled
// campaigns when their time comes, marks expired dispatches for clearing, and
// purges member lists nobody needs. One replica at a time leads it, chosen by a
// Postgres advisory lock that passes to another replica when the leader dies.
package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldpush/herald/internal/startstop"
	"github.com/heraldpush/herald/postgres"
)

// Campaigns fires scheduled campaigns (campaigns.Store).
type Campaigns interface {
	FireDue(ctx context.Context, now time.Time, grace time.Duration) (int, error)
}

// Dispatches marks expired sends for clearing and says which member lists
// sends still need (dispatch.Store).
type Dispatches interface {
	ExpireDue(ctx context.Context, now time.Time) (int64, error)
	ListsInUse(ctx context.Context, lists []int64) ([]int64, error)
}

// Lists purges the member lists segments replaced (segments.Store).
type Lists interface {
	PurgeRetiredLists(ctx context.Context, inUse func(context.Context, []int64) ([]int64, error)) (int64, error)
}

// Config configures the scheduler.
type Config struct {
	DB         *pgxpool.Pool
	Campaigns  Campaigns
	Dispatches Dispatches
	Lists      Lists
	Log        *slog.Logger
	// Tick is how often the leader looks for due work (default 250 ms): expiry
	// and scheduled sends happen within about one tick of their time.
	Tick time.Duration
	// Grace is how late a fire may still be sent after Herald was down
	// (default 5 minutes); later ones are recorded as missed.
	Grace time.Duration
	// Now is the scheduler's clock (default time.Now): what is due and what
	// expired is judged by it.
	Now func() time.Time
	// StepTimeout bounds each database step of the leader (default 5 s): the
	// leadership check, marking expiries, each purge round. Each campaign's
	// fire has its own bound (campaigns.Store.FireDue).
	StepTimeout time.Duration
	// Janitors are further bulk deletions the janitor runs each tick.
	Janitors []Janitor
}

// Janitor is a bulk deletion: each call of Purge deletes a bounded batch of
// what is no longer needed and says how much went.
type Janitor struct {
	What  string // what it deletes, for the log: "expired idempotency keys"
	Purge func(ctx context.Context) (int64, error)
}

// leaderLock is the advisory lock key whose holder leads the scheduler.
const leaderLock = 0x4865_7261_6c64 // "Herald"

// Scheduler is the leader loop.
type Scheduler struct {
	cfg  Config
	life startstop.Service

	mu     sync.Mutex
	leader bool
}

// New returns a scheduler; Start runs it.
func New(cfg Config) *Scheduler {
	if cfg.Tick <= 0 {
		cfg.Tick = 250 * time.Millisecond
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Minute
	}
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Scheduler{cfg: cfg}
}

// Start starts the loop and returns at once. Only the first call starts
// anything.
func (s *Scheduler) Start(ctx context.Context) {
	s.life.Start(ctx, s.run)
}

// Stop stops the loop, giving up leadership, and waits for it.
func (s *Scheduler) Stop() {
	s.life.Stop()
}

// Leader reports whether this replica leads the scheduler now.
func (s *Scheduler) Leader() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leader
}

func (s *Scheduler) setLeader(v bool) {
	s.mu.Lock()
	s.leader = v
	s.mu.Unlock()
}

// run holds the advisory lock on one dedicated connection: the lock lives exactly
// as long as that session, so a leader that dies or loses Postgres hands over.
func (s *Scheduler) run(ctx context.Context) {
	defer s.setLeader(false)
	for ctx.Err() == nil {
		conn, got := s.tryLead(ctx)
		if conn == nil {
			s.wait(ctx, time.Second)
			continue
		}
		if !got {
			conn.Release()
			s.wait(ctx, s.cfg.Tick*4)
			continue
		}
		s.setLeader(true)
		s.cfg.Log.InfoContext(ctx, "scheduler leadership taken")
		s.lead(ctx, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
			defer cancel()
			_, err := conn.Exec(ctx, `SELECT 1`)
			return err
		})
		s.setLeader(false)
		// Closing the session releases the lock whatever state it is in (a
		// frozen server releases it when it runs again and sees the close).
		closeCtx, cancel := context.WithTimeout(context.Background(), s.cfg.StepTimeout)
		_ = conn.Conn().Close(closeCtx)
		cancel()
		conn.Release()
		s.cfg.Log.InfoContext(ctx, "scheduler leadership given up")
	}
}

// tryLead takes a connection and tries the leader lock on it, within
// StepTimeout. It returns a nil connection if Postgres could not be reached.
func (s *Scheduler) tryLead(ctx context.Context) (*pgxpool.Conn, bool) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
	defer cancel()
	conn, err := s.cfg.DB.Acquire(ctx)
	if err != nil {
		return nil, false
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, leaderLock).Scan(&got); err != nil {
		conn.Release()
		return nil, false
	}
	return conn, got
}

// lead does the leader's work every tick until ctx ends or the lock's session
// fails. The first tick clears what expired while Herald was down before it
// sends anything. The janitor runs beside the ticks, so that deleting a long
// member list never delays a send or an expiry.
func (s *Scheduler) lead(ctx context.Context, alive func(context.Context) error) {
	janitorCtx, stopJanitor := context.WithCancel(ctx)
	var janitor sync.WaitGroup
	janitor.Go(func() { s.janitor(janitorCtx) })
	defer func() {
		stopJanitor()
		janitor.Wait()
	}()
	for {
		if err := alive(ctx); err != nil {
			if !errors.Is(err, context.Canceled) {
				s.cfg.Log.WarnContext(ctx, "scheduler lost its leader session", "err", err)
			}
			return
		}
		s.tick(ctx, s.cfg.Now())
		if !s.wait(ctx, s.cfg.Tick) {
			return
		}
	}
}

// tick marks expired dispatches, then fires due campaigns, each step within
// its own time: a step that fails is logged and tried again at the next tick.
func (s *Scheduler) tick(ctx context.Context, now time.Time) {
	step, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
	n, err := s.cfg.Dispatches.ExpireDue(step, now)
	cancel()
	if err != nil {
		s.logErr(ctx, "expire dispatches", err)
	} else if n > 0 {
		s.cfg.Log.InfoContext(ctx, "dispatches expired", "count", n)
	}
	fired, err := s.cfg.Campaigns.FireDue(ctx, now, s.cfg.Grace)
	if err != nil {
		s.logErr(ctx, "fire scheduled campaigns", err)
	}
	if fired > 0 {
		s.cfg.Log.InfoContext(ctx, "scheduled campaigns fired", "count", fired)
	}
}

// janitor purges retired member lists, and what the Janitors delete, every
// tick until ctx ends. Each round has StepTimeout; a long list is deleted over
// as many rounds as it takes.
func (s *Scheduler) janitor(ctx context.Context) {
	lists := Janitor{What: "retired member lists", Purge: func(ctx context.Context) (int64, error) {
		return s.cfg.Lists.PurgeRetiredLists(ctx, s.cfg.Dispatches.ListsInUse)
	}}
	jobs := append([]Janitor{lists}, s.cfg.Janitors...)
	for s.wait(ctx, s.cfg.Tick) {
		for _, j := range jobs {
			round, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
			n, err := j.Purge(round)
			cancel()
			switch {
			case err != nil && !errors.Is(err, context.DeadlineExceeded):
				s.logErr(ctx, "purge "+j.What, err)
			case n > 0:
				s.cfg.Log.InfoContext(ctx, j.What+" purged", "count", n)
			}
		}
	}
}

func (s *Scheduler) logErr(ctx context.Context, what string, err error) {
	switch {
	case ctx.Err() != nil:
	case postgres.Unavailable(err): // retried at the next tick; an outage is no bug
		s.cfg.Log.WarnContext(ctx, what+": database unavailable", "err", err)
	default:
		s.cfg.Log.ErrorContext(ctx, what, "err", err)
	}
}

// wait sleeps for d and reports whether ctx is still alive.
func (s *Scheduler) wait(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
