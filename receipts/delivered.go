package receipts

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/protocol"
)

// Delivery is one player's delivered receipt of a send: when Herald read it.
type Delivery struct {
	Player string
	At     time.Time
}

// Delivered returns the delivered receipts of send by the players named (in
// no particular order), or, with players nil, the first limit in the order
// Herald read them and how many there are in all. A kick-out's status reads
// it: its targeted players, or who confirmed a server kick-out.
func (s *Store) Delivered(ctx context.Context, send uuid.UUID, players []string, limit int) ([]Delivery, int, error) {
	var rows pgx.Rows
	if players != nil {
		rows, _ = s.db.Query(ctx, `
			SELECT player_id, received_at, 0 FROM receipts
			WHERE send_id = $1 AND event = $2 AND player_id = ANY($3)`, send, protocol.EventDelivered, players)
	} else {
		rows, _ = s.db.Query(ctx, `
			SELECT player_id, received_at, count(*) OVER () FROM receipts
			WHERE send_id = $1 AND event = $2
			ORDER BY received_at, player_id LIMIT $3`, send, protocol.EventDelivered, limit)
	}
	total := 0
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Delivery, error) {
		var d Delivery
		err := row.Scan(&d.Player, &d.At, &total)
		return d, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read delivered receipts of %s: %w", send, err)
	}
	if players != nil {
		total = len(got)
	}
	return got, total, nil
}

// CountDelivered counts the players among players whose delivered receipt of
// send is stored: the cheap check of a request waiting for them.
func (s *Store) CountDelivered(ctx context.Context, send uuid.UUID, players []string) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `
		SELECT count(*) FROM receipts WHERE send_id = $1 AND event = $2 AND player_id = ANY($3)`,
		send, protocol.EventDelivered, players).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count delivered receipts of %s: %w", send, err)
	}
	return n, nil
}
