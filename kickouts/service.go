package kickouts

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/internal/startstop"
	"github.com/heraldpush/herald/mqttout"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/receipts"
)

// Publisher is what kick-outs need of the broker: QoS 1 publishes that return
// once the broker acknowledged every one (mqttout.Conn).
type Publisher interface {
	PublishAll(ctx context.Context, msgs []mqttout.Message) (mqttout.Result, error)
}

// Config configures the kick-outs of one replica.
type Config struct {
	DB        *pgxpool.Pool
	Receipts  *receipts.Store // the clients' delivered receipts
	Publisher Publisher
	Prefix    string // the topic prefix
	Log       *slog.Logger
	// DBTimeout bounds each database step of a request (default 5 s).
	DBTimeout time.Duration
	// PublishTimeout is how long a request waits for the broker to acknowledge
	// its kick-out (default 5 s, plus 1 ms a player); past it the answer says
	// pending and recovery publishes it.
	PublishTimeout time.Duration
	// Recheck is how often a waiting request reads the status again without
	// being woken (default 500 ms), in case a notification was missed while
	// the listening connection was down.
	Recheck time.Duration
	// Poll is how often recovery looks for kick-outs whose publish was cut off
	// (default 1 s).
	Poll        time.Duration
	MaxEnvelope int              // 0: protocol.DefaultMaxEnvelope
	Now         func() time.Time // default time.Now
}

// Service creates, publishes and reports kick-outs. Start runs its background
// work: the receipt listener that wakes waiting requests, and recovery.
type Service struct {
	cfg   Config
	store store
	hub   *hub

	life startstop.Service

	marks marks // published marks being written

	draining  chan struct{} // closed by Drain
	drainOnce sync.Once
}

// New returns a Service for cfg.
func New(cfg Config) *Service {
	if cfg.DBTimeout <= 0 {
		cfg.DBTimeout = 5 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 5 * time.Second
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = 500 * time.Millisecond
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.MaxEnvelope <= 0 {
		cfg.MaxEnvelope = protocol.DefaultMaxEnvelope
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, store: store{db: cfg.DB}, hub: newHub(cfg.DB, cfg.Log), draining: make(chan struct{})}
	s.marks = marks{store: s.store, log: cfg.Log, timeout: cfg.DBTimeout, at: map[uuid.UUID]time.Time{}}
	return s
}

// Start starts the receipt listener and recovery, and returns at once.
func (s *Service) Start(ctx context.Context) {
	s.life.Start(ctx, func(ctx context.Context) {
		var wg sync.WaitGroup
		wg.Go(func() { s.hub.run(ctx) })
		s.recover(ctx)
		wg.Wait()
	})
}

// Stop stops the background work and waits for it, and for the marks of
// published kick-outs still being written.
func (s *Service) Stop() {
	s.life.Stop()
	s.marks.wait()
}

// Delivered tells the requests waiting on kick-out send of game that this
// replica read player's delivered receipt at at, before it is stored
// (receipts.Config.OnDelivered): they answer without waiting for the write.
func (s *Service) Delivered(game, player string, send uuid.UUID, at time.Time) {
	s.hub.deliver(game, player, send, at)
}

// Drain ends every wait at once, and every later one as soon as it starts:
// each answers with the status as it stands. A replica shutting down calls it
// (http.Server.RegisterOnShutdown) so that its waiting requests answer within
// the shutdown's time rather than wait up to MaxWait.
func (s *Service) Drain() {
	s.drainOnce.Do(func() { close(s.draining) })
}

// CreateAndWait validates in for game g (read by the caller, who checked it
// is live), stores the kick-out with its audit entry and publishes it. Without
// a wait it returns its status: published once the broker acknowledged every
// message, pending if it did not within PublishTimeout (plus 1 ms a player;
// recovery publishes it then). With a positive wait it answers as Wait does,
// once every targeted player confirmed, the ttl passed or wait (at most
// MaxWait, counted from now) ended; it watches for receipts before it
// publishes, so that a client that confirms at once is not missed. It returns
// a fielderr.List, or ctx's error when the caller went away while waiting.
func (s *Service) CreateAndWait(ctx context.Context, g games.Game, in Input, wait time.Duration) (Status, error) {
	k, ttl, err := in.build(g.ID, g.DefaultLocale)
	if err != nil {
		return Status{}, err
	}
	if k.ID, err = uuid.NewV7(); err != nil {
		return Status{}, fmt.Errorf("new kick-out id: %w", err)
	}
	// Millisecond times: the envelope carries no finer, and a republish must
	// send the same bytes.
	k.CreatedAt = s.cfg.Now().UTC().Truncate(time.Millisecond)
	k.ExpiresAt = k.CreatedAt.Add(ttl)
	deadline := s.cfg.Now().Add(min(wait, MaxWait))
	payload, err := s.envelope(k)
	if err != nil {
		return Status{}, err
	}
	var w *watcher
	if wait > 0 {
		var stop func()
		w, stop = s.hub.watch(k.ID, k.Game)
		defer stop()
	}
	step, cancel := context.WithTimeout(ctx, s.cfg.DBTimeout)
	err = s.store.insert(step, k, k.CreatedAt.Add(s.lease(k)))
	cancel()
	if err != nil {
		return Status{}, err
	}
	// The kick-out is stored: from here on it is published even if the caller
	// goes away, and the answer is 201 whatever the broker does.
	if at, ok := s.publish(context.WithoutCancel(ctx), k, payload); ok {
		k.PublishedAt = &at
	}
	if w == nil {
		return status(k, nil, 0, s.cfg.Now())
	}
	// Nothing can be stored for it yet that a notification would not announce.
	return s.waitFor(ctx, k, w, deadline, false)
}

// envelope encodes k's envelope, refusing (as a field error) content too
// large for it.
func (s *Service) envelope(k Kickout) ([]byte, error) {
	b, err := protocol.EncodeEnvelope(protocol.Envelope{
		ID: k.ID.String(), Campaign: k.ID.String(), Kind: protocol.KindKickout, Game: k.Game,
		SentAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, Priority: 9, Content: k.Content,
	}, s.cfg.MaxEnvelope)
	if err != nil {
		return nil, tooLarge(err)
	}
	return b, nil
}

// messages are k's publishes: one per targeted player, or one to the server.
// Never retained: only clients online now receive it.
func (s *Service) messages(k Kickout, payload []byte) []mqttout.Message {
	id := k.ID.String()
	if k.Server != "" {
		return []mqttout.Message{{Topic: protocol.Message(protocol.Base(s.cfg.Prefix, k.Game, protocol.ScopeServer, k.Server), protocol.KindKickout, id), Payload: payload}}
	}
	msgs := make([]mqttout.Message, len(k.Players))
	for i, p := range k.Players {
		msgs[i] = mqttout.Message{Topic: protocol.Message(protocol.Base(s.cfg.Prefix, k.Game, protocol.ScopePlayer, p), protocol.KindKickout, id), Payload: payload}
	}
	return msgs
}

// perMessage is the time a publish may take per message on top of
// PublishTimeout: a kick-out of 10,000 players gets 10 s more.
const perMessage = time.Millisecond

// publishTimeout is how long the publish of k may take before it is left to
// recovery.
func (s *Service) publishTimeout(k Kickout) time.Duration {
	return s.cfg.PublishTimeout + time.Duration(max(len(k.Players), 1))*perMessage
}

// lease is how long k's publisher holds it from now before recovery may take
// it: its publish, and marking it published.
func (s *Service) lease(k Kickout) time.Duration {
	return s.publishTimeout(k) + s.cfg.DBTimeout
}

// publish sends k (whose envelope is payload) in one batch within its
// publishTimeout and, once the broker acknowledged all of it, marks it
// published. It reports when it was acknowledged, and false if it was not.
func (s *Service) publish(ctx context.Context, k Kickout, payload []byte) (time.Time, bool) {
	timeout := s.publishTimeout(k)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := s.cfg.Publisher.PublishAll(pctx, s.messages(k, payload)); err != nil {
		s.cfg.Log.WarnContext(ctx, "kick-out not acknowledged by the broker in time; recovery publishes it",
			"kickout", k.ID, "timeout", timeout.String(), "err", err)
		return time.Time{}, false
	}
	at := s.cfg.Now().UTC()
	s.marks.add(ctx, k.ID, at)
	return at, true
}

// Status returns the status of kick-out id of game now, or ErrNotFound.
func (s *Service) Status(ctx context.Context, game string, id uuid.UUID) (Status, error) {
	step, cancel := context.WithTimeout(ctx, s.cfg.DBTimeout)
	defer cancel()
	k, err := s.get(step, game, id)
	if err != nil {
		return Status{}, err
	}
	return s.status(step, k, nil)
}

// get reads kick-out id of game with its publish time if this replica is
// still writing it: looked up before the read, since a mark is forgotten once
// it is stored.
func (s *Service) get(ctx context.Context, game string, id uuid.UUID) (Kickout, error) {
	at, marked := s.marks.pending(id)
	k, err := s.store.get(ctx, game, id)
	if err != nil {
		return Kickout{}, err
	}
	if k.PublishedAt == nil && marked {
		k.PublishedAt = &at
	}
	return k, nil
}

// status reads k's stored receipts and computes its status now, adding the
// delivered receipts local holds (read by this replica, perhaps not stored
// yet; nil for none).
func (s *Service) status(ctx context.Context, k Kickout, local map[string]time.Time) (Status, error) {
	now := s.cfg.Now()
	got, total, err := s.cfg.Receipts.Delivered(ctx, k.ID, k.Players, MaxPlayers)
	if err != nil {
		return Status{}, err
	}
	got, total = merge(k, got, total, local)
	return status(k, got, total, now)
}

// Purge deletes up to limit kick-outs created more than retention ago (the
// receipts' retention: their receipts are gone with their partitions), and
// returns how many it deleted, for the scheduler's janitor.
func (s *Service) Purge(ctx context.Context, retention time.Duration, limit int) (int64, error) {
	return s.store.purge(ctx, s.cfg.Now().Add(-retention), limit)
}
