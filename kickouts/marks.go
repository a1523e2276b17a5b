package kickouts

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
)

// marks writes the published marks of kick-outs after their requests
// answered, many in one statement: at a thousand kick-outs a second, a
// transaction each cost a fifth of Herald's CPU. One writer runs while marks
// wait and stops when none do, so nothing runs between bursts; the marks that
// come while it writes go in its next statement. Until a mark is stored, this
// replica's reads take it from memory (pending); another replica may read the
// kick-out as pending for that long.
type marks struct {
	store   store
	log     *slog.Logger
	timeout time.Duration // of one write

	mu      sync.Mutex
	at      map[uuid.UUID]time.Time // every mark not stored yet
	queued  []uuid.UUID             // of those, the ones no write has taken
	writing bool
	wg      sync.WaitGroup
}

// add records that kick-out id was published at at and has it written.
func (m *marks) add(ctx context.Context, id uuid.UUID, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.at[id] = at
	m.queued = append(m.queued, id)
	if !m.writing {
		m.writing = true
		m.wg.Go(func() { m.write(context.WithoutCancel(ctx)) })
	}
}

// pending returns the publish time of kick-out id while its mark is not
// stored.
func (m *marks) pending(id uuid.UUID) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.at[id]
	return at, ok
}

// write stores the queued marks, statement after statement, until none are
// left. A failed write is logged and its marks forgotten: recovery publishes
// those kick-outs once more.
func (m *marks) write(ctx context.Context) {
	for {
		m.mu.Lock()
		ids := m.queued
		m.queued = nil
		if len(ids) == 0 {
			m.writing = false
			m.mu.Unlock()
			return
		}
		at := make([]time.Time, len(ids))
		for i, id := range ids {
			at[i] = m.at[id]
		}
		m.mu.Unlock()

		wctx, cancel := context.WithTimeout(ctx, m.timeout)
		if err := m.store.markPublished(wctx, ids, at); err != nil {
			m.log.WarnContext(ctx, "mark kick-outs published; recovery publishes them again", "kickouts", len(ids), "err", err)
		}
		cancel()
		m.mu.Lock()
		for _, id := range ids {
			delete(m.at, id)
		}
		m.mu.Unlock()
	}
}

// wait waits until every mark added so far is written.
func (m *marks) wait() { m.wg.Wait() }
