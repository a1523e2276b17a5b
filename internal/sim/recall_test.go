package sim_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/sim"
	"github.com/heraldpush/herald/protocol"
)

// Simulated players cut off by the network find, once back, that a campaign
// was recalled meanwhile (its retained copy is gone): each removes it after
// the recall grace, and keeps the one whose copy came back. One player per
// connection, and players multiplexed over shared connections, alike.
func TestRecalledWhileOffline(t *testing.T) {
	for _, perConn := range []int{1, 10} {
		t.Run(fmt.Sprintf("%d players per connection", perConn), func(t *testing.T) {
			t.Parallel()
			b := brokertest.Start(t)
			h := dialHerald(t, b.URL)
			proxy := brokertest.StartProxy(t, b.Port)
			now := time.Now().UTC()
			ts := func(t time.Time) string { return t.Truncate(time.Millisecond).Format(time.RFC3339Nano) }
			for _, c := range []string{"gone", "kept"} {
				h.publish("herald/g1/all/marquee/"+c, fmt.Sprintf(`{"v":1,"id":"d-%s","campaign":%q,"kind":"marquee","game":"g1",`+
					`"sent_at":%q,"expires_at":%q,"priority":5,"content":{"text":{"en":"Hello"},"repeat":1,"interval_s":0}}`,
					c, c, ts(now), ts(now.Add(time.Hour))))
			}

			s, err := sim.New(sim.Config{Broker: proxy.URL, Game: "g1", Players: 20, PlayersPerConn: perConn})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan sim.Summary, 1)
			go func() {
				sum, _ := s.Run(ctx)
				done <- sum
			}()
			defer func() {
				cancel()
				<-done
			}()
			eventually(t, "both messages at every player", func() bool { return s.Snapshot().Received[protocol.KindMarquee] == 40 })

			proxy.Cut()
			h.publish("herald/g1/all/marquee/gone", "")
			proxy.Resume()
			eventually(t, "every player to remove the recalled one", func() bool { return s.Snapshot().Removals == 20 })
			eventually(t, "the copies of kept that came back", func() bool { return s.Snapshot().Duplicates == 20 })
			for player, st := range s.PlayerStats() {
				require.EqualValues(t, 1, st.Removals, player)
				require.EqualValues(t, 1, st.Duplicates, player)
			}
			require.EqualValues(t, 40, s.Snapshot().Received[protocol.KindMarquee], "nothing shown twice")
		})
	}
}
