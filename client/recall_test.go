package client_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/client"
	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/protocol"
)

// A campaign recalled while the client was offline sends it nothing (Herald
// cleared the retained copy; the empty payload went to those online): after
// the reconnect, what the client held and no retained copy confirmed is
// removed once the grace has passed, and what came back stays, shown once.
// The client is cut off by a proxy, so the broker keeps everything else.
func TestRecalledWhileOfflineRemovedAfterReconnect(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	h.descriptor(`{"region":{"values":["eu"]}}`)
	h.send("all", env{ID: "gone"})
	h.send("tag/region/eu", env{ID: "kept", Kind: protocol.KindNotice})
	h.send("all", env{ID: "waiting", StartsAt: time.Now().Add(time.Hour)})
	proxy := brokertest.StartProxy(t, h.broker.Port)
	rec := &recorder{}
	c := h.connect(rec, func(o *client.Options) {
		o.Broker = proxy.URL
		o.RecallGrace = 2 * time.Second
	})
	rec.await(t, "message gone")
	rec.await(t, "message kept")
	h.awaitReceipt("waiting", protocol.EventDelivered)

	proxy.Cut()
	h.publish(h.topic("all", protocol.KindMarquee, "c-gone"), nil, true)
	h.publish(h.topic("all", protocol.KindMarquee, "c-waiting"), nil, true)
	h.send("all", env{ID: "new"})
	proxy.Resume()

	rec.await(t, "message new")
	rec.await(t, "remove c-gone recalled")
	require.EqualValues(t, 2, c.Stats().Connects)
	require.NotContains(t, rec.lines(), "remove c-kept recalled", "its retained copy came back")
	require.Equal(t, 1, count(rec.lines(), "message kept"))
	require.EqualValues(t, 1, c.Stats().Duplicates, "the copy of kept that confirmed it")
	require.EqualValues(t, 2, c.Stats().Removals, "gone, and waiting (never shown, so not told)")

	// The ids of what was removed are forgotten: a copy that comes back later
	// (a broker slower than the grace) shows the message again.
	h.send("all", env{ID: "gone"})
	eventually(t, "gone shown again", func() bool { return count(rec.lines(), "message gone") == 2 })
}
