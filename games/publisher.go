package games

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/internal/startstop"
	"github.com/heraldpush/herald/protocol"
)

// DescriptorBroker is what the DescriptorPublisher needs of the broker.
type DescriptorBroker interface {
	// PublishRetained publishes payload to topic, QoS 1, retained, and returns
	// once the broker acknowledged it, or with ctx's error.
	PublishRetained(ctx context.Context, topic string, payload []byte) error
	Connected() bool
	// NextConnect is closed the next time the connection comes up.
	NextConnect() <-chan struct{}
}

// PublisherConfig configures the DescriptorPublisher of one replica.
type PublisherConfig struct {
	Broker DescriptorBroker
	Prefix string // the topic prefix
	Log    *slog.Logger
	// Poll is how often the publisher looks for descriptors to publish besides
	// at every connect (default 1 s): how long a created or changed game waits
	// at most for its descriptor, the broker being up.
	Poll time.Duration
	// Timeout bounds the publish of one descriptor, its database work included
	// (default 15 s).
	Timeout time.Duration
	// Retry is the pause after a failure (default 5 s).
	Retry time.Duration
}

// PublisherCounters are cumulative over the life of a DescriptorPublisher, for
// metrics.
type PublisherCounters struct {
	Published int64 // descriptors the broker acknowledged
	Failures  int64 // rounds cut short by broker or database trouble, tried again after Retry
}

// DescriptorPublisher keeps every game's descriptor retained on the broker at
// {prefix}/{game}/descriptor (protocol.md section 2). It publishes the games
// whose descriptor is stale in game_descriptors (created or changed since the
// last acknowledged publish, or lost with the broker's retained store: see
// MarkDescriptorsStale), whenever the broker is connected: at start, at every
// connect and every Poll. Every replica runs one; a game is published by one
// replica at a time, under an advisory lock held while it is published, so
// that an older descriptor never overtakes a newer one, and a game being
// changed never waits for the broker.
type DescriptorPublisher struct {
	cfg   PublisherConfig
	store *Store
	life  startstop.Service

	published, failures atomic.Int64
}

// NewDescriptorPublisher returns a publisher of the store's games; Start runs it.
func (s *Store) NewDescriptorPublisher(cfg PublisherConfig) *DescriptorPublisher {
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 5 * time.Second
	}
	return &DescriptorPublisher{cfg: cfg, store: s}
}

// Start starts publishing and returns at once.
func (p *DescriptorPublisher) Start(ctx context.Context) {
	p.life.Start(ctx, p.loop)
}

// Stop stops publishing and waits for a publish under way.
func (p *DescriptorPublisher) Stop() {
	p.life.Stop()
}

// Counters returns the publisher's cumulative counters.
func (p *DescriptorPublisher) Counters() PublisherCounters {
	return PublisherCounters{Published: p.published.Load(), Failures: p.failures.Load()}
}

func (p *DescriptorPublisher) loop(ctx context.Context) {
	for {
		// Taken before the round: a reconnect during it runs another.
		next := p.cfg.Broker.NextConnect()
		wait := p.cfg.Poll
		if p.cfg.Broker.Connected() {
			if err := p.publishStale(ctx); err != nil && ctx.Err() == nil {
				p.failures.Add(1)
				p.cfg.Log.WarnContext(ctx, "publishing game descriptors failed; trying again",
					"in", p.cfg.Retry.String(), "err", err)
				wait = p.cfg.Retry
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

// staleBatch is how many stale games one query lists.
const staleBatch = 100

// publishStale publishes stale descriptors until none is left that another
// replica is not publishing.
func (p *DescriptorPublisher) publishStale(ctx context.Context) error {
	for {
		ids, err := p.stale(ctx)
		if err != nil || len(ids) == 0 {
			return err
		}
		progress := false
		for _, id := range ids {
			did, err := p.publish(ctx, id)
			if err != nil {
				return fmt.Errorf("game %s: %w", id, err)
			}
			progress = progress || did
		}
		if !progress { // all taken by other replicas, or published meanwhile
			return nil
		}
	}
}

// stale lists games whose descriptor is due.
func (p *DescriptorPublisher) stale(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	rows, _ := p.store.db.Query(ctx, `
		SELECT game_id FROM game_descriptors WHERE published < version ORDER BY game_id LIMIT $1`, staleBatch)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list stale game descriptors: %w", err)
	}
	return ids, nil
}

// publish publishes the descriptor of game id if it is still stale and no other
// replica is publishing it, and records the version published. It reports
// whether it published.
func (p *DescriptorPublisher) publish(ctx context.Context, id string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	var version int64
	err := pgx.BeginFunc(ctx, p.store.db, func(tx pgx.Tx) error {
		var mine bool
		err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended('herald.descriptor:' || $1, 0))`, id).Scan(&mine)
		if err != nil {
			return fmt.Errorf("lock descriptor: %w", err)
		}
		if !mine {
			return nil
		}
		// The version first, then the game: a change committed in between is
		// published now and recorded as still due, never the other way round.
		err = tx.QueryRow(ctx, `SELECT version FROM game_descriptors WHERE game_id = $1 AND published < version`, id).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read descriptor version: %w", err)
		}
		g, err := get(ctx, tx, id, "")
		if err != nil {
			return err
		}
		payload, err := json.Marshal(g.Descriptor(p.cfg.Prefix))
		if err != nil {
			return fmt.Errorf("encode descriptor: %w", err)
		}
		if err := p.cfg.Broker.PublishRetained(ctx, protocol.DescriptorTopic(p.cfg.Prefix, id), payload); err != nil {
			return fmt.Errorf("publish descriptor: %w", err)
		}
		_, err = tx.Exec(ctx, `
			UPDATE game_descriptors SET published = greatest(published, $2), published_at = now() WHERE game_id = $1`,
			id, version)
		if err != nil {
			return fmt.Errorf("record descriptor published: %w", err)
		}
		return nil
	})
	if err != nil || version == 0 {
		return false, err
	}
	p.published.Add(1)
	p.cfg.Log.InfoContext(ctx, "game descriptor published", "game", id, "version", version)
	return true, nil
}
