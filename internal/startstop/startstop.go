// Package startstop gives Herald's background services (fan-out workers, the
// retained-store guard, the scheduler) one lifecycle, River's: Start returns
// at once, Stop cancels and waits until everything the service started has
// returned, and neither a second Start nor a Stop without Start does harm.
package startstop

import (
	"context"
	"sync"
)

// Service runs one function in the background. The zero value is ready.
type Service struct {
	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// Start runs run(ctx) in a goroutine of its own and returns at once; run must
// return when its context ends. Only the first call starts anything, even
// after Stop: a service runs once. It reports whether this call started it.
func (s *Service) Start(ctx context.Context, run func(ctx context.Context)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return false
	}
	s.started = true
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		run(ctx)
	}()
	return true
}

// Stop cancels run's context and waits for run to return. It returns at once
// if the service was never started; it may be called more than once.
func (s *Service) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}
