package games

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/postgres"
)

// Errors returned by Store methods.
var (
	ErrNotFound = errors.New("game not found")
	ErrExists   = errors.New("game already exists")
	// ErrArchived is returned for a change to, or under, an archived game.
	ErrArchived = errors.New("game is archived")
)

// Store keeps games in Postgres.
type Store struct {
	db *pgxpool.Pool
}

// NewStore returns a Store over db.
func NewStore(db *pgxpool.Pool) *Store {
	return &Store{db: db}
}

const gameColumns = `id, name, default_locale, tags, coalesce(zone_tag, ''), created_at, updated_at, confirm_over,
	archived_at`

// Create stores a new, validated game. It returns ErrExists when the id is taken.
func (s *Store) Create(ctx context.Context, g Game) (Game, error) {
	var created Game
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			INSERT INTO games (id, name, default_locale, tags, zone_tag, confirm_over)
			VALUES ($1, $2, $3, $4, nullif($5, ''), $6)
			RETURNING `+gameColumns, g.ID, g.Name, g.DefaultLocale, tagsOrEmpty(g.Tags), g.ZoneTag, g.ConfirmOver)
		var err error
		created, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Game])
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return ErrExists
		}
		if err != nil {
			return fmt.Errorf("insert game %s: %w", g.ID, err)
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "game.create", Game: g.ID, ObjectType: "game", ObjectID: g.ID})
	})
	return created, err
}

// Get returns the game with id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Game, error) {
	return get(ctx, s.db, id, "")
}

// List returns up to limit games ordered by id, starting after the id after
// (empty: from the first), only those in only unless it is nil, archived ones
// only if archived is set. more reports whether further games follow.
func (s *Store) List(ctx context.Context, after string, limit int, only []string, archived bool) (games []Game, more bool, err error) {
	rows, _ := s.db.Query(ctx, `
		SELECT `+gameColumns+` FROM games WHERE id > $1 AND ($3::text[] IS NULL OR id = ANY($3))
			AND ($4 OR archived_at IS NULL)
		ORDER BY id LIMIT $2`, after, limit+1, only, archived)
	games, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Game])
	if err != nil {
		return nil, false, fmt.Errorf("list games: %w", err)
	}
	games, more = postgres.TrimPage(games, limit)
	return games, more, nil
}

// Check vetoes a change to a game, inside the transaction that makes it, with
// an error (a fielderr.List for a refusal) for what the changed game g would
// break: campaigns.GameChangeCheck refuses a tag schema that segments or
// campaigns no longer fit, and a default locale campaigns have no text in.
type Check func(ctx context.Context, tx pgx.Tx, g Game) error

// Update loads the game with id under a row lock, lets change modify it, validates
// the result, lets check (unless nil) veto it and stores it, all in one
// transaction. It returns ErrNotFound, ErrArchived, the validation error, or
// check's error.
func (s *Store) Update(ctx context.Context, id string, change func(*Game), check Check) (Game, error) {
	var updated Game
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		g, err := get(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if g.ArchivedAt != nil {
			return ErrArchived
		}
		change(&g)
		if err := g.Validate(); err != nil {
			return err
		}
		if check != nil {
			if err := check(ctx, tx, g); err != nil {
				return err
			}
		}
		rows, _ := tx.Query(ctx, `
			UPDATE games SET name = $2, default_locale = $3, tags = $4, zone_tag = nullif($5, ''), confirm_over = $6,
				updated_at = now()
			WHERE id = $1 RETURNING `+gameColumns, g.ID, g.Name, g.DefaultLocale, tagsOrEmpty(g.Tags), g.ZoneTag,
			g.ConfirmOver)
		updated, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Game])
		if err != nil {
			return fmt.Errorf("update game %s: %w", id, err)
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "game.update", Game: id, ObjectType: "game", ObjectID: id})
	})
	return updated, err
}

// Load returns the game with id read through q, a pool or a transaction,
// without locking it, or ErrNotFound.
func Load(ctx context.Context, q postgres.DBTX, id string) (Game, error) {
	return get(ctx, q, id, "")
}

func get(ctx context.Context, q postgres.DBTX, id, lock string) (Game, error) {
	rows, _ := q.Query(ctx, `SELECT `+gameColumns+` FROM games WHERE id = $1 `+lock, id)
	g, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Game])
	if errors.Is(err, pgx.ErrNoRows) {
		return Game{}, ErrNotFound
	}
	if err != nil {
		return Game{}, fmt.Errorf("load game %s: %w", id, err)
	}
	return g, nil
}

// tagsOrEmpty stores a game without tags as {} rather than null.
func tagsOrEmpty(tags map[string]Tag) map[string]Tag {
	if tags == nil {
		return map[string]Tag{}
	}
	return tags
}

// GetShared loads the game with id inside tx and holds a share lock on it until tx
// ends, so that its tag schema cannot change, nor the game be archived, while
// a segment or a campaign is being checked against it. It returns ErrNotFound,
// or ErrArchived: nothing is created or changed under an archived game.
func GetShared(ctx context.Context, tx pgx.Tx, id string) (Game, error) {
	g, err := get(ctx, tx, id, "FOR SHARE")
	if err == nil && g.ArchivedAt != nil {
		return Game{}, ErrArchived
	}
	return g, err
}
