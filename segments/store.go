package segments

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/postgres"
)

// Errors returned by Store methods.
var (
	ErrNotFound = errors.New("segment not found")
	// ErrInUse is returned (wrapped, naming the campaigns) when deleting a
	// segment that an unfinished campaign is the audience of.
	ErrInUse = errors.New("segment is the audience of a campaign")
)

// Store keeps segments and their member lists in Postgres.
type Store struct {
	db       *pgxpool.Pool
	runBytes int    // see defaultRunBytes
	spillDir string // where uploads not in order are sorted; "" for os.TempDir
}

// NewStore returns a Store over db.
func NewStore(db *pgxpool.Pool) *Store {
	return &Store{db: db, runBytes: defaultRunBytes}
}

const segmentColumns = `id, game_id, name, rule, member_count, created_at, updated_at`

// Create validates seg against its game's tag schema and stores it with a new id.
// It returns games.ErrNotFound or the validation error.
func (s *Store) Create(ctx context.Context, seg Segment) (Segment, error) {
	var created Segment
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		g, err := games.GetShared(ctx, tx, seg.GameID)
		if err != nil {
			return err
		}
		if err := seg.Validate(g.Tags); err != nil {
			return err
		}
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("new segment id: %w", err)
		}
		rows, _ := tx.Query(ctx, `
			INSERT INTO segments (id, game_id, name, rule) VALUES ($1, $2, $3, $4)
			RETURNING `+segmentColumns, id, seg.GameID, seg.Name, seg.Rule)
		created, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Segment])
		if err != nil {
			return fmt.Errorf("insert segment: %w", err)
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "segment.create", Game: seg.GameID, ObjectType: "segment", ObjectID: id.String()})
	})
	return created, err
}

// Get returns the segment id of game, or ErrNotFound.
func (s *Store) Get(ctx context.Context, game string, id uuid.UUID) (Segment, error) {
	return get(ctx, s.db, game, id, "")
}

// List returns up to limit segments of game in creation order, starting after
// the segment after (uuid.Nil: from the first). more reports whether others follow.
func (s *Store) List(ctx context.Context, game string, after uuid.UUID, limit int) (segs []Segment, more bool, err error) {
	rows, _ := s.db.Query(ctx, `
		SELECT `+segmentColumns+` FROM segments
		WHERE game_id = $1 AND id > $2 AND deleted_at IS NULL ORDER BY id LIMIT $3`, game, after, limit+1)
	segs, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Segment])
	if err != nil {
		return nil, false, fmt.Errorf("list segments of %s: %w", game, err)
	}
	segs, more = postgres.TrimPage(segs, limit)
	return segs, more, nil
}

// Update applies change to the segment id of game, validates the result against
// the game's tag schema and stores it. It returns ErrNotFound or the validation
// error.
func (s *Store) Update(ctx context.Context, game string, id uuid.UUID, change func(*Segment)) (Segment, error) {
	var updated Segment
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		g, err := games.GetShared(ctx, tx, game)
		if err != nil {
			return err
		}
		seg, err := get(ctx, tx, game, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		change(&seg)
		if err := seg.Validate(g.Tags); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `
			UPDATE segments SET name = $2, rule = $3, updated_at = now()
			WHERE id = $1 RETURNING `+segmentColumns, id, seg.Name, seg.Rule)
		updated, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Segment])
		if err != nil {
			return fmt.Errorf("update segment %s: %w", id, err)
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "segment.update", Game: game, ObjectType: "segment", ObjectID: id.String()})
	})
	return updated, err
}

// Users tells, inside the transaction that deletes segment id, whether
// campaigns name it as their audience: referenced when any does, and an error
// wrapping ErrInUse when one of them is unfinished (campaigns.SegmentUsers).
type Users func(ctx context.Context, tx pgx.Tx, id uuid.UUID) (referenced bool, err error)

// Delete deletes the segment id of game. It returns ErrNotFound, or users'
// refusal (ErrInUse) while an unfinished campaign names it.
//
// A segment no campaign names goes at once, with its member lists. One that
// finished campaigns name stays as a tombstone, so that their audience keeps
// meaning something: it is no longer listed, read, sent to or changed (it is
// not found), and its member lists are retired, for the scheduler to purge
// once no dispatch needs them (a canceled campaign may still be clearing its
// players' topics).
func (s *Store) Delete(ctx context.Context, game string, id uuid.UUID, users Users) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		// NO KEY UPDATE: it waits for sends (FOR SHARE) in flight and holds off
		// new ones, but not for an upload streaming its list.
		if _, err := get(ctx, tx, game, id, "FOR NO KEY UPDATE"); err != nil {
			return err
		}
		referenced, err := users(ctx, tx, id)
		if err != nil {
			return err
		}
		if referenced {
			if _, err := tx.Exec(ctx, `UPDATE member_lists SET retired_at = coalesce(retired_at, now()) WHERE segment_id = $1`, id); err != nil {
				return fmt.Errorf("retire member lists of segment %s: %w", id, err)
			}
			if _, err := tx.Exec(ctx, `
				UPDATE segments SET deleted_at = now(), member_list_id = NULL, member_count = 0, updated_at = now()
				WHERE id = $1`, id); err != nil {
				return fmt.Errorf("delete segment %s: %w", id, err)
			}
		} else if err := deleteRow(ctx, tx, id); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "segment.delete", Game: game, ObjectType: "segment", ObjectID: id.String()})
	})
}

// deleteRow deletes a segment no campaign names, with its member lists.
func deleteRow(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	// The segment points at its current list and every list points at its
	// segment: clear the pointer, delete the members (their chunks have no
	// foreign key, see the migration), then the lists cascade with the segment.
	if _, err := tx.Exec(ctx, `UPDATE segments SET member_list_id = NULL WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete segment %s: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `
		DELETE FROM member_chunks WHERE list_id IN (SELECT id FROM member_lists WHERE segment_id = $1)`, id); err != nil {
		return fmt.Errorf("delete members of segment %s: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM segments WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete segment %s: %w", id, err)
	}
	return nil
}

// ForSend loads the segment id of game inside tx for a send: with a share lock,
// so that its rule and member list stay as read until tx ends, and with the id of
// its current member list (nil when none was uploaded). It returns ErrNotFound.
func ForSend(ctx context.Context, tx pgx.Tx, game string, id uuid.UUID) (Segment, *int64, error) {
	seg, err := get(ctx, tx, game, id, "FOR SHARE")
	if err != nil {
		return Segment{}, nil, err
	}
	var list *int64
	if err := tx.QueryRow(ctx, `SELECT member_list_id FROM segments WHERE id = $1`, id).Scan(&list); err != nil {
		return Segment{}, nil, fmt.Errorf("load member list of segment %s: %w", id, err)
	}
	return seg, list, nil
}

// CheckSchema verifies, inside the transaction that changes a game's tag schema,
// that every segment of the game still fits the new schema. It returns a
// fielderr.List on field "tags" naming each segment that would break.
func CheckSchema(ctx context.Context, tx pgx.Tx, g games.Game) error {
	rows, _ := tx.Query(ctx, `SELECT `+segmentColumns+` FROM segments WHERE game_id = $1 AND deleted_at IS NULL ORDER BY id`, g.ID)
	segs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Segment])
	if err != nil {
		return fmt.Errorf("load segments of %s: %w", g.ID, err)
	}
	var errs fielderr.List
	for _, seg := range segs {
		if err := ValidateRule(seg.Rule, "rule", g.Tags); err != nil {
			errs.Add("tags", "segment %s (%s) would no longer be valid: %v", seg.ID, seg.Name, err)
		}
	}
	return errs.Err()
}

func get(ctx context.Context, q postgres.DBTX, game string, id uuid.UUID, lock string) (Segment, error) {
	rows, _ := q.Query(ctx, `SELECT `+segmentColumns+` FROM segments WHERE game_id = $1 AND id = $2 AND deleted_at IS NULL `+lock, game, id)
	seg, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Segment])
	if errors.Is(err, pgx.ErrNoRows) {
		return Segment{}, ErrNotFound
	}
	if err != nil {
		return Segment{}, fmt.Errorf("load segment %s: %w", id, err)
	}
	return seg, nil
}
