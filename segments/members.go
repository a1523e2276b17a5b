package segments

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/heraldpush/herald/audit"
)

// swapLockWait bounds how long an upload's final swap waits for the segment's
// row lock, which sends (FOR SHARE) and edits hold for moments only.
const swapLockWait = 5 * time.Second

// ReplaceMembers replaces the member list of the segment id of game with the
// player ids read from body, one per line ("\n" or "\r\n" endings; empty lines
// are skipped; duplicates count once). The body is streamed into Postgres with
// COPY and never held in memory, so lists of tens of millions go through in
// bounded memory. The new list replaces the old one in a single transaction
// (the old one is retired, see below): an invalid line, a read error or a
// cancelled request leaves the previous list untouched. It returns the new
// member count, ErrNotFound, or a fielderr.List on field "body" naming the first
// invalid line.
//
// Lists are stored as chunks of ids in byte order (member_chunks). Ids that
// arrive in that order, the usual case for an exported list, go straight into
// chunks as they are read. From the first id out of order on, the rest of the
// body is sorted in runs spilled to temporary files (runs), and once the body
// has ended the chunks already stored are read back and merged with them.
//
// A slow client holds nothing that sends need: while the body streams the
// transaction holds no lock on the segment (the new list's id is drawn from
// its sequence, its row inserted at the end), and the chunks have no foreign
// key. The segment is locked for the swap alone, at the end, for a moment. The
// caller bounds the whole upload through ctx.
func (s *Store) ReplaceMembers(ctx context.Context, game string, id uuid.UUID, body io.Reader) (int64, error) {
	var count int64
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := get(ctx, tx, game, id, ""); err != nil {
			return err // a missing segment is refused before the body is read
		}
		var list int64
		if err := tx.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('member_lists', 'id'))`).Scan(&list); err != nil {
			return fmt.Errorf("new member list for %s: %w", id, err)
		}
		lines := newMemberLines(body)
		var unsorted *runs
		defer func() {
			if unsorted == nil {
				return
			}
			if err := unsorted.close(); err != nil {
				slog.WarnContext(ctx, "remove the sort files of a member upload", "segment", id, "error", err)
			}
		}()
		spill := func(first []byte) error {
			unsorted = newRuns(s.spillDir, s.runBytes)
			for player, ok := first, true; ok; {
				if err := unsorted.add(player); err != nil {
					return err
				}
				var err error
				if player, ok, err = lines.next(); err != nil {
					return err
				}
			}
			return nil
		}
		n, err := copyChunks(ctx, tx, list, ascending(lines, spill))
		if err != nil {
			return err
		}
		if unsorted != nil {
			if n, err = mergeChunks(ctx, tx, list, n, unsorted); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO member_lists (id, segment_id) VALUES ($1, $2)`, list, id)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23503" { // deleted while the body streamed
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("new member list for %s: %w", id, err)
		}
		count = n
		return swapList(ctx, tx, game, id, list, count)
	})
	return count, err
}

// copyChunks stores the ids of from as chunks of list and returns how many
// there were. An error of from is returned as it is.
func copyChunks(ctx context.Context, tx pgx.Tx, list int64, from idSource) (int64, error) {
	src := &chunkRows{list: list, from: from}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"member_chunks"}, []string{"list_id", "last_player", "players"}, src); err != nil {
		if src.err != nil {
			return 0, src.err // the reader's own error, unwrapped, with its line number
		}
		return 0, fmt.Errorf("copy members of list %d: %w", list, err)
	}
	return src.count, nil
}

// mergeChunks replaces the stored chunks of list, the stored ids that came
// in order, with the merge of them and the runs, and returns the member count.
func mergeChunks(ctx context.Context, tx pgx.Tx, list, stored int64, unsorted *runs) (int64, error) {
	if stored > 0 {
		err := unsorted.addRun(func(w *bufio.Writer) error {
			rows, _ := tx.Query(ctx, `SELECT players FROM member_chunks WHERE list_id = $1 ORDER BY last_player`, list)
			var players []byte
			_, err := pgx.ForEachRow(rows, []any{&players}, func() error {
				w.Write(players) // a bufio.Writer keeps its first error for Flush
				return w.WriteByte('\n')
			})
			if err != nil {
				return fmt.Errorf("read back members of list %d: %w", list, err)
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM member_chunks WHERE list_id = $1`, list); err != nil {
			return 0, fmt.Errorf("replace members of list %d: %w", list, err)
		}
	}
	merged, err := unsorted.merge()
	if err != nil {
		return 0, err
	}
	return copyChunks(ctx, tx, list, merged)
}

// swapList makes newList the segment's list and retires the one it replaces,
// which is read under the row lock: of two uploads that finish together, the
// later one retires the earlier one's list.
func swapList(ctx context.Context, tx pgx.Tx, game string, id uuid.UUID, newList, count int64) error {
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = '%dms'`, swapLockWait.Milliseconds())); err != nil {
		return fmt.Errorf("bound the member list swap: %w", err)
	}
	var oldList *int64
	err := tx.QueryRow(ctx, `
		SELECT member_list_id FROM segments WHERE game_id = $1 AND id = $2 AND deleted_at IS NULL FOR NO KEY UPDATE`,
		game, id).Scan(&oldList)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("lock segment %s: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `
		UPDATE segments SET member_list_id = $2, member_count = $3, updated_at = now() WHERE id = $1`,
		id, newList, count); err != nil {
		return fmt.Errorf("switch member list of %s: %w", id, err)
	}
	if oldList != nil {
		// Retired, not deleted: a dispatch may still stream it or have to clear
		// its players' topics. PurgeRetiredLists deletes it once nothing does.
		if _, err := tx.Exec(ctx, `UPDATE member_lists SET retired_at = now() WHERE id = $1`, *oldList); err != nil {
			return fmt.Errorf("retire old member list of %s: %w", id, err)
		}
	}
	return audit.Record(ctx, tx, audit.Entry{Action: "segment.members.replace", Game: game, ObjectType: "segment",
		ObjectID: id.String(), Detail: map[string]int64{"member_count": count}})
}
