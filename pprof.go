package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// startPprof serves Go's profiler at /debug/pprof/ on addr, a listener of its
// own so that profiles never reach the API's port or need an API key, until
// ctx ends. It exists so that a benchmark (make bench) or an operator can take
// a CPU profile of a running Herald: `go tool pprof http://ADDR/debug/pprof/profile?seconds=30`.
// It logs "pprof listening" with the address it took.
func startPprof(ctx context.Context, addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for pprof on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a profile is written after the seconds it asks for.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.InfoContext(ctx, "pprof listening", "addr", ln.Addr().String())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.ErrorContext(ctx, "pprof listener stopped", "err", err)
		}
	}()
	return func() {
		_ = srv.Close() // profiles under way are cut short: they are for debugging
		<-done
	}, nil
}
