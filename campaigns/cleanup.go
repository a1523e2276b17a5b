package campaigns

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/segments"
)

// ErrUnfinished is returned when deleting a campaign that is still scheduled,
// live or otherwise not finished: cancel it first.
var ErrUnfinished = errors.New("campaign is not finished")

// Delete archives a finished campaign (completed, missed, expired or
// canceled) of game: it is left out of lists unless they ask for archived
// campaigns, and still answers by its id, so that its dispatches, their
// counters and the audit log keep what they refer to. Deleting it again
// changes nothing. It returns ErrNotFound, or ErrUnfinished.
func (s *Store) Delete(ctx context.Context, game string, id uuid.UUID) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		c, err := get(ctx, tx, game, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if !c.Status.Finished() {
			return fmt.Errorf("%w: it is %s", ErrUnfinished, c.Status)
		}
		if c.ArchivedAt != nil {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET archived_at = now(), updated_at = now() WHERE id = $1`, id); err != nil {
			return fmt.Errorf("archive campaign %s: %w", id, err)
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "campaign.delete", Game: game, ObjectType: "campaign",
			ObjectID: id.String(), Detail: map[string]any{"archived": true, "status": c.Status}})
	})
}

// ErrGameBusy is returned (wrapped, naming them) when archiving a game that
// has campaigns that are not finished.
var ErrGameBusy = errors.New("the game has campaigns that are not finished")

// GameArchiveCheck is the policy on archiving a game (games.Store.Archive):
// every campaign of it must be finished, since nothing under an archived game
// runs. It refuses with an error wrapping ErrGameBusy that names them.
func GameArchiveCheck(ctx context.Context, tx pgx.Tx, g games.Game) error {
	unfinished, err := unfinishedOf(ctx, tx, `game_id = $1`, g.ID)
	if err != nil {
		return err
	}
	if unfinished != "" {
		return fmt.Errorf("%w: %s", ErrGameBusy, unfinished)
	}
	return nil
}

// SegmentUsers is the policy on deleting a segment (segments.Users): it may go
// once every campaign that names it as its audience is finished. It reports
// whether any campaign names it, and refuses with an error wrapping
// segments.ErrInUse, naming them, while some are not finished.
func SegmentUsers(ctx context.Context, tx pgx.Tx, id uuid.UUID) (bool, error) {
	unfinished, err := unfinishedOf(ctx, tx, `segment_id = $1`, id)
	if err != nil {
		return false, err
	}
	if unfinished != "" {
		return true, fmt.Errorf("%w: %s", segments.ErrInUse, unfinished)
	}
	var referenced bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM campaigns WHERE segment_id = $1)`, id).Scan(&referenced); err != nil {
		return false, fmt.Errorf("find campaigns of segment %s: %w", id, err)
	}
	return referenced, nil
}

// maxNamed bounds the campaigns a refusal names.
const maxNamed = 5

// unfinishedOf names the campaigns matching where (with arg as $1) that are
// not finished, at most maxNamed of them and how many more; "" when none is.
func unfinishedOf(ctx context.Context, tx pgx.Tx, where string, arg any) (string, error) {
	rows, _ := tx.Query(ctx, `
		SELECT id, name, status, count(*) OVER () FROM campaigns
		WHERE `+where+` AND status <> ALL($2::text[]) ORDER BY id LIMIT $3`, arg, finishedStatuses, maxNamed)
	var named []string
	var id uuid.UUID
	var name string
	var status Status
	var total int
	_, err := pgx.ForEachRow(rows, []any{&id, &name, &status, &total}, func() error {
		named = append(named, fmt.Sprintf("%s (%q, %s)", id, name, status))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("find unfinished campaigns: %w", err)
	}
	if total > len(named) {
		named = append(named, fmt.Sprintf("and %d more", total-len(named)))
	}
	return strings.Join(named, ", "), nil
}
