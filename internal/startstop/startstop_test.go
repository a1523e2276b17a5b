package startstop_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/heraldpush/herald/internal/startstop"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestStartOnceStopWaits(t *testing.T) {
	var s startstop.Service
	s.Stop() // never started: nothing to wait for

	var runs, running atomic.Int32
	started := make(chan struct{})
	run := func(ctx context.Context) {
		runs.Add(1)
		running.Add(1)
		defer running.Add(-1)
		close(started)
		<-ctx.Done()
	}
	require.True(t, s.Start(context.Background(), run))
	<-started
	require.False(t, s.Start(context.Background(), run), "a second Start starts nothing")
	s.Stop()
	require.Zero(t, running.Load(), "Stop returns only once run has returned")
	s.Stop()
	require.False(t, s.Start(context.Background(), run), "a stopped service stays stopped")
	require.EqualValues(t, 1, runs.Load())
}

func TestStopEndsRunOnParentCancel(t *testing.T) {
	var s startstop.Service
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.Start(ctx, func(ctx context.Context) {
		<-ctx.Done()
		close(done)
	})
	cancel()
	<-done // the parent's cancel reaches run
	s.Stop()
}
