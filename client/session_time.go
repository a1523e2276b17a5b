package client

import "time"

// schedule sets the session's one timer to the next time something is due: a
// held message's starts_at, a message's expires_at, the expiry of a
// remembered id, or the removal of unconfirmed messages after a reconnect. The
// caller holds mu.
func (s *Session) schedule() {
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, h := range s.campaigns {
		if !h.shown {
			earlier(h.msg.StartsAt)
		}
		earlier(h.msg.ExpiresAt)
	}
	for _, seen := range s.seen {
		earlier(seen.expires)
	}
	earlier(s.sweepAt)
	if next.IsZero() || s.closed {
		if s.timer != nil {
			s.timer.Stop()
		}
		s.due = time.Time{}
		return
	}
	if next.Equal(s.due) {
		return
	}
	s.due = next
	wait := next.Sub(s.cfg.Now())
	if s.timer == nil {
		s.timer = time.AfterFunc(wait, s.tick)
	} else {
		s.timer.Reset(wait)
	}
}

// tick runs when the timer fires.
func (s *Session) tick() {
	s.mu.Lock()
	if !s.closed {
		s.due = time.Time{}
		s.catchUp(s.cfg.Now())
		s.schedule()
	}
	s.mu.Unlock()
	s.drain()
}

// catchUp releases held messages whose starts_at has come, removes those whose
// expires_at has passed, forgets expired ids and sweeps what a reconnect left
// unconfirmed. The timer calls it, and so does
// Handle before each message, in case Now runs ahead of the timer (a clock
// synchronized with the server's may jump). The caller holds mu.
func (s *Session) catchUp(now time.Time) {
	for _, h := range s.campaigns {
		if !now.Before(h.msg.ExpiresAt) {
			s.remove(h, RemoveExpired)
		} else {
			s.release(h, now)
		}
	}
	for id, seen := range s.seen {
		if !now.Before(seen.expires) {
			delete(s.seen, id)
		}
	}
	s.sweep(now)
}

// emit queues an event. The caller holds mu, then calls drain once it has let
// go of mu.
func (s *Session) emit(f func()) {
	s.events = append(s.events, f)
}

// drain runs queued events in order, one at a time and outside mu, so that
// callbacks may call the session. One goroutine drains at a time: another that
// finds it draining leaves its events to it.
func (s *Session) drain() {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return
	}
	s.draining = true
	for len(s.events) > 0 {
		f := s.events[0]
		s.events[0] = nil
		s.events = s.events[1:]
		s.mu.Unlock()
		f()
		s.mu.Lock()
	}
	s.events = nil
	s.draining = false
	s.mu.Unlock()
}
