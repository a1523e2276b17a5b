// Package audit owns the audit log: who changed what, when. Every store writes its
// entry with Record inside the transaction of the change itself, so a change and
// its audit row commit or vanish together; the actor travels in the context.
package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldpush/herald/postgres"
)

// Actor is who makes a change: an API key, or the command line (KeyID nil).
type Actor struct {
	KeyID *uuid.UUID
	Name  string
}

type actorKey struct{}

// WithActor returns a context whose changes are recorded as made by a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ErrNoActor is returned by Record when the context names no actor: a change
// nobody answers for is a bug, so it is refused rather than logged anonymously.
var ErrNoActor = errors.New("audit: no actor in context")

// Entry is one change.
type Entry struct {
	Action     string // e.g. "game.create", "campaign.cancel"
	Game       string // empty for changes outside a game (API keys)
	ObjectType string // game, segment, campaign, api_key
	ObjectID   string
	Detail     any // optional, stored as JSON; never a secret
}

const insertSQL = `
	INSERT INTO audit_log (key_id, key_name, action, game_id, object_type, object_id, detail)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`

// Record writes e as done by the context's actor, inside tx.
func Record(ctx context.Context, tx pgx.Tx, e Entry) error {
	args, err := insertArgs(ctx, e)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, insertSQL, args...); err != nil {
		return fmt.Errorf("audit %s %s: %w", e.Action, e.ObjectID, err)
	}
	return nil
}

// Queue adds the writing of e, as done by the context's actor, to b: for a
// change sent in one round trip, since the statements of a batch commit or
// fail together.
func Queue(ctx context.Context, b *pgx.Batch, e Entry) error {
	args, err := insertArgs(ctx, e)
	if err != nil {
		return err
	}
	b.Queue(insertSQL, args...)
	return nil
}

func insertArgs(ctx context.Context, e Entry) ([]any, error) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	if !ok {
		return nil, ErrNoActor
	}
	var game *string
	if e.Game != "" {
		game = &e.Game
	}
	return []any{a.KeyID, a.Name, e.Action, game, e.ObjectType, e.ObjectID, e.Detail}, nil
}

// Row is a stored audit entry.
type Row struct {
	ID         int64      `json:"id"`
	At         time.Time  `json:"at"`
	KeyID      *uuid.UUID `json:"key_id,omitempty"`
	KeyName    string     `json:"key_name"`
	Action     string     `json:"action"`
	Game       *string    `json:"game,omitempty"`
	ObjectType string     `json:"object_type"`
	ObjectID   string     `json:"object_id"`
	Detail     any        `json:"detail,omitempty"`
}

// Query selects audit rows: of one game (empty: all), at or after Since (zero:
// from the start), after the row id After. Within, unless nil, limits the rows
// to those a key limited to these games may see: the rows of these games, and
// the rows without a game (API key changes) about a key limited to some of them.
type Query struct {
	Game   string
	Since  time.Time
	After  int64
	Limit  int
	Within []string
}

// Store reads the audit log.
type Store struct {
	db *pgxpool.Pool
}

// NewStore returns a Store over db.
func NewStore(db *pgxpool.Pool) *Store {
	return &Store{db: db}
}

// List returns up to q.Limit rows in order, and whether more follow.
func (s *Store) List(ctx context.Context, q Query) ([]Row, bool, error) {
	rows, _ := s.db.Query(ctx, `
		SELECT a.id, a.at, a.key_id, a.key_name, a.action, a.game_id, a.object_type, a.object_id, a.detail
		FROM audit_log a
		WHERE a.id > $1 AND ($2 = '' OR a.game_id = $2) AND a.at >= $3
			AND ($5::text[] IS NULL OR a.game_id = ANY($5) OR (a.game_id IS NULL AND a.object_type = 'api_key'
				AND EXISTS (SELECT 1 FROM api_keys k WHERE k.id::text = a.object_id AND k.games <@ $5)))
		ORDER BY a.id LIMIT $4`, q.After, q.Game, q.Since, q.Limit+1, q.Within)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Row])
	if err != nil {
		return nil, false, fmt.Errorf("list audit log: %w", err)
	}
	list, more := postgres.TrimPage(list, q.Limit)
	return list, more, nil
}
