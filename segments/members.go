package segments

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/protocol"
)

// swapLockWait bounds how long an upload's final swap waits for the segment's
// row lock, which sends (FOR SHARE) and edits hold for moments only.
const swapLockWait = 5 * time.Second

// ReplaceMembers replaces the member list of the segment id of game with the
// player ids read from body, one per line ("\n" or "\r\n" endings; empty lines
// are skipped; duplicates count once). The body is streamed into Postgres with
// COPY and never held in memory, so lists of tens of millions go through in
// constant memory. The new list replaces the old one in a single transaction
// (the old one is retired, see below): an invalid line, a read error or a
// cancelled request leaves the previous list untouched. It returns the new
// member count, ErrNotFound, or a fielderr.List on field "body" naming the first
// invalid line.
//
// A slow client holds nothing that sends need: while the body streams the
// transaction holds no lock on the segment, and storing the list takes only
// the key-share lock of the new list's foreign key, which sends' share locks
// do not conflict with. The segment is locked for the swap alone, at the end,
// for a moment. The caller bounds the whole upload through ctx.
func (s *Store) ReplaceMembers(ctx context.Context, game string, id uuid.UUID, body io.Reader) (int64, error) {
	var count int64
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := get(ctx, tx, game, id, ""); err != nil {
			return err // a missing segment is refused before the body is read
		}
		// COPY into an unindexed temporary table first: it is not WAL-logged and
		// takes duplicates, which the insert into the keyed table then drops.
		if _, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE member_upload (player_id text NOT NULL) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("create upload table: %w", err)
		}
		src := &memberLines{r: bufio.NewReaderSize(body, 64<<10)}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"member_upload"}, []string{"player_id"}, src); err != nil {
			if src.err != nil {
				return src.err // the reader's own error, unwrapped, with its line number
			}
			return fmt.Errorf("copy members of %s: %w", id, err)
		}
		var newList int64
		err := tx.QueryRow(ctx, `INSERT INTO member_lists (segment_id) VALUES ($1) RETURNING id`, id).Scan(&newList)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23503" { // deleted while the body streamed
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("new member list for %s: %w", id, err)
		}
		// Sorted, the rows reach the key's btree in order, which for a list in random
		// order is about twice as fast; the sort gets the memory to do it mostly in RAM.
		if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '256MB'`); err != nil {
			return fmt.Errorf("size sort memory: %w", err)
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO segment_members (list_id, player_id)
			SELECT DISTINCT $1::bigint, player_id FROM member_upload ORDER BY 2`, newList)
		if err != nil {
			return fmt.Errorf("store members of %s: %w", id, err)
		}
		count = tag.RowsAffected()
		return swapList(ctx, tx, game, id, newList, count)
	})
	return count, err
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
		SELECT member_list_id FROM segments WHERE game_id = $1 AND id = $2 FOR NO KEY UPDATE`,
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

// memberLines is a pgx.CopyFromSource reading one player id per line. It keeps
// one line in memory at a time and stops at the first invalid one.
type memberLines struct {
	r    *bufio.Reader
	line int
	id   string
	err  error
}

func (m *memberLines) Next() bool {
	for m.err == nil {
		raw, err := m.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			m.line++
			m.err = lineError(m.line, "longer than %d bytes", protocol.MaxIDLen)
			return false
		}
		if len(raw) == 0 && err != nil {
			if !errors.Is(err, io.EOF) {
				m.err = fmt.Errorf("read member list: %w", err)
			}
			return false
		}
		if err != nil && !errors.Is(err, io.EOF) {
			m.err = fmt.Errorf("read member list: %w", err)
			return false
		}
		m.line++
		raw = bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
		if len(raw) == 0 {
			continue
		}
		if idErr := protocol.CheckID(string(raw)); idErr != nil {
			m.err = lineError(m.line, "player id %v", idErr)
			return false
		}
		m.id = string(raw)
		return true
	}
	return false
}

func (m *memberLines) Values() ([]any, error) { return []any{m.id}, nil }

func (m *memberLines) Err() error { return m.err }

func lineError(line int, format string, args ...any) error {
	return fielderr.New("body", "line %d: "+format, append([]any{line}, args...)...)
}
