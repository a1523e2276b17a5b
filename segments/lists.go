package segments

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/postgres"
)

// Members returns up to n player ids of the member list list, in player-id
// (byte) order, after the id after ("" for the first). Fan-outs stream a list
// with it and resume after the last player they reached.
func Members(ctx context.Context, db postgres.DBTX, list int64, after string, n int) ([]string, error) {
	players := make([]string, 0, max(n, 0))
	for len(players) < n {
		// A chunk holds a hundred ids or so (at least 13), so this many chunks
		// usually cover what is left to read, and rarely much more.
		chunks := (n-len(players))/64 + 1
		rows, _ := db.Query(ctx, `
			SELECT last_player, players FROM member_chunks WHERE list_id = $1 AND last_player > $2
			ORDER BY last_player LIMIT $3`, list, after, chunks)
		read := 0
		var last, ids string
		_, err := pgx.ForEachRow(rows, []any{&last, &ids}, func() error {
			read++
			for id := range strings.SplitSeq(ids, "\n") {
				if id > after && len(players) < n {
					players = append(players, id)
				}
			}
			after = last
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read member list %d: %w", list, err)
		}
		if read < chunks {
			break // the end of the list
		}
	}
	return players, nil
}

// purgeBatch is how many chunks (of about a hundred members) of a retired list
// one statement deletes: a list of millions goes in many short statements
// rather than one long transaction, so every call makes progress within its
// caller's time limit.
const purgeBatch = 100

// PurgeRetiredLists deletes the member lists that a segment replaced and that
// nothing needs any more, and returns how many it finished. inUse reports
// which of the lists it is given something still reads
// (dispatch.Store.ListsInUse: the lists of dispatches not cleared yet). A long
// list is deleted a batch at a time; what a call leaves when ctx ends, the next
// one continues.
//
// The retired lists are read before inUse is asked, and that order makes the
// purge safe: a retired list never becomes current again, and whatever read
// it while it was current (a send records its dispatch under the segment's
// share lock, which the swap that retires the list waits for) committed
// before it was retired, so inUse, asked later, sees it.
func (s *Store) PurgeRetiredLists(ctx context.Context, inUse func(context.Context, []int64) ([]int64, error)) (int64, error) {
	rows, _ := s.db.Query(ctx, `SELECT id FROM member_lists WHERE retired_at IS NOT NULL ORDER BY id`)
	retired, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("find retired member lists: %w", err)
	}
	if len(retired) == 0 {
		return 0, nil
	}
	needed, err := inUse(ctx, retired)
	if err != nil {
		return 0, fmt.Errorf("find retired member lists still in use: %w", err)
	}
	var n int64
	for _, id := range retired {
		if slices.Contains(needed, id) {
			continue
		}
		if err := s.purgeList(ctx, id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (s *Store) purgeList(ctx context.Context, id int64) error {
	for {
		tag, err := s.db.Exec(ctx, `
			DELETE FROM member_chunks WHERE list_id = $1 AND last_player IN (
				SELECT last_player FROM member_chunks WHERE list_id = $1 ORDER BY last_player LIMIT $2)`, id, purgeBatch)
		if err != nil {
			return fmt.Errorf("delete members of retired list %d: %w", id, err)
		}
		if tag.RowsAffected() < purgeBatch {
			break
		}
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM member_lists WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete retired member list %d: %w", id, err)
	}
	return nil
}
