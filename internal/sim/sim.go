package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldpush/herald/client"
	"github.com/heraldpush/herald/protocol"
)

// Config is what `herald sim` simulates.
type Config struct {
	Broker       string
	Username     string // MQTT user name for shared connections; each player's id with one player per connection
	Password     string
	Game         string
	Prefix       string      // Herald's topic prefix; "herald" if empty
	Players      int         // how many players
	PlayerPrefix string      // player ids are {PlayerPrefix}{n}, n from 1; "sim-" if empty
	Servers      []string    // each player is on one, uniformly; none if empty
	Tags         []TagSpread // each player draws a value per tag
	Ramp         float64     // players connecting per second; 0: as fast as possible
	DisplayRate  float64     // share of messages shown that are reported displayed
	ClickRate    float64     // share of messages displayed that are reported clicked
	// PlayersPerConn > 1 carries that many players over each MQTT connection,
	// each with its own session; 1 (or 0) makes every player a client.Client.
	PlayersPerConn int
	Duration       time.Duration // 0: until the context ends
	Seed           uint64        // draws of servers and tags
	Log            *slog.Logger
	// Progress, if set, gets a progress line once a second; Live rewrites
	// one line (for a terminal) instead of adding lines.
	Progress io.Writer
	Live     bool
}

// Sim is one simulation: New, then Run; Snapshot may be called meanwhile.
type Sim struct {
	cfg   Config
	attrs []protocol.Attributes
	lat   latencies

	mu       sync.Mutex
	sessions []sessionStats // one per connected player
	players  map[string]sessionStats
	conns    []*mux
	clients  []*client.Client
	started  time.Time
	lastUp   time.Time // when the latest player connected

	connected, failed, connections atomic.Int64
	displayed, clicked             atomic.Int64
}

// sessionStats is what Snapshot asks each player.
type sessionStats interface{ Stats() client.Stats }

// New checks cfg and draws each player's attributes.
func New(cfg Config) (*Sim, error) {
	switch {
	case cfg.Broker == "":
		return nil, errors.New("sim: no broker URL")
	case cfg.Game == "":
		return nil, errors.New("sim: no game")
	case cfg.Players < 1:
		return nil, errors.New("sim: at least one player")
	case cfg.DisplayRate < 0 || cfg.DisplayRate > 1 || cfg.ClickRate < 0 || cfg.ClickRate > 1:
		return nil, errors.New("sim: the display and click rates are between 0 and 1")
	case cfg.Ramp < 0 || cfg.PlayersPerConn < 0 || cfg.Duration < 0:
		return nil, errors.New("sim: negative ramp, players per connection or duration")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "herald"
	}
	if cfg.PlayerPrefix == "" {
		cfg.PlayerPrefix = "sim-"
	}
	if cfg.PlayersPerConn == 0 {
		cfg.PlayersPerConn = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x4e52414c44))
	s := &Sim{cfg: cfg, attrs: make([]protocol.Attributes, cfg.Players)}
	for i := range s.attrs {
		a := protocol.Attributes{Player: cfg.PlayerPrefix + strconv.Itoa(i+1), Tags: map[string]string{}}
		if len(cfg.Servers) > 0 {
			a.Server = cfg.Servers[r.IntN(len(cfg.Servers))]
		}
		for _, ts := range cfg.Tags {
			a.Tags[ts.Name] = ts.draw(r)
		}
		if protocol.CheckID(a.Player) != nil {
			return nil, fmt.Errorf("sim: player id %q is not 1-128 bytes of [A-Za-z0-9._~:@=-]", a.Player)
		}
		s.attrs[i] = a
	}
	return s, nil
}

// Attributes returns each player's attributes, player n at index n-1.
func (s *Sim) Attributes() []protocol.Attributes { return s.attrs }

// Run connects the players at the ramp and keeps them until the duration has
// passed or ctx ends, then disconnects them and returns the summary. Players
// that fail to connect are counted, not fatal; Run fails only if none
// connects.
func (s *Sim) Run(ctx context.Context) (Summary, error) {
	if s.cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Duration)
		defer cancel()
	}
	s.mu.Lock()
	s.started = time.Now()
	s.mu.Unlock()
	defer s.stop()
	if s.cfg.Progress != nil {
		done := make(chan struct{})
		defer close(done)
		go s.progress(done)
	}

	var wg sync.WaitGroup
	sem := make(chan struct{}, 256) // connection attempts in flight
	per := s.cfg.PlayersPerConn
	for first := 0; first < len(s.attrs) && ctx.Err() == nil; first += per {
		group := s.attrs[first:min(first+per, len(s.attrs))]
		if per == 1 {
			if !s.pace(ctx, first) {
				break
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				continue // the loop ends on ctx
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				s.connectClient(ctx, group[0])
			}()
			continue
		}
		// The group's connection comes up first, then its players join it
		// at the ramp, each with its own session.
		m, err := dialMux(ctx, s.cfg, first/per+1)
		if err != nil {
			s.cfg.Log.Warn("sim: connection failed", "err", err)
			s.failed.Add(int64(len(group)))
			continue
		}
		s.connections.Add(1)
		s.mu.Lock()
		s.conns = append(s.conns, m)
		s.mu.Unlock()
		for i, a := range group {
			if !s.pace(ctx, first+i) {
				break
			}
			if err := s.joinMux(m, a); err != nil {
				s.cfg.Log.Warn("sim: player failed to join", "player", a.Player, "err", err)
				s.failed.Add(1)
			}
		}
	}
	wg.Wait()
	if s.connected.Load() == 0 && ctx.Err() == nil {
		return s.Snapshot(), errors.New("sim: no player could connect")
	}
	<-ctx.Done()
	return s.Snapshot(), nil
}

// progress prints a progress line once a second until done.
func (s *Sim) progress(done chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	end := "\n"
	if s.cfg.Live {
		end = "\x1b[K\r"
	}
	for {
		select {
		case <-done:
			if s.cfg.Live {
				fmt.Fprintln(s.cfg.Progress)
			}
			return
		case <-t.C:
			fmt.Fprint(s.cfg.Progress, "sim: "+s.Snapshot().ProgressLine()+end)
		}
	}
}

// pace waits for player n's turn at the ramp; false if ctx ended first.
func (s *Sim) pace(ctx context.Context, n int) bool {
	if s.cfg.Ramp <= 0 {
		return ctx.Err() == nil
	}
	at := s.started.Add(time.Duration(float64(n) / s.cfg.Ramp * float64(time.Second)))
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// connectClient connects one player as a client.Client of its own.
func (s *Sim) connectClient(ctx context.Context, a protocol.Attributes) {
	// Callbacks may run before Connect returns (retained messages arrive as
	// it subscribes); they wait for it, which they may since Connect waits for
	// nothing they hold up once its subscriptions are acknowledged.
	var c *client.Client
	var ready sync.WaitGroup
	ready.Add(1)
	c, err := client.Connect(ctx, client.Options{
		Broker: s.cfg.Broker, Password: s.cfg.Password, Game: s.cfg.Game, Prefix: s.cfg.Prefix,
		Player: a.Player, Server: a.Server, Tags: a.Tags, Log: s.cfg.Log,
		OnKickout: s.onKickout,
		OnMessage: func(m client.Message) {
			ready.Wait()
			if c != nil {
				s.onMessage(m, c.Displayed, c.Clicked)
			}
		},
	})
	ready.Done()
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Log.Warn("sim: player failed to connect", "player", a.Player, "err", err)
		}
		s.failed.Add(1)
		return
	}
	s.mu.Lock()
	s.clients = append(s.clients, c)
	s.mu.Unlock()
	s.connections.Add(1)
	s.up(a.Player, c)
}

// joinMux adds one player to a shared connection, with a session of its own.
func (s *Sim) joinMux(m *mux, a protocol.Attributes) error {
	var sess *client.Session
	sess, err := client.NewSession(client.SessionConfig{
		Game: s.cfg.Game, Player: a.Player, Server: a.Server, Tags: a.Tags, Prefix: s.cfg.Prefix,
		Log: s.cfg.Log, Publish: m.publish, OnSubscriptions: func(filters []string) { m.update(sess, filters) },
		OnKickout: s.onKickout,
		// Callbacks run only once the session has joined the connection.
		OnMessage: func(msg client.Message) { s.onMessage(msg, sess.Displayed, sess.Clicked) },
	})
	if err != nil {
		return err
	}
	m.join(sess)
	s.up(a.Player, sess)
	return nil
}

func (s *Sim) onKickout(k client.Kickout) {
	s.lat.add(k.ReceivedAt.Sub(k.SentAt))
}

// onMessage acknowledges a message shown as a player would, at the configured
// rates, and records its delivery latency.
func (s *Sim) onMessage(m client.Message, displayed, clicked func(string) error) {
	s.lat.add(m.ReceivedAt.Sub(m.SentAt))
	if rand.Float64() >= s.cfg.DisplayRate {
		return
	}
	if displayed(m.ID) == nil {
		s.displayed.Add(1)
	}
	if rand.Float64() < s.cfg.ClickRate && clicked(m.ID) == nil {
		s.clicked.Add(1)
	}
}

// up counts a player as connected.
func (s *Sim) up(player string, st sessionStats) {
	s.mu.Lock()
	s.sessions = append(s.sessions, st)
	if s.players == nil {
		s.players = map[string]sessionStats{}
	}
	s.players[player] = st
	s.lastUp = time.Now()
	s.mu.Unlock()
	s.connected.Add(1)
}

// stop disconnects every player.
func (s *Sim) stop() {
	s.mu.Lock()
	clients, conns := s.clients, s.conns
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); c.Close() }()
	}
	for _, m := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); m.close() }()
	}
	wg.Wait()
}
