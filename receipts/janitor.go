package receipts

import (
	"context"
	"log/slog"
	"time"

	"github.com/heraldpush/herald/internal/startstop"
	"github.com/heraldpush/herald/postgres"
)

// Defaults of JanitorConfig.
const (
	DefaultMaintainEvery = 10 * time.Minute
	janitorPoll          = 2 * time.Second
	maintainTimeout      = 30 * time.Second
)

// JanitorConfig configures a Janitor.
type JanitorConfig struct {
	// Leader reports whether this replica leads the scheduler now
	// (scheduler.Scheduler.Leader): only the leader maintains partitions.
	Leader func() bool
	// Every is how often the leader maintains them (DefaultMaintainEvery);
	// it also does as soon as it becomes leader.
	Every time.Duration
	Log   *slog.Logger
	Now   func() time.Time // time.Now
}

// Janitor keeps the receipts partitions in order (Store.Maintain) on the
// scheduler leader.
type Janitor struct {
	store *Store
	cfg   JanitorConfig
	svc   startstop.Service
}

// NewJanitor returns a Janitor for s; Start runs it.
func (s *Store) NewJanitor(cfg JanitorConfig) *Janitor {
	if cfg.Every <= 0 {
		cfg.Every = DefaultMaintainEvery
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Janitor{store: s, cfg: cfg}
}

// Start starts the loop and returns at once.
func (j *Janitor) Start(ctx context.Context) { j.svc.Start(ctx, j.run) }

// Stop stops the loop and waits for it.
func (j *Janitor) Stop() { j.svc.Stop() }

func (j *Janitor) run(ctx context.Context) {
	var last time.Time // of the latest successful round while leading; zero: due
	t := time.NewTicker(janitorPoll)
	defer t.Stop()
	for {
		if !j.cfg.Leader() {
			last = time.Time{}
		} else if last.IsZero() || time.Since(last) >= j.cfg.Every {
			if j.maintain(ctx) {
				last = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maintain runs one round and reports whether it succeeded.
func (j *Janitor) maintain(ctx context.Context) bool {
	round, cancel := context.WithTimeout(ctx, maintainTimeout)
	defer cancel()
	created, dropped, err := j.store.Maintain(round, j.cfg.Now())
	if len(created) > 0 || len(dropped) > 0 {
		j.cfg.Log.InfoContext(ctx, "receipts partitions maintained", "created", created, "dropped", dropped)
	}
	switch {
	case err == nil:
		return true
	case ctx.Err() != nil: // stopping
	case postgres.Unavailable(err):
		j.cfg.Log.WarnContext(ctx, "maintain receipts partitions: database unavailable; trying again", "err", err)
	default:
		j.cfg.Log.ErrorContext(ctx, "maintain receipts partitions; trying again", "err", err)
	}
	return false
}
