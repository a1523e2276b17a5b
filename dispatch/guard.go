package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/internal/startstop"
	"github.com/heraldpush/herald/protocol"
)

// SentinelBroker is what the Guard needs of the broker (mqttout.Conn, through
// brokerlink.Publisher).
type SentinelBroker interface {
	Publisher
	Connected() bool
	NextConnect() <-chan struct{}
	CheckRetained(ctx context.Context, topic, probe string) (payload []byte, found bool, err error)
}

// GuardConfig configures the Guard of one replica.
type GuardConfig struct {
	Broker SentinelBroker
	Prefix string // the topic prefix
	Log    *slog.Logger
	// Replica names this replica's probe topic; unique per process, a valid id
	// (protocol.CheckID). Default: a random UUID.
	Replica string
	// Interval is how often the sentinel is checked besides at every connect
	// (default 1 min): a broker may lose its store without dropping Herald.
	Interval time.Duration
	// Timeout bounds one check, the database work and the sentinel publish
	// included (default 15 s).
	Timeout time.Duration
	// Retry is the pause before a failed check is tried again (default 5 s).
	Retry time.Duration
	// OnRestore, if set, runs in the transaction that requests a restore, for
	// what else the broker lost: main marks the game descriptors stale there.
	OnRestore func(ctx context.Context, tx pgx.Tx) error
}

// GuardCounters are cumulative over the life of a Guard, for metrics.
type GuardCounters struct {
	LossesDetected    int64 // checks that found the sentinel missing or outdated
	RestoresRequested int64 // restores this replica asked for (one per loss over all replicas)
	CheckFailures     int64 // checks that could not tell (broker or database trouble)
}

// Guard notices that the broker lost its retained messages, and has them
// restored. Herald keeps a sentinel retained at {prefix}/$herald/sentinel whose
// value Postgres holds too. After every connect, and every Interval, the Guard
// asks the broker for it (mqttout.Conn.CheckRetained). A broker that lost its
// store comes back without it (or, from an older copy of its store, with an
// older value): the Guard then replaces the value and marks every live
// dispatch for a restore in one transaction on the sentinel row, and publishes
// the new value at once, so that a second loss during the restore is noticed
// too. Several replicas that notice the same loss request one restore: a
// replica finding that the value changed after its check began leaves it to
// the one that changed it. The fan-out workers do the restore. A check never
// holds up publishing; a failed one is tried again after Retry.
type Guard struct {
	cfg   GuardConfig
	store *Store
	topic string
	probe string
	life  startstop.Service

	losses, requests, failures atomic.Int64
}

// NewGuard returns a Guard over the store's dispatches; Start runs it.
func (s *Store) NewGuard(cfg GuardConfig) *Guard {
	if cfg.Replica == "" {
		cfg.Replica = uuid.NewString()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 5 * time.Second
	}
	return &Guard{cfg: cfg, store: s, topic: protocol.Sentinel(cfg.Prefix), probe: protocol.Probe(cfg.Prefix, cfg.Replica)}
}

// Start starts checking and returns at once. Only the first call starts
// anything.
func (g *Guard) Start(ctx context.Context) {
	g.life.Start(ctx, g.loop)
}

// Stop stops checking and waits for a check under way.
func (g *Guard) Stop() {
	g.life.Stop()
}

// Counters returns the Guard's cumulative counters.
func (g *Guard) Counters() GuardCounters {
	return GuardCounters{LossesDetected: g.losses.Load(), RestoresRequested: g.requests.Load(), CheckFailures: g.failures.Load()}
}

func (g *Guard) loop(ctx context.Context) {
	for {
		// Taken before the check: a reconnect during the check runs another.
		next := g.cfg.Broker.NextConnect()
		wait := g.cfg.Interval
		if g.cfg.Broker.Connected() {
			if err := g.check(ctx); err != nil && ctx.Err() == nil {
				g.failures.Add(1)
				g.cfg.Log.WarnContext(ctx, "retained sentinel check failed; trying again",
					"in", g.cfg.Retry.String(), "topic", g.topic, "err", err)
				wait = g.cfg.Retry
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-next:
		case <-time.After(wait):
		}
	}
}

// check compares the broker's sentinel with the database's and acts on it.
func (g *Guard) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	// The database's clock, read before the broker is asked: a restore requested
	// after it covers whatever the broker shows.
	since, err := g.store.databaseClock(ctx)
	if err != nil {
		return err
	}
	seen, found, err := g.cfg.Broker.CheckRetained(ctx, g.topic, g.probe)
	if err != nil {
		return err
	}
	v, err := g.store.settleSentinel(ctx, seen, found, since, g.cfg.OnRestore, func(ctx context.Context, value string) error {
		_, err := g.cfg.Broker.PublishAll(ctx, []Message{{Topic: g.topic, Payload: []byte(value), Retain: true}})
		if err != nil {
			return fmt.Errorf("publish the retained sentinel: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	log := g.cfg.Log.With("topic", g.topic)
	switch v.outcome {
	case sentinelPresent:
		log.DebugContext(ctx, "retained sentinel present")
	case sentinelInitialized:
		log.InfoContext(ctx, "retained sentinel set for the first time")
	case restoreAlreadyRequested:
		g.losses.Add(1)
		log.InfoContext(ctx, "broker lost its retained messages; another replica requested the restore",
			"sentinel_found", found)
	case restoreRequested:
		g.losses.Add(1)
		g.requests.Add(1)
		log.WarnContext(ctx, "broker lost its retained messages; restore requested",
			"sentinel_found", found, "dispatches", v.marked)
	}
	return nil
}

// databaseClock returns the time on the database's clock, the one every
// replica shares.
func (s *Store) databaseClock(ctx context.Context) (time.Time, error) {
	var now time.Time
	if err := s.db.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("read the database clock: %w", err)
	}
	return now, nil
}

// sentinelOutcome is what settleSentinel found and did.
type sentinelOutcome int

const (
	sentinelPresent         sentinelOutcome = iota // the broker holds the current value
	sentinelInitialized                            // no value yet: one was set, nothing to restore
	restoreAlreadyRequested                        // the value changed after the check began
	restoreRequested                               // a new value, and live dispatches marked for restore
)

type sentinelVerdict struct {
	outcome sentinelOutcome
	marked  int64 // dispatches marked for restore
}

// settleSentinel decides, in one transaction on the sentinel row, what the
// broker's sentinel (seen, if found) means, given that the check began at
// since on the database's clock. If the broker lost it, it marks for restore
// every retained dispatch that published (or is publishing) and is neither expired nor
// being cleared (the restore re-publishes all it had published, from the
// start, even if an earlier restore was under way), runs onRestore (if not
// nil) and sets a new value.
//
// The new value is published (with publish) before it is stored, and its
// set_at is read after: so a replica whose check saw no sentinel, or an old
// one, began before set_at and leaves the restore to this one, and a replica
// whose check saw the new value waits on the row lock and finds it stored. If
// publish fails, nothing changes and the next check tries again.
func (s *Store) settleSentinel(ctx context.Context, seen []byte, found bool, since time.Time,
	onRestore func(ctx context.Context, tx pgx.Tx) error, publish func(ctx context.Context, value string) error) (sentinelVerdict, error) {
	var v sentinelVerdict
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var value string
		var setAt *time.Time
		var restore bool
		err := tx.QueryRow(ctx, `SELECT value, set_at, restore FROM retained_sentinel FOR UPDATE`).Scan(&value, &setAt, &restore)
		if err != nil {
			return fmt.Errorf("read the retained sentinel: %w", err)
		}
		switch {
		case found && value != "" && string(seen) == value:
			v.outcome = sentinelPresent
			return nil
		case setAt != nil && !setAt.Before(since) && restore:
			v.outcome = restoreAlreadyRequested
			return nil
		case setAt != nil && !setAt.Before(since):
			v.outcome = sentinelPresent // another replica set the first value
			return nil
		case setAt == nil:
			v.outcome = sentinelInitialized
		default:
			v.outcome = restoreRequested
		}
		// Published first, while only the sentinel row is locked: a broker that
		// is slow to acknowledge holds up no dispatch.
		value = uuid.NewString()
		if err := publish(ctx, value); err != nil {
			return err
		}
		if v.outcome == restoreRequested {
			tag, err := tx.Exec(ctx, `
				UPDATE dispatches SET restores = restores + 1, restore_requested_at = now(),
					restore_until_target = CASE WHEN state = 'published' THEN NULL ELSE next_target END,
					restore_until_after = CASE WHEN state = 'published' THEN NULL ELSE after_player END,
					restore_target = 0, restore_after = '', restored = 0, restored_at = NULL, updated_at = now()
				WHERE state IN ('published', 'publishing') AND clear_reason IS NULL AND cleared_at IS NULL
					AND expires_at > now() AND retain`)
			if err != nil {
				return fmt.Errorf("mark dispatches for restore: %w", err)
			}
			v.marked = tag.RowsAffected()
			if v.marked > 0 {
				if err := notifyWorkers(ctx, tx); err != nil {
					return err
				}
			}
			if onRestore != nil {
				if err := onRestore(ctx, tx); err != nil {
					return err
				}
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE retained_sentinel SET value = $1, set_at = clock_timestamp(), restore = $2`,
			value, v.outcome == restoreRequested); err != nil {
			return fmt.Errorf("update the retained sentinel: %w", err)
		}
		return nil
	})
	return v, err
}
