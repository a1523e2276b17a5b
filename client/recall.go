package client

import "time"

// DefaultRecallGrace is how long, after the broker acknowledged the
// subscriptions of a new connection, a client waits for the retained copies of
// the messages it held before it removes those that did not come back.
const DefaultRecallGrace = 5 * time.Second

// Reconnected tells the session that its connection was made again and is
// about to subscribe (call it before the SUBSCRIBE is sent). A campaign
// recalled while the client was offline sends nothing: Herald cleared its
// retained copies, and the empty payload went to the clients online then. So
// every message the session holds becomes unconfirmed; a copy of its campaign
// that passes its filter confirms it, and Subscribed removes, after the grace,
// those still unconfirmed (protocol.md section 5, "After a reconnect"). A sweep
// that was due is called off: the new connection must confirm again.
func (s *Session) Reconnected() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.campaigns {
		h.unconfirmed = true
	}
	s.sweepAt = time.Time{}
	s.schedule()
}

// Subscribed tells the session that the broker acknowledged the subscriptions
// made after Reconnected: SessionConfig.RecallGrace later, the messages no copy
// has confirmed are removed with RemoveRecalled. Their ids are forgotten, so a
// copy that arrives later still (a broker slower than the grace) shows the
// message again rather than being taken for a duplicate.
func (s *Session) Subscribed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	for _, h := range s.campaigns {
		if h.unconfirmed {
			s.sweepAt = s.cfg.Now().Add(s.cfg.RecallGrace)
			s.schedule()
			return
		}
	}
}

// confirm marks the campaign's message, if one is held, as still live. The
// caller holds mu.
func (s *Session) confirm(campaign string) {
	if h := s.campaigns[campaign]; h != nil {
		h.unconfirmed = false
	}
}

// sweep removes the unconfirmed messages once the grace after Subscribed has
// passed. The caller holds mu.
func (s *Session) sweep(now time.Time) {
	if s.sweepAt.IsZero() || now.Before(s.sweepAt) {
		return
	}
	s.sweepAt = time.Time{}
	for _, h := range s.campaigns {
		if h.unconfirmed {
			delete(s.seen, h.msg.ID)
			s.remove(h, RemoveRecalled)
		}
	}
}
