package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/internal/sim"
	"github.com/heraldpush/herald/receipts"
)

// receiptsFromSim has simulated players (the simulator, 50 players to an
// MQTT connection) receive notices to everyone and answer each with
// delivered, displayed and clicked receipts, until sz.receipts receipts were
// sent, and reports receipts stored per second from the first send to the
// last receipt stored, none lost. The baseline stores the same rows (same
// sends, players and events) into the same table the plainest way: per batch
// of receipts.DefaultBatch, CopyFrom into a staging table and INSERT ... ON
// CONFLICT DO NOTHING, in one transaction.
func receiptsFromSim(t *testing.T, sz sizes, runs int, rec *recorder) {
	h := startHerald(t, 0)
	players := min(sz.players, max(1, sz.receipts/3))
	sends := (sz.receipts + 3*players - 1) / (3 * players)
	s := startSim(t, h, players, 50, 1, 1)
	db := connect(t, h.dbURL)
	ctx := context.Background()
	name := fmt.Sprintf("receipts: %s from %s simulated players, stored/s", number(float64(3*players*sends)), number(float64(players)))
	for run := range runs {
		if _, err := db.Exec(ctx, `TRUNCATE receipts`); err != nil {
			t.Fatal(err)
		}
		before := s.Snapshot().Receipts
		start := time.Now()
		var campaigns []string
		for i := range sends {
			c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
				"kind": "notice", "name": fmt.Sprintf("receipts %d.%d", run, i), "audience": map[string]any{"rule": map[string]any{"everyone": true}},
				"content": map[string]any{"title": map[string]any{"en": "Gift"}, "body": map[string]any{"en": "Log in for it"}},
			})
			campaigns = append(campaigns, c["id"].(string))
		}
		want := int64(3 * players * sends)
		stored, allSent := waitStored(t, db, s, before, want)
		heraldRate := float64(stored) / time.Since(start).Seconds()
		sentRate := float64(want) / allSent.Sub(start).Seconds()

		var dispatchIDs []pgUUID
		rows, err := db.Query(ctx, `SELECT id FROM dispatches WHERE campaign_id = ANY($1::uuid[])`, campaigns)
		if err != nil {
			t.Fatal(err)
		}
		dispatchIDs, err = pgx.CollectRows(rows, pgx.RowTo[pgUUID])
		if err != nil || len(dispatchIDs) != sends {
			t.Fatalf("dispatches of the sends: %d, %v", len(dispatchIDs), err)
		}
		if _, err := db.Exec(ctx, `TRUNCATE receipts`); err != nil {
			t.Fatal(err)
		}
		took := bareReceipts(t, db, dispatchIDs, players)
		var n int64
		if err := db.QueryRow(ctx, `SELECT count(*) FROM receipts`).Scan(&n); err != nil || n != want {
			t.Fatalf("bare receipts stored: %d of %d, %v", n, want, err)
		}
		rec.add(figure{row: name, unit: "/s", herald: heraldRate, base: float64(want) / took.Seconds(), goal: ptr(ratioAtLeast(0.8))})
		// What limits it: how fast the simulator (and the broker) got them out,
		// from the first send to the last receipt sent.
		rec.add(figure{row: "receipts: sent by the simulator", unit: "/s", herald: sentRate, base: math.NaN()})
	}
}

type pgUUID = [16]byte

// waitStored waits until the simulator has sent want receipts more than
// before and Herald has stored every one, failing if either stalls for a
// minute or the simulator sent other than want; it returns the count stored
// and when the last receipt was seen sent.
func waitStored(t *testing.T, db *pgx.Conn, s *sim.Sim, before, want int64) (int64, time.Time) {
	t.Helper()
	watch := newStallWatch()
	var allSent time.Time
	for {
		var stored int64
		if err := db.QueryRow(context.Background(), `SELECT count(*) FROM receipts`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		sent := s.Snapshot().Receipts - before
		if sent > want || stored > want {
			t.Fatalf("the simulator sent %d receipts and Herald stored %d: want %d", sent, stored, want)
		}
		if sent == want && allSent.IsZero() {
			allSent = time.Now()
		}
		if stored == want {
			if allSent.IsZero() {
				allSent = time.Now()
			}
			return stored, allSent
		}
		if watch.stalled(sent + stored) {
			t.Fatalf("receipts: %d sent, %d stored of %d, nothing more for a minute", sent, stored, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bareReceipts stores delivered, displayed and clicked receipts of every
// send for players sim-1 to sim-{players} as the baseline does, and returns
// how long its transactions took (making the rows, in batches so that a
// million of them are never held at once, is not counted).
func bareReceipts(t *testing.T, db *pgx.Conn, sends []pgUUID, players int) time.Duration {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	var took time.Duration
	batch := make([][]any, 0, receipts.DefaultBatch)
	flush := func() {
		start := time.Now()
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS bare_staging
				(send_id uuid, game_id text, player_id text, event text, client_at timestamptz, received_at timestamptz)
				ON COMMIT DELETE ROWS`); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"bare_staging"},
				[]string{"send_id", "game_id", "player_id", "event", "client_at", "received_at"}, pgx.CopyFromRows(batch)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO receipts SELECT * FROM bare_staging ON CONFLICT DO NOTHING`)
			return err
		})
		if err != nil {
			t.Fatalf("bare receipts: %v", err)
		}
		took += time.Since(start)
		batch = batch[:0]
	}
	for _, send := range sends {
		for p := 1; p <= players; p++ {
			for _, e := range []string{"delivered", "displayed", "clicked"} {
				batch = append(batch, []any{send, "g1", "sim-" + strconv.Itoa(p), e, now, now})
				if len(batch) == receipts.DefaultBatch {
					flush()
				}
			}
		}
	}
	if len(batch) > 0 {
		flush()
	}
	return took
}
