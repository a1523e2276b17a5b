package client

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/heraldpush/herald/protocol"
)

// SessionConfig is what a Session knows of its player and whom it tells.
type SessionConfig struct {
	Game   string
	Player string
	Server string            // empty when the game has no shards
	Tags   map[string]string // a value per tag; a banded tag's number in decimal
	Prefix string            // Herald's topic prefix; "herald" if empty
	Locale string            // the player's locale, for Text
	Now    func() time.Time  // defaults to time.Now
	Log    *slog.Logger      // defaults to slog.Default()
	// RecallGrace is how long after Subscribed the messages that no copy
	// confirmed since Reconnected are removed as recalled; DefaultRecallGrace
	// if zero.
	RecallGrace time.Duration

	OnMessage    func(Message)
	OnRemove     func(campaign string, reason RemoveReason)
	OnKickout    func(Kickout)
	OnDescriptor func(protocol.Descriptor)

	// Publish sends a receipt payload to topic, QoS 1, not retained. It is
	// called one receipt at a time and must not wait for the broker.
	Publish func(topic string, payload []byte)
	// OnSubscriptions is called with the session's topic filters, sorted,
	// whenever they change (a new descriptor). It must not block.
	OnSubscriptions func(filters []string)
}

// Session is the per-player half of the SDK, without a connection: it applies
// protocol.md section 5 to each message it is handed, holds messages until their
// starts_at, removes them at their expires_at, sends receipts through
// SessionConfig.Publish and calls the callbacks. A Client is one Session over
// one MQTT connection; programs that carry many players over shared
// connections (herald sim) hand each message to the sessions whose
// subscriptions match its topic.
//
// Callbacks run one at a time, in the order of the events, on the goroutine of
// Handle or of the session's timer; they may call the session's methods, and
// should return quickly, since the next message waits for them.
type Session struct {
	cfg   SessionConfig
	attrs protocol.Attributes
	base  string // {prefix}/{game}/
	desc  string // the descriptor topic

	mu         sync.Mutex
	closed     bool
	descriptor *protocol.Descriptor
	descRaw    []byte
	subs       []string
	campaigns  map[string]*held // by campaign id
	seen       map[string]*seenID
	timer      *time.Timer
	due        time.Time // when timer fires; zero if it is stopped
	sweepAt    time.Time // when unconfirmed messages are removed; zero if not due
	stats      Stats

	// events run in order by whichever goroutine is draining (see drain).
	events   []func()
	draining bool
}

// held is the one message kept for a campaign.
type held struct {
	msg   Message
	shown bool // OnMessage has been called
	// unconfirmed: held across a reconnect, and no copy of its campaign has
	// arrived since (see Reconnected).
	unconfirmed bool
}

// seenID is an id accepted once: copies of it are duplicates until it expires.
type seenID struct {
	expires time.Time
	sent    uint8 // the receipts sent, by eventBit
}

var eventBit = map[string]uint8{
	protocol.EventDelivered: 1, protocol.EventDisplayed: 2, protocol.EventClicked: 4, protocol.EventDismissed: 8,
}

// ErrUnknownMessage is returned by Displayed, Clicked and Dismissed for an id
// the session did not accept, or that has expired.
var ErrUnknownMessage = errors.New("client: no such message")

// NewSession returns a session for cfg. It returns an error if Game or Player is
// not an id of the topic contract (1-128 bytes of [A-Za-z0-9._~:@=-]), if
// Server is set and is not one, or if Prefix is not "/"-separated ids.
func NewSession(cfg SessionConfig) (*Session, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "herald"
	}
	if err := checkIDs(cfg); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.RecallGrace <= 0 {
		cfg.RecallGrace = DefaultRecallGrace
	}
	s := &Session{
		cfg:       cfg,
		attrs:     protocol.Attributes{Player: cfg.Player, Server: cfg.Server, Tags: maps.Clone(cfg.Tags)},
		base:      cfg.Prefix + "/" + cfg.Game + "/",
		desc:      protocol.DescriptorTopic(cfg.Prefix, cfg.Game),
		campaigns: map[string]*held{},
		seen:      map[string]*seenID{},
		stats:     Stats{Received: map[protocol.Kind]int64{}},
	}
	s.subs = s.computeSubs()
	return s, nil
}

// checkIDs checks what a session spells into topics.
func checkIDs(cfg SessionConfig) error {
	check := func(name, v string) error {
		if protocol.CheckID(v) != nil {
			return fmt.Errorf("client: %s %q is not 1-128 bytes of [A-Za-z0-9._~:@=-]", name, v)
		}
		return nil
	}
	for _, c := range []struct{ name, v string }{{"Game", cfg.Game}, {"Player", cfg.Player}} {
		if err := check(c.name, c.v); err != nil {
			return err
		}
	}
	if cfg.Server != "" {
		if err := check("Server", cfg.Server); err != nil {
			return err
		}
	}
	for _, level := range strings.Split(cfg.Prefix, "/") {
		if err := check("Prefix level", level); err != nil {
			return err
		}
	}
	return nil
}

// Subscriptions returns the topic filters the session needs, sorted: its game's
// descriptor topic and protocol.Subscriptions for the latest descriptor.
func (s *Session) Subscriptions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.subs)
}

func (s *Session) computeSubs() []string {
	d := protocol.Descriptor{Prefix: s.cfg.Prefix, Game: s.cfg.Game}
	if s.descriptor != nil {
		d = *s.descriptor
	}
	subs := append(protocol.Subscriptions(d, s.attrs), s.desc)
	slices.Sort(subs)
	return subs
}

// Handle applies one message received on topic: a descriptor, or a removal or
// an envelope on a message topic, in the order of protocol.md section 5. It
// never panics on what the broker delivers: what it cannot use is counted in
// Stats.
func (s *Session) Handle(topic string, payload []byte) {
	s.mu.Lock()
	if !s.closed {
		s.catchUp(s.cfg.Now())
		if topic == s.desc {
			s.handleDescriptor(payload)
		} else {
			s.handleMessage(topic, payload)
		}
		s.schedule()
	}
	s.mu.Unlock()
	s.drain()
}

// handleDescriptor reads a new descriptor, and with it the subscriptions.
func (s *Session) handleDescriptor(payload []byte) {
	if bytes.Equal(payload, s.descRaw) && (len(payload) > 0) == (s.descriptor != nil) {
		return // the same again, as after every reconnect
	}
	if len(payload) == 0 { // the game's descriptor was cleared: no tag topics
		s.descriptor, s.descRaw = nil, nil
	} else {
		d, err := protocol.DecodeDescriptor(payload)
		if err == nil && (d.Game != s.cfg.Game || d.Prefix != s.cfg.Prefix) {
			err = fmt.Errorf("descriptor of %s/%s on %s", d.Prefix, d.Game, s.desc)
		}
		if err != nil {
			s.stats.Invalid++
			s.cfg.Log.Warn("herald: invalid descriptor", "topic", s.desc, "err", err)
			return
		}
		s.descriptor, s.descRaw = &d, slices.Clone(payload)
		if f := s.cfg.OnDescriptor; f != nil {
			s.emit(func() { f(d) })
		}
	}
	if subs := s.computeSubs(); !slices.Equal(subs, s.subs) {
		s.subs = subs
		if f := s.cfg.OnSubscriptions; f != nil {
			s.emit(func() { f(slices.Clone(subs)) })
		}
	}
}

// handleMessage applies protocol.md section 5 to a message topic
// {prefix}/{game}/.../{kind}/{msg}.
func (s *Session) handleMessage(topic string, payload []byte) {
	rest, ok := strings.CutPrefix(topic, s.base)
	levels := strings.Split(rest, "/")
	if !ok || len(levels) < 3 {
		s.invalid(topic, errors.New("not a message topic of this game"))
		return
	}
	kind, campaign := protocol.Kind(levels[len(levels)-2]), levels[len(levels)-1]
	if !kind.Known() {
		s.stats.Ignored++
		return
	}
	now := s.cfg.Now()
	if len(payload) == 0 { // 1. removal
		if h := s.campaigns[campaign]; h != nil {
			reason := RemoveRecalled
			if !now.Before(h.msg.ExpiresAt) {
				reason = RemoveExpired
			}
			s.remove(h, reason)
		}
		return
	}
	e, err := protocol.DecodeEnvelope(payload) // 2. parse
	switch {
	case errors.Is(err, protocol.ErrUnknownKind):
		s.stats.Ignored++
		return
	case err != nil:
		s.invalid(topic, err)
		return
	case e.Game != s.cfg.Game || e.Campaign != campaign || e.Kind != kind:
		s.invalid(topic, fmt.Errorf("envelope of %s %s %s", e.Game, e.Kind, e.Campaign))
		return
	}
	var msg Message
	var kick Kickout
	if e.Kind == protocol.KindKickout {
		kick, err = decodeKickout(e, now)
	} else {
		msg, err = decodeMessage(e, now)
	}
	switch {
	case err != nil:
		s.invalid(topic, err)
		return
	case !e.ExpiresAt.After(now): // 3. expired
		s.stats.Expired++
		return
	case e.Filter != nil && !e.Filter.Matches(s.attrs): // 4. filter, not remembered
		s.stats.Filtered++
		return
	}
	s.confirm(e.Campaign)    // a copy that passed: its campaign is still live
	if s.seen[e.ID] != nil { // 5. de-duplicate among copies that passed
		s.stats.Duplicates++
		return
	}
	s.seen[e.ID] = &seenID{expires: e.ExpiresAt}
	if e.Kind == protocol.KindKickout { // 7, 8: delivered first, then log out
		s.stats.Received[e.Kind]++
		s.receipt(e.ID, protocol.EventDelivered, now)
		if f := s.cfg.OnKickout; f != nil {
			s.emit(func() { f(kick) })
		}
		return
	}
	old := s.campaigns[e.Campaign] // 6. replace
	if old != nil && !e.SentAt.After(old.msg.SentAt) {
		s.stats.Superseded++
		s.receipt(e.ID, protocol.EventDelivered, now)
		return
	}
	s.stats.Received[e.Kind]++
	if old != nil {
		s.stats.Replaced++
		s.drop(old, RemoveReplaced)
	}
	h := &held{msg: msg}
	s.campaigns[e.Campaign] = h
	s.receipt(e.ID, protocol.EventDelivered, now) // 7. acknowledge
	s.release(h, now)                             // 8. show, or hold until starts_at
}

func (s *Session) invalid(topic string, err error) {
	s.stats.Invalid++
	s.cfg.Log.Debug("herald: dropped an invalid message", "topic", topic, "err", err)
}

// release shows h if its starts_at has come.
func (s *Session) release(h *held, now time.Time) {
	if h.shown || now.Before(h.msg.StartsAt) {
		return
	}
	h.shown = true
	if f := s.cfg.OnMessage; f != nil {
		m := h.msg
		s.emit(func() { f(m) })
	}
}

// remove removes h, counting it as a removal.
func (s *Session) remove(h *held, reason RemoveReason) {
	s.stats.Removals++
	s.drop(h, reason)
}

// drop forgets h, telling OnRemove if it was shown.
func (s *Session) drop(h *held, reason RemoveReason) {
	delete(s.campaigns, h.msg.Campaign)
	if f := s.cfg.OnRemove; f != nil && h.shown {
		campaign := h.msg.Campaign
		s.emit(func() { f(campaign, reason) })
	}
}

// receipt sends event for id unless it was sent already. The caller holds mu.
func (s *Session) receipt(id, event string, now time.Time) {
	seen := s.seen[id]
	if seen.sent&eventBit[event] != 0 {
		return
	}
	seen.sent |= eventBit[event]
	s.stats.ReceiptsSent++
	if f := s.cfg.Publish; f != nil {
		topic := protocol.ReceiptTopic(s.cfg.Prefix, s.cfg.Game, s.cfg.Player)
		payload := protocol.EncodeReceipt(protocol.Receipt{ID: id, Event: event, At: now})
		s.emit(func() { f(topic, payload) })
	}
}

// Displayed reports that the message id was shown: a "displayed" receipt, sent
// at most once per id. It returns ErrUnknownMessage for an id the session has not
// accepted or that has expired.
func (s *Session) Displayed(id string) error { return s.report(id, protocol.EventDisplayed) }

// Clicked reports that the player clicked the message id (an ad's window, a
// notice's link): a "clicked" receipt, at most once per id.
func (s *Session) Clicked(id string) error { return s.report(id, protocol.EventClicked) }

// Dismissed reports that the player closed the message id: a "dismissed"
// receipt, at most once per id.
func (s *Session) Dismissed(id string) error { return s.report(id, protocol.EventDismissed) }

func (s *Session) report(id, event string) error {
	s.mu.Lock()
	now := s.cfg.Now()
	seen := s.seen[id]
	if seen == nil || !seen.expires.After(now) {
		s.mu.Unlock()
		return fmt.Errorf("%w: %.40q", ErrUnknownMessage, id)
	}
	s.receipt(id, event, now)
	s.mu.Unlock()
	s.drain()
	return nil
}

// Text chooses the text to show from localized text: the player's locale, its
// language, the game's default locale (from the descriptor); see
// protocol.PickText.
func (s *Session) Text(texts map[string]string) string {
	s.mu.Lock()
	def := ""
	if s.descriptor != nil {
		def = s.descriptor.DefaultLocale
	}
	s.mu.Unlock()
	return protocol.PickText(texts, s.cfg.Locale, def)
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Received = maps.Clone(s.stats.Received)
	return st
}

// Close stops the session's timer; it then ignores what it is handed. Events
// already queued are still delivered.
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
}
