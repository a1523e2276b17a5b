package games

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/audit"
)

// Archive archives the game with id once check (campaigns.GameArchiveCheck:
// no campaign of it is unfinished) lets it, in one transaction under the
// game's row lock, which creating or changing anything under the game waits
// for (GetShared). Archiving an archived game changes nothing. It returns the
// game, ErrNotFound, or check's error.
func (s *Store) Archive(ctx context.Context, id string, check Check) (Game, error) {
	return s.setArchived(ctx, id, true, check)
}

// Unarchive makes an archived game usable again. Unarchiving a game that is
// not archived changes nothing. It returns the game, or ErrNotFound.
func (s *Store) Unarchive(ctx context.Context, id string) (Game, error) {
	return s.setArchived(ctx, id, false, nil)
}

func (s *Store) setArchived(ctx context.Context, id string, archive bool, check Check) (Game, error) {
	var out Game
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		g, err := get(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if (g.ArchivedAt != nil) == archive {
			out = g
			return nil
		}
		if check != nil {
			if err := check(ctx, tx, g); err != nil {
				return err
			}
		}
		rows, _ := tx.Query(ctx, `
			UPDATE games SET archived_at = CASE WHEN $2 THEN now() END, updated_at = now()
			WHERE id = $1 RETURNING `+gameColumns, id, archive)
		out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Game])
		if err != nil {
			return fmt.Errorf("archive game %s: %w", id, err)
		}
		action := "game.archive"
		if !archive {
			action = "game.unarchive"
		}
		return audit.Record(ctx, tx, audit.Entry{Action: action, Game: id, ObjectType: "game", ObjectID: id})
	})
	return out, err
}
