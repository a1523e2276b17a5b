package receipts

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/mqttout"
)

// benchReceipts is how many receipts a benchmark stores: 200,000, or
// HERALD_BENCH_RECEIPTS (1000000 for issue 13's figures).
func benchReceipts(b *testing.B) int {
	n := 200_000
	if v := os.Getenv("HERALD_BENCH_RECEIPTS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err, "HERALD_BENCH_RECEIPTS")
	}
	return n
}

// benchSet is n distinct receipts of one send: players times four events.
type benchSet struct {
	send     uuid.UUID
	topics   []string
	payloads [][]byte
	rows     [][]any // the same receipts as table rows
}

func newBenchSet(b *testing.B, db *pgxpool.Pool, n int) benchSet {
	b.Helper()
	now := time.Now()
	set := benchSet{send: newSend(b, db, "g1", now)}
	events := []string{"delivered", "displayed", "clicked", "dismissed"}
	for i := range n {
		player, event := "p"+strconv.Itoa(i/4), events[i%4]
		set.topics = append(set.topics, topic("g1", player))
		set.payloads = append(set.payloads, payload(set.send, event, now))
		set.rows = append(set.rows, []any{set.send, "g1", player, event, now, now})
	}
	_, _, err := NewStore(db, 0).Maintain(context.Background(), now)
	require.NoError(b, err)
	return set
}

// bare stores rows the plainest way: per batch, COPY into a staging table
// and INSERT ... ON CONFLICT DO NOTHING, in one transaction.
func bare(b *testing.B, db *pgxpool.Pool, rows [][]any) time.Duration {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < len(rows); i += DefaultBatch {
		batch := rows[i:min(i+DefaultBatch, len(rows))]
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS bare_staging
				(send_id uuid, game_id text, player_id text, event text, client_at timestamptz, received_at timestamptz)
				ON COMMIT DELETE ROWS`); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"bare_staging"}, stagingColumns, pgx.CopyFromRows(batch)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO receipts SELECT * FROM bare_staging ON CONFLICT DO NOTHING`)
			return err
		})
		require.NoError(b, err)
	}
	return time.Since(start)
}

func truncate(b *testing.B, db *pgxpool.Pool) {
	b.Helper()
	_, err := db.Exec(context.Background(), `TRUNCATE receipts`)
	require.NoError(b, err)
}

// benchRounds is how many slices each path stores the receipts in, taking
// turns.
const benchRounds = 10

// BenchmarkReceipts compares Herald's ingestion path with a bare COPY plus
// INSERT ... ON CONFLICT DO NOTHING of the same rows, in the same run, and
// reports both rates and their ratio. Herald's path is Handle (topic and
// payload parsing) called one receipt at a time as paho's router does, the
// buffer, and the writer's batches (send lookup, COPY into a staging table, a
// de-duplicating insert, notify). The bare path copies prepared rows in
// batches of the same size. Each stores the receipts of a send of its own
// into the same table, in ten slices taking turns (bare, Herald, Herald,
// bare, ...), so that a machine whose load changes during the run (other work
// on a shared host) weighs on both alike:
//
//	go test -run '^$' -bench 'Receipts$' -benchtime 1x ./receipts/
//	HERALD_BENCH_RECEIPTS=1000000 go test -run '^$' -bench 'Receipts$' -benchtime 1x ./receipts/
func BenchmarkReceipts(b *testing.B) {
	n := benchReceipts(b)
	db, _ := dbtest.NewPool(b)
	for range b.N {
		bareSet, heraldSet := newBenchSet(b, db, n), newBenchSet(b, db, n)
		in := NewStore(db, 0).NewIngester(Config{Prefix: "herald", Log: testLog()})
		in.Start(context.Background())
		var bareTook, heraldTook time.Duration
		slice := (n + benchRounds - 1) / benchRounds
		for r := range benchRounds {
			from, to := r*slice, min((r+1)*slice, n)
			for turn := range 2 {
				if (r+turn)%2 == 0 {
					bareTook += bare(b, db, bareSet.rows[from:to])
					continue
				}
				start := time.Now()
				for i := from; i < to; i++ {
					in.Handle(heraldSet.topics[i], heraldSet.payloads[i])
				}
				waitSettled(b, in, int64(to))
				heraldTook += time.Since(start)
			}
		}
		in.Stop()
		require.EqualValues(b, n, in.Counters().Stored)
		truncate(b, db)
		bareRate, heraldRate := float64(n)/bareTook.Seconds(), float64(n)/heraldTook.Seconds()
		b.ReportMetric(heraldRate, "herald_receipts/s")
		b.ReportMetric(bareRate, "bare_receipts/s")
		b.ReportMetric(heraldRate/bareRate, "ratio")
		b.Logf("%d receipts each: Herald's ingestion %s (%.0f/s), bare COPY + INSERT %s (%.0f/s), ratio %.2f",
			n, heraldTook.Round(time.Millisecond), heraldRate, bareTook.Round(time.Millisecond), bareRate, heraldRate/bareRate)
	}
}

// BenchmarkReceiptsThroughBroker measures the whole way in: receipts
// published by four connections to a private Mosquitto, taken by Herald's
// receipts connection (mqttout.Subscriber) and stored. It reports receipts
// stored per second from the first publish to the last stored.
func BenchmarkReceiptsThroughBroker(b *testing.B) {
	n := benchReceipts(b)
	db, _ := dbtest.NewPool(b)
	set := newBenchSet(b, db, n)
	broker := brokertest.Start(b)
	for range b.N {
		sub, err := mqttout.NewSubscriber(mqttout.SubscriberConfig{
			URL: broker.URL, Log: testLog(), Filter: Subscription("herald"), Fence: Fence("herald"),
		})
		require.NoError(b, err)
		in := NewStore(db, 0).NewIngester(Config{Prefix: "herald", Source: sub, Log: testLog()})
		in.Start(context.Background())
		require.Eventually(b, sub.Subscribed, patience, 5*time.Millisecond)

		start := time.Now()
		var wg sync.WaitGroup
		const conns = 4
		for c := range conns {
			client := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID(fmt.Sprintf("bench-%d", c)))
			tok := client.Connect()
			require.True(b, tok.WaitTimeout(patience) && tok.Error() == nil)
			wg.Go(func() {
				defer client.Disconnect(100)
				window := make(chan mqtt.Token, 1000)
				go func() {
					for i := c; i < n; i += conns {
						window <- client.Publish(set.topics[i], 1, false, set.payloads[i])
					}
					close(window)
				}()
				for tok := range window {
					tok.WaitTimeout(patience)
				}
			})
		}
		wg.Wait()
		waitSettled(b, in, int64(n))
		took := time.Since(start)
		in.Stop()
		require.EqualValues(b, n, in.Counters().Stored)
		truncate(b, db)
		b.ReportMetric(float64(n)/took.Seconds(), "receipts/s")
		b.Logf("%d receipts through the broker in %s (%.0f/s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	}
}
