package receipts

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/protocol"
)

// Events holds one number per receipt event.
type Events struct {
	Delivered int64 `json:"delivered"`
	Displayed int64 `json:"displayed"`
	Clicked   int64 `json:"clicked"`
	Dismissed int64 `json:"dismissed"`
}

// add counts n for event.
func (e *Events) add(event string, n int64) {
	switch event {
	case protocol.EventDelivered:
		e.Delivered += n
	case protocol.EventDisplayed:
		e.Displayed += n
	case protocol.EventClicked:
		e.Clicked += n
	case protocol.EventDismissed:
		e.Dismissed += n
	}
}

// Funnel is the share of players who went on to the next step; a ratio is
// absent (nil) while its denominator is zero.
type Funnel struct {
	DisplayedPerDelivered *float64 `json:"displayed_per_delivered"`
	ClickedPerDisplayed   *float64 `json:"clicked_per_displayed"`
	DismissedPerDisplayed *float64 `json:"dismissed_per_displayed"`
}

// Latency is the delivery latency of the delivered receipts: from the send's
// sent_at (its fan-out started) to when Herald read the receipt from the
// broker, both on Herald's clocks; the client's own time is not trusted.
// Percentiles are durations such as "1.25s", absent while Receipts is 0.
type Latency struct {
	Receipts int64  `json:"receipts"`
	P50      string `json:"p50,omitempty"`
	P90      string `json:"p90,omitempty"`
	P99      string `json:"p99,omitempty"`
}

// Minute is the receipts Herald received in one minute (by its clock), per event.
type Minute struct {
	Minute time.Time `json:"minute"`
	Events
}

// Stats are the client-level figures of one or more sends.
type Stats struct {
	// Players counts the distinct players that reported each event.
	Players  Events   `json:"players"`
	Funnel   Funnel   `json:"funnel"`
	Latency  Latency  `json:"latency"`
	Timeline []Minute `json:"timeline"` // minutes with receipts only, oldest first
}

// Stats computes the figures of the sends, reading only their receipts
// (every query leads with send_id, the first column of the receipts key, and
// partitions of other days are not read). A player counts once per event
// over all the sends.
func (s *Store) Stats(ctx context.Context, sends []uuid.UUID) (Stats, error) {
	st := Stats{Timeline: []Minute{}}
	if len(sends) == 0 {
		return st, nil
	}
	var err error
	if st.Players, err = s.players(ctx, sends); err != nil {
		return Stats{}, err
	}
	st.Funnel = Funnel{
		DisplayedPerDelivered: ratio(st.Players.Displayed, st.Players.Delivered),
		ClickedPerDisplayed:   ratio(st.Players.Clicked, st.Players.Displayed),
		DismissedPerDisplayed: ratio(st.Players.Dismissed, st.Players.Displayed),
	}
	if st.Latency, err = s.latency(ctx, sends); err != nil {
		return Stats{}, err
	}
	if st.Timeline, err = s.timeline(ctx, sends); err != nil {
		return Stats{}, err
	}
	return st, nil
}

// The stats queries. Each reads receipts by send_id, the first column of
// their key, so it reads the sends' rows only (TestStatsReadOnlyTheirSends).
const (
	// Within one send each row is one player's event already.
	playersOfOne  = `SELECT event, count(*) FROM receipts WHERE send_id = $1 GROUP BY event`
	playersOfMany = `SELECT event, count(DISTINCT player_id) FROM receipts WHERE send_id = ANY($1) GROUP BY event`
	// The sends' sent_at come first, so that the receipts are joined to a
	// handful of rows rather than to the sends view.
	sentAtOf     = `SELECT id, sent_at FROM sends WHERE id = ANY($1) AND sent_at IS NOT NULL`
	latencyQuery = `
		SELECT count(*), percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP
			(ORDER BY extract(epoch FROM r.received_at - s.sent_at))
		FROM receipts r JOIN unnest($1::uuid[], $2::timestamptz[]) AS s (id, sent_at) ON s.id = r.send_id
		WHERE r.send_id = ANY($1) AND r.event = 'delivered'`
	timelineQuery = `
		SELECT date_trunc('minute', received_at) AS minute, event, count(*)
		FROM receipts WHERE send_id = ANY($1) GROUP BY 1, 2 ORDER BY 1`
)

func (s *Store) players(ctx context.Context, sends []uuid.UUID) (Events, error) {
	q, arg := playersOfOne, any(sends[0])
	if len(sends) > 1 {
		q, arg = playersOfMany, sends
	}
	rows, _ := s.db.Query(ctx, q, arg)
	var e Events
	var event string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&event, &n}, func() error { e.add(event, n); return nil }); err != nil {
		return Events{}, fmt.Errorf("count receipts: %w", err)
	}
	return e, nil
}

func (s *Store) latency(ctx context.Context, sends []uuid.UUID) (Latency, error) {
	rows, _ := s.db.Query(ctx, sentAtOf, sends)
	var ids []uuid.UUID
	var sentAt []time.Time
	var id uuid.UUID
	var at time.Time
	if _, err := pgx.ForEachRow(rows, []any{&id, &at}, func() error {
		ids, sentAt = append(ids, id), append(sentAt, at)
		return nil
	}); err != nil {
		return Latency{}, fmt.Errorf("read sent_at: %w", err)
	}
	if len(ids) == 0 {
		return Latency{}, nil
	}
	var l Latency
	var p []float64
	err := s.db.QueryRow(ctx, latencyQuery, ids, sentAt).Scan(&l.Receipts, &p)
	if err != nil {
		return Latency{}, fmt.Errorf("delivery latency: %w", err)
	}
	if l.Receipts > 0 && len(p) == 3 {
		l.P50, l.P90, l.P99 = seconds(p[0]), seconds(p[1]), seconds(p[2])
	}
	return l, nil
}

func (s *Store) timeline(ctx context.Context, sends []uuid.UUID) ([]Minute, error) {
	rows, _ := s.db.Query(ctx, timelineQuery, sends)
	out := []Minute{}
	var minute time.Time
	var event string
	var n int64
	_, err := pgx.ForEachRow(rows, []any{&minute, &event, &n}, func() error {
		if len(out) == 0 || !out[len(out)-1].Minute.Equal(minute) {
			out = append(out, Minute{Minute: minute.UTC()})
		}
		out[len(out)-1].add(event, n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("receipts timeline: %w", err)
	}
	return out, nil
}

// ratio is part/whole to four decimals, or nil when whole is zero.
func ratio(part, whole int64) *float64 {
	if whole == 0 {
		return nil
	}
	r := math.Round(float64(part)/float64(whole)*10_000) / 10_000
	return &r
}

// seconds formats a number of seconds as a duration to the millisecond.
func seconds(f float64) string {
	return (time.Duration(math.Round(f*1000)) * time.Millisecond).String()
}
