// Package scheduler decides when things are sent and cleared: it fires scheduled
// campaigns when their time comes, marks expired dispatches for clearing, and
// purges member lists nobody needs. One replica at a time leads it, chosen by a
// Postgres advisory lock that passes to another replica when the leader dies.
//
// The leader does not poll: it sleeps until the next fire or expiry, and a
// change to when campaigns fire wakes it at once through LISTEN on the session
// that holds the lock. It still looks every Poll, in case a notification was
// lost, and pings its session often enough that a leader which froze or lost
// its database is cut off by Postgres (idle_session_timeout) within
// LeaderTimeout, so that another replica takes over.
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
	// NextFire is the send_at of the next fire; zero when none is scheduled.
	NextFire(ctx context.Context) (time.Time, error)
}

// Dispatches marks expired sends for clearing and says which member lists
// sends still need (dispatch.Store).
type Dispatches interface {
	ExpireDue(ctx context.Context, now time.Time) (int64, error)
	// NextExpiry is the earliest expires_at of a send still out; zero when none.
	NextExpiry(ctx context.Context) (time.Time, error)
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
	// Tick is the shortest wait of the leader between rounds (default 250 ms),
	// when a round left due work behind (a fire that failed); a standby tries
	// for leadership every 4 ticks.
	Tick time.Duration
	// Poll is the longest the leader sleeps without looking for due work
	// (default 5 s), and how often the janitor runs.
	Poll time.Duration
	// Channel is the notification channel that announces schedule changes
	// (campaigns.ScheduleChannel); "" listens to nothing.
	Channel string
	// LeaderTimeout is how long the leader's session may stay silent before
	// Postgres ends it, releasing the lock (default 5 s): the leader pings it
	// three times as often.
	LeaderTimeout time.Duration
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
	// Janitors are further bulk deletions the janitor runs every Poll.
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
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.LeaderTimeout <= 0 {
		cfg.LeaderTimeout = 5 * time.Second
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
			sleep(ctx, time.Second)
			continue
		}
		if !got {
			conn.Release()
			sleep(ctx, s.cfg.Tick*4)
			continue
		}
		s.setLeader(true)
		s.cfg.Log.InfoContext(ctx, "scheduler leadership taken")
		s.lead(ctx, &session{conn: conn.Conn(), cfg: s.cfg})
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

// lead does the leader's work in rounds until ctx ends or the lock's session
// fails: a round clears what expired, then fires what is due, and the leader
// sleeps until the next fire or expiry (a notification wakes it earlier). The
// first round clears what expired while Herald was down before it sends
// anything. The janitor runs beside the rounds, so that deleting a long member
// list never delays a send or an expiry.
func (s *Scheduler) lead(ctx context.Context, sess *session) {
	janitorCtx, stopJanitor := context.WithCancel(ctx)
	var janitor sync.WaitGroup
	janitor.Go(func() { s.janitor(janitorCtx) })
	defer func() {
		stopJanitor()
		janitor.Wait()
	}()
	if err := sess.prepare(ctx); err != nil {
		s.lost(ctx, err)
		return
	}
	for {
		if err := sess.ping(ctx); err != nil {
			s.lost(ctx, err)
			return
		}
		now := s.cfg.Now()
		s.tick(ctx, now)
		if err := sess.sleep(ctx, s.wait(ctx, now)); err != nil {
			s.lost(ctx, err)
			return
		}
	}
}

func (s *Scheduler) lost(ctx context.Context, err error) {
	if !errors.Is(err, context.Canceled) {
		s.cfg.Log.WarnContext(ctx, "scheduler lost its leader session", "err", err)
	}
}

// wait is how long the leader sleeps after the round that started at round:
// until the next fire or expiry, at most Poll; at least Tick when work due at
// the round was left behind (a fire that failed), none when more came due
// during the round.
func (s *Scheduler) wait(ctx context.Context, round time.Time) time.Duration {
	next, err := s.nextDue(ctx)
	now := s.cfg.Now()
	switch {
	case err != nil:
		s.logErr(ctx, "find the next due time", err)
		return s.cfg.Tick
	case next.IsZero():
		return s.cfg.Poll
	case !next.After(round):
		return s.cfg.Tick
	}
	return min(max(next.Sub(now), 0), s.cfg.Poll)
}

// nextDue is the earlier of the next fire and the next expiry, zero when
// there is neither, each asked within StepTimeout.
func (s *Scheduler) nextDue(ctx context.Context) (time.Time, error) {
	var next time.Time
	for _, ask := range []func(context.Context) (time.Time, error){s.cfg.Campaigns.NextFire, s.cfg.Dispatches.NextExpiry} {
		step, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
		t, err := ask(step)
		cancel()
		if err != nil {
			return time.Time{}, err
		}
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next, nil
}

// tick marks expired dispatches, then fires due campaigns, each step within
// its own time: a step that fails is logged and tried again at the next round.
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
// Poll until ctx ends. Each round has StepTimeout; a long list is deleted over
// as many rounds as it takes.
func (s *Scheduler) janitor(ctx context.Context) {
	lists := Janitor{What: "retired member lists", Purge: func(ctx context.Context) (int64, error) {
		return s.cfg.Lists.PurgeRetiredLists(ctx, s.cfg.Dispatches.ListsInUse)
	}}
	jobs := append([]Janitor{lists}, s.cfg.Janitors...)
	for sleep(ctx, s.cfg.Poll) {
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

// sleep sleeps for d and reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
