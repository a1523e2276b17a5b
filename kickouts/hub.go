package kickouts

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldpush/herald/postgres"
	"github.com/heraldpush/herald/receipts"
)

// hub wakes the requests waiting for a kick-out's receipts. One connection per
// replica listens on receipts.NotifyChannel, where ingestion announces after
// each committed batch the send ids of its new delivered receipts, so a
// receipt read by any replica wakes the request waiting on this one; it never
// takes a connection per request. A receipt read by this replica's own
// ingestion (Delivered) wakes its waiters at once, before it is written, and
// tells them who confirmed: on one replica a waited kick-out costs no
// database round trip after the publish.
type hub struct {
	db  *pgxpool.Pool
	log *slog.Logger

	mu      sync.Mutex
	waiters map[uuid.UUID]map[*watcher]struct{}
}

// watcher is one waiting request's view of a kick-out's receipts.
type watcher struct {
	game  string
	woken chan struct{} // receives when a notification or a receipt names the kick-out

	mu    sync.Mutex
	local map[string]time.Time // player -> when this replica read their delivered receipt
}

// delivered returns the players whose delivered receipt this replica read,
// with when it read each.
func (w *watcher) delivered() map[string]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.local)
}

func (w *watcher) wake() {
	select {
	case w.woken <- struct{}{}:
	default: // merged with the wake-up waiting in the channel
	}
}

func newHub(db *pgxpool.Pool, log *slog.Logger) *hub {
	return &hub{db: db, log: log, waiters: map[uuid.UUID]map[*watcher]struct{}{}}
}

// watch returns a watcher of kick-out id of game and the function that stops
// watching.
func (h *hub) watch(id uuid.UUID, game string) (*watcher, func()) {
	w := &watcher{game: game, woken: make(chan struct{}, 1)}
	h.mu.Lock()
	if h.waiters[id] == nil {
		h.waiters[id] = map[*watcher]struct{}{}
	}
	h.waiters[id][w] = struct{}{}
	h.mu.Unlock()
	return w, func() {
		h.mu.Lock()
		delete(h.waiters[id], w)
		if len(h.waiters[id]) == 0 {
			delete(h.waiters, id)
		}
		h.mu.Unlock()
	}
}

// deliver records a delivered receipt of send by player of game, read by
// this replica at at, for the requests waiting on send, and wakes them. A
// receipt on another game's topic is not theirs: it is ignored, as ingestion
// drops it.
func (h *hub) deliver(game, player string, send uuid.UUID, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.waiters[send] {
		if w.game != game {
			continue
		}
		w.mu.Lock()
		if w.local == nil {
			w.local = map[string]time.Time{}
		}
		if _, seen := w.local[player]; !seen {
			w.local[player] = at
		}
		w.mu.Unlock()
		w.wake()
	}
}

// wake signals the waiters of the ids in a notification's payload.
func (h *hub) wake(payload string) {
	var n struct {
		IDs []string `json:"ids"`
	}
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		h.log.Warn("unreadable receipt notification", "payload", truncate(payload, 200), "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range n.IDs {
		id, err := uuid.Parse(s)
		if err != nil {
			continue
		}
		for w := range h.waiters[id] {
			w.wake()
		}
	}
}

// run listens until ctx ends, connecting again a second after the connection
// is lost. Meanwhile waiters fall back to reading the status every Recheck.
func (h *hub) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := h.listen(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case postgres.Unavailable(err):
			h.log.WarnContext(ctx, "listen for receipts: database unavailable; retrying", "err", err)
		default:
			h.log.ErrorContext(ctx, "listen for receipts; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// listen opens its own connection (not one of the pool's: it lives as long as
// the replica) with the pool's settings, LISTENs and wakes waiters until the
// connection fails or ctx ends.
func (h *hub) listen(ctx context.Context) error {
	cfg := h.db.Config().ConnConfig.Copy()
	connectCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout+5*time.Second)
	conn, err := pgx.ConnectConfig(connectCtx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = conn.Close(closeCtx)
		cancel()
	}()
	listenCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout+5*time.Second)
	_, err = conn.Exec(listenCtx, `LISTEN `+receipts.NotifyChannel)
	cancel()
	if err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		h.wake(n.Payload)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
