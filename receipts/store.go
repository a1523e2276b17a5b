package receipts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultRetention is how long receipts are kept unless told otherwise.
const DefaultRetention = 30 * 24 * time.Hour

// NotifyChannel is the Postgres channel each write notifies, once committed,
// with {"ids": [...]}: the distinct send ids of its new delivered receipts
// (several notifications when the list is long). Kick-out waits listen to it.
const NotifyChannel = "herald_receipts"

// notifyMax bounds one notification's payload (Postgres allows 8000 bytes).
const notifyMax = 7000

// maxCachedSends bounds the sends a Store remembers; past it, it starts over.
const maxCachedSends = 100_000

// Store keeps receipts in Postgres: batched writes, partitions and stats.
type Store struct {
	db        *pgxpool.Pool
	retention time.Duration

	mu    sync.Mutex
	days  map[int64]bool     // days known to have a partition; nil: not read yet
	sends map[uuid.UUID]send // sends seen in receipts
}

// send is what ingestion needs of a send: its game and its partition's day.
type send struct {
	game string
	day  int64
}

// NewStore returns a Store on db that keeps receipts for retention
// (DefaultRetention if 0).
func NewStore(db *pgxpool.Pool, retention time.Duration) *Store {
	if retention <= 0 {
		retention = DefaultRetention
	}
	return &Store{db: db, retention: retention, sends: map[uuid.UUID]send{}}
}

// row is one receipt on its way to the table.
type row struct {
	send       uuid.UUID
	game       string
	player     string
	event      string
	clientAt   time.Time
	receivedAt time.Time
}

// written is what one write did with a batch; each receipt is counted once.
type written struct {
	stored      int // new rows
	duplicates  int // already stored, or twice in the batch
	unknownSend int // the id is no send
	otherGame   int // the id is another game's send
	expired     int // the send is past retention
}

// write stores a batch: the receipts of known sends of the topic's game, in
// one transaction (COPY into a staging table, then one INSERT that skips
// duplicates), and notifies NotifyChannel. Receipts of unknown sends, of
// another game's sends or of sends past retention are counted and left out;
// partitions missing for the others are created first. An error leaves
// nothing stored.
func (s *Store) write(ctx context.Context, batch []row, now time.Time) (written, error) {
	var w written
	known, err := s.lookup(ctx, batch)
	if err != nil {
		return written{}, err
	}
	keep := make([]row, 0, len(batch))
	var days []int64
	for _, r := range batch {
		sd, ok := known[r.send]
		switch {
		case !ok:
			w.unknownSend++
		case sd.game != r.game:
			w.otherGame++
		case s.expired(sd.day, now):
			w.expired++
		default:
			keep = append(keep, r)
			if len(days) == 0 || days[len(days)-1] != sd.day {
				days = append(days, sd.day)
			}
		}
	}
	if len(keep) == 0 {
		return w, nil
	}
	missing, err := s.missingDays(ctx, days)
	if err != nil {
		return written{}, err
	}
	if len(missing) > 0 {
		if _, err := s.ensureDays(ctx, missing); err != nil {
			return written{}, err
		}
	}
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		w.stored, err = insert(ctx, tx, keep)
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23514" {
		// No partition for a row: one was dropped since this Store looked
		// (another replica's clock). Read the catalog again next time.
		s.forgetAll()
	}
	if err != nil {
		return written{}, err
	}
	w.duplicates = len(keep) - w.stored
	return w, nil
}

// insert copies rows into the staging table and from there into receipts,
// and notifies the sends of new delivered receipts. It returns how many rows
// were new.
func insert(ctx context.Context, tx pgx.Tx, rows []row) (int, error) {
	// A temporary table of the session, kept for its next writes and emptied
	// at each commit.
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS receipts_staging
		(send_id uuid, game_id text, player_id text, event text, client_at timestamptz, received_at timestamptz)
		ON COMMIT DELETE ROWS`); err != nil {
		return 0, fmt.Errorf("create receipts staging table: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"receipts_staging"}, stagingColumns, copySource(rows)); err != nil {
		return 0, fmt.Errorf("copy receipts: %w", err)
	}
	// The new rows per send (a batch has few sends): a hash aggregate, cheaper
	// than sorting them for DISTINCT.
	perSend, _ := tx.Query(ctx, `
		WITH new AS (
			INSERT INTO receipts (send_id, game_id, player_id, event, client_at, received_at)
			SELECT send_id, game_id, player_id, event, client_at, received_at FROM receipts_staging
			ON CONFLICT DO NOTHING
			RETURNING send_id, event)
		SELECT send_id::text, count(*), bool_or(event = 'delivered') FROM new GROUP BY send_id`)
	var stored int
	var delivered []string
	var send string
	var n int
	var anyDelivered bool
	_, err := pgx.ForEachRow(perSend, []any{&send, &n, &anyDelivered}, func() error {
		stored += n
		if anyDelivered {
			delivered = append(delivered, send)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("insert receipts: %w", err)
	}
	if len(delivered) > 0 {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`,
			NotifyChannel, notifyPayloads(delivered)); err != nil {
			return 0, fmt.Errorf("notify receipts: %w", err)
		}
	}
	return stored, nil
}

var stagingColumns = []string{"send_id", "game_id", "player_id", "event", "client_at", "received_at"}

// copySource hands rows to COPY in stagingColumns' order through one reused
// slice: pgx encodes each row before it asks for the next.
func copySource(rows []row) pgx.CopyFromSource {
	values := make([]any, len(stagingColumns))
	i := 0
	return pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(rows) {
			return nil, nil
		}
		r := &rows[i]
		i++
		values[0], values[1], values[2], values[3], values[4], values[5] = r.send, r.game, r.player, r.event, r.clientAt, r.receivedAt
		return values, nil
	})
}

// notifyPayloads splits ids into {"ids":[...]} payloads of at most notifyMax
// bytes each.
func notifyPayloads(ids []string) []string {
	var out []string
	var b strings.Builder
	for _, id := range ids {
		if b.Len() > 0 && b.Len()+len(id)+5 > notifyMax {
			b.WriteString("]}")
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() == 0 {
			b.WriteString(`{"ids":[`)
		} else {
			b.WriteByte(',')
		}
		b.WriteString(`"` + id + `"`)
	}
	if b.Len() > 0 {
		b.WriteString("]}")
		out = append(out, b.String())
	}
	return out
}

// lookup returns the sends among the ids of batch, from memory or else from
// the sends view. Ids that are no send are not remembered: a flood of made-up
// ids must not fill the memory.
func (s *Store) lookup(ctx context.Context, batch []row) (map[uuid.UUID]send, error) {
	known := map[uuid.UUID]send{}
	asked := map[uuid.UUID]bool{}
	var ask []uuid.UUID
	s.mu.Lock()
	for _, r := range batch {
		if _, done := known[r.send]; done || asked[r.send] {
			continue
		}
		if sd, ok := s.sends[r.send]; ok {
			known[r.send] = sd
		} else {
			asked[r.send] = true
			ask = append(ask, r.send)
		}
	}
	s.mu.Unlock()
	if len(ask) == 0 {
		return known, nil
	}
	rows, _ := s.db.Query(ctx, `SELECT id, game_id FROM sends WHERE id = ANY($1)`, ask)
	var id uuid.UUID
	var game string
	found := map[uuid.UUID]send{}
	_, err := pgx.ForEachRow(rows, []any{&id, &game}, func() error {
		day, _ := sendDay(id)
		found[id] = send{game: game, day: day}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up sends: %w", err)
	}
	s.mu.Lock()
	if len(s.sends)+len(found) > maxCachedSends {
		s.sends = map[uuid.UUID]send{}
	}
	for id, sd := range found {
		s.sends[id] = sd
		known[id] = sd
	}
	s.mu.Unlock()
	return known, nil
}
