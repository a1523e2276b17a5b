package client_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/client"
	"github.com/heraldpush/herald/protocol"
)

// The tests in this file follow protocol.md section 5, one rule each, with the
// test playing Herald on a private broker.

func TestRetainedMessageShownAndDelivered(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	h.descriptor(`{"region":{"values":["eu","na"]},"level":{"bands":[[30,39]]}}`)
	h.send("all", env{ID: "d1", Priority: 7})
	h.send("tag/level/30-39", env{ID: "d2", Kind: protocol.KindNotice})
	h.send("player/p1", env{ID: "d3", Kind: protocol.KindAd})
	rec := &recorder{}
	c := h.connect(rec)

	for _, id := range []string{"d1", "d2", "d3"} {
		rec.await(t, "message "+id)
		r := h.awaitReceipt(id, protocol.EventDelivered)
		require.Equal(t, "herald/g1/receipts/p1", r.Topic)
	}
	rec.mu.Lock()
	m := rec.messages["d1"]
	rec.mu.Unlock()
	require.Equal(t, 7, m.Priority)
	require.Equal(t, "c-d1", m.Campaign)
	require.Equal(t, 3, m.Marquee.Repeat)
	require.Equal(t, "Maintenance at 10:00 UTC", c.Text(m.Marquee.Text))
	require.Equal(t, "v2 is out", c.Text(rec.messages["d2"].Notice.Body))
	require.Equal(t, "https://cdn.example.com/a.png", rec.messages["d3"].Ad.ImageURL)

	st := c.Stats()
	require.Equal(t, map[protocol.Kind]int64{protocol.KindMarquee: 1, protocol.KindNotice: 1, protocol.KindAd: 1}, st.Received)
	require.EqualValues(t, 3, st.ReceiptsSent)
	require.EqualValues(t, 1, st.Connects)
}

// TestTestSendIsShownMarked: an operator's test send (protocol.md section 3,
// "test") is shown like any message, and the game learns that it is a test.
func TestTestSendIsShownMarked(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	rec := &recorder{}
	h.connect(rec)
	h.send("all", env{ID: "real"})
	rec.await(t, "message real") // subscribed: a test send is not retained
	h.publish(h.topic("player/p1", protocol.KindNotice, "c-t2"), h.encode(env{ID: "t2", Kind: protocol.KindNotice, Test: true}), false)
	rec.await(t, "message t2")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.True(t, rec.messages["t2"].Test, "the game is told it is a test")
	require.False(t, rec.messages["real"].Test)
}

func TestRemovalByEmptyPayload(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	clock := newClock(time.Now())
	h.send("all", env{ID: "shown"})
	h.send("all", env{ID: "waiting", StartsAt: clock.Now().Add(time.Hour)})
	rec := &recorder{}
	c := h.connect(rec, func(o *client.Options) { o.Now = clock.Now })
	rec.await(t, "message shown")
	h.awaitReceipt("waiting", protocol.EventDelivered)

	h.publish(h.topic("all", protocol.KindMarquee, "c-shown"), nil, true)
	h.publish(h.topic("all", protocol.KindMarquee, "c-waiting"), nil, true)
	rec.await(t, "remove c-shown recalled")
	eventually(t, "two removals", func() bool { return c.Stats().Removals == 2 })

	// The message that waited for its starts_at was forgotten, never shown.
	clock.Add(2 * time.Hour)
	h.marker(rec)
	require.False(t, rec.has("message waiting"))
	require.NotContains(t, rec.lines(), "remove c-waiting recalled")
}

func TestExpiredOnArrivalDropped(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	past := time.Now().Add(-2 * time.Hour)
	h.send("all", env{ID: "old", SentAt: past, ExpiresAt: past.Add(time.Hour)})
	rec := &recorder{}
	c := h.connect(rec)
	h.marker(rec)
	require.False(t, rec.has("message old"))
	require.EqualValues(t, 1, c.Stats().Expired)
	require.Empty(t, h.receiptsOf("old"), "no receipt for an expired message")
}

// A copy that fails its filter first must not hide a later copy that passes.
func TestFilteredCopyFirstDoesNotHideTheNext(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	h.descriptor(`{"region":{"values":["eu"]}}`)
	rec := &recorder{}
	c := h.connect(rec)
	// One send, two targets: the region topic with a residual filter that is
	// false for p1 (it is on s1), then its server without a filter.
	h.send("tag/region/eu", env{ID: "d1", Campaign: "c1", Filter: `{"server":["s2"]}`})
	eventually(t, "the filtered copy", func() bool { return c.Stats().Filtered == 1 })
	require.Empty(t, h.receiptsOf("d1"), "no receipt for a filtered copy")
	h.send("server/s1", env{ID: "d1", Campaign: "c1"})
	rec.await(t, "message d1")
	h.awaitReceipt("d1", protocol.EventDelivered)
	st := c.Stats()
	require.EqualValues(t, 0, st.Duplicates)
	require.EqualValues(t, 1, st.Received[protocol.KindMarquee])
}

// A copy that fails its filter after one passed is counted as filtered, and a
// third copy that passes is the duplicate.
func TestFilteredCopyAfterAcceptedOne(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	h.descriptor(`{"region":{"values":["eu"]}}`)
	rec := &recorder{}
	c := h.connect(rec)
	h.send("server/s1", env{ID: "d1", Campaign: "c1"})
	rec.await(t, "message d1")
	h.send("tag/region/eu", env{ID: "d1", Campaign: "c1", Filter: `{"not":{"server":["s1"]}}`})
	eventually(t, "the filtered copy", func() bool { return c.Stats().Filtered == 1 })
	h.send("all", env{ID: "d1", Campaign: "c1", Filter: `{"and":[{"server":["s1"]},{"tag":"level","between":[30,39]}]}`})
	eventually(t, "the duplicate", func() bool { return c.Stats().Duplicates == 1 })
	h.marker(rec)
	require.Equal(t, []string{protocol.EventDelivered}, h.receiptsOf("d1"))
	require.Equal(t, 1, count(rec.lines(), "message d1"))
}

func TestDuplicatesAcrossTopics(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	rec := &recorder{}
	c := h.connect(rec)
	h.send("all", env{ID: "d1", Campaign: "c1"})
	h.send("player/p1", env{ID: "d1", Campaign: "c1"})
	h.send("server/s1", env{ID: "d1", Campaign: "c1"})
	eventually(t, "two duplicates", func() bool { return c.Stats().Duplicates == 2 })
	h.marker(rec)
	require.Equal(t, 1, count(rec.lines(), "message d1"))
	require.Equal(t, []string{protocol.EventDelivered}, h.receiptsOf("d1"))
}

func TestNewerSendReplacesOlderIsNotShown(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	rec := &recorder{}
	c := h.connect(rec)
	t0 := time.Now()
	h.send("all", env{ID: "fire1", Campaign: "c1", SentAt: t0})
	rec.await(t, "message fire1")
	// The campaign fires again: a new send on the same topic.
	h.send("all", env{ID: "fire2", Campaign: "c1", SentAt: t0.Add(time.Second)})
	rec.await(t, "message fire2")
	require.Equal(t, []string{"message fire1", "remove c1 replaced", "message fire2"}, rec.lines())
	// An older send arriving late (on another topic) does not replace it.
	h.send("player/p1", env{ID: "fire0", Campaign: "c1", SentAt: t0.Add(-time.Second)})
	eventually(t, "the older send", func() bool { return c.Stats().Superseded == 1 })
	h.marker(rec)
	require.False(t, rec.has("message fire0"))
	st := c.Stats()
	require.EqualValues(t, 1, st.Replaced)
	require.EqualValues(t, 3, st.Received[protocol.KindMarquee], "fire1, fire2 and the marker")
}

// Held until starts_at: delivered at once, shown from starts_at on, by the
// client's clock.
func TestStartsAtHold(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	clock := newClock(time.Now())
	rec := &recorder{}
	h.connect(rec, func(o *client.Options) { o.Now = clock.Now })
	h.send("all", env{ID: "later", SentAt: clock.Now(), StartsAt: clock.Now().Add(time.Hour), ExpiresAt: clock.Now().Add(2 * time.Hour)})
	h.awaitReceipt("later", protocol.EventDelivered)
	h.marker(rec)
	require.False(t, rec.has("message later"), "shown before its starts_at")

	clock.Add(time.Hour)
	h.marker(rec) // the next message makes the client look at its clock
	rec.await(t, "message later")
}

// The session's own timer shows a held message at its starts_at and removes it
// at its expires_at, with no message from Herald.
func TestStartsAtAndExpiresAtByTheClock(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	rec := &recorder{}
	h.connect(rec)
	now := time.Now()
	// Margins a loaded machine keeps: the send must arrive before it expires.
	starts, expires := now.Add(3*time.Second), now.Add(6*time.Second)
	h.send("all", env{ID: "soon", Campaign: "c1", SentAt: now, StartsAt: starts, ExpiresAt: expires})
	rec.await(t, "remove c1 expired")
	lines := rec.lines()
	require.Equal(t, []string{"message soon", "remove c1 expired"}, lines)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.False(t, rec.at["message soon"].Before(starts.Truncate(time.Millisecond)), "shown before starts_at")
	require.False(t, rec.at["remove c1 expired"].Before(expires.Truncate(time.Millisecond)), "removed before expires_at")
}

func TestReceiptsAtMostOncePerID(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	rec := &recorder{}
	c := h.connect(rec)
	h.send("all", env{ID: "d1", Kind: protocol.KindAd})
	rec.await(t, "message d1")
	for range 2 {
		require.NoError(t, c.Displayed("d1"))
		require.NoError(t, c.Clicked("d1"))
		require.NoError(t, c.Dismissed("d1"))
	}
	require.ErrorIs(t, c.Displayed("nope"), client.ErrUnknownMessage)
	h.marker(rec)
	marker := rec.lines()[len(rec.lines())-1][len("message "):]
	require.NoError(t, c.Displayed(marker))
	h.awaitReceipt(marker, protocol.EventDisplayed) // receipts go out in order
	require.Equal(t, []string{"delivered", "displayed", "clicked", "dismissed"}, h.receiptsOf("d1"))
	require.EqualValues(t, 4+2, c.Stats().ReceiptsSent)
}

func TestKickoutAfterDeliveredReceipt(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	rec := &recorder{}
	c := h.connect(rec)
	h.send("player/p1", env{ID: "k1", Kind: protocol.KindKickout, ExpiresAt: time.Now().Add(time.Minute)})
	rec.await(t, "kickout k1")
	h.awaitReceipt("k1", protocol.EventDelivered)
	h.send("server/s1", env{ID: "k2", Kind: protocol.KindKickout, ExpiresAt: time.Now().Add(time.Minute),
		Content: `{"reason":"server_shutdown"}`})
	rec.await(t, "kickout k2")
	h.awaitReceipt("k2", protocol.EventDelivered)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Equal(t, "ban", rec.kickouts[0].Reason)
	require.Equal(t, "Banned", c.Text(rec.kickouts[0].Message))
	require.Equal(t, 30*time.Second, rec.kickouts[0].ReconnectAfter)
	require.Equal(t, "server_shutdown", rec.kickouts[1].Reason)
	require.Equal(t, []int64{1, 2}, rec.atKickout, "the delivered receipt is handed over before OnKickout")
	require.EqualValues(t, 2, c.Stats().Received[protocol.KindKickout])
}

// Nothing the broker delivers makes the client crash or stop: what it cannot
// use is counted.
func TestMalformedInputCounted(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	rec := &recorder{}
	c := h.connect(rec)
	good := string(h.encode(env{ID: "x", Campaign: "c1"}))
	topic := h.topic("all", protocol.KindMarquee, "c1")
	invalid := []string{
		`garbage`, `[]`, `null`, `{}`, `{"v":1}`,
		good[:len(good)/2],
		replaceOnce(t, good, `"v":1`, `"v":2`),
		replaceOnce(t, good, `"game":"g1"`, `"game":"g2"`),
		replaceOnce(t, good, `"priority":0`, `"priority":"high"`),
		replaceOnce(t, good, `"expires_at"`, `"expiry"`),
		replaceOnce(t, good, `{"text":{"en"`, `{"text":{"en":1},"x":{"en"`), // content of the wrong type
		replaceOnce(t, good, `"priority":0,`, `"priority":0,"filter":{"server":"s1"},`),
		replaceOnce(t, good, `"priority":0,`, `"priority":0,"filter":`+deep(40)+`,`),
	}
	for _, p := range invalid {
		h.publish(topic, []byte(p), false)
	}
	// An envelope on another campaign's or kind's topic, and another game's
	// descriptor on this game's topic.
	h.publish(h.topic("all", protocol.KindMarquee, "c2"), []byte(good), false)
	h.publish(h.topic("all", protocol.KindNotice, "c1"), []byte(good), false)
	h.publish(protocol.DescriptorTopic("herald", "g1"), []byte(`{"v":1,"game":"g2","prefix":"herald","tags":{}}`), false)
	h.publish(protocol.DescriptorTopic("herald", "g1"), []byte(`{"v":1,`), false)
	// Kinds of a later version are ignored, on the topic or in the envelope.
	h.publish(h.topic("all", "survey", "c9"), []byte(`{"anything":true}`), false)
	h.publish(h.topic("all", "survey", "c9"), nil, false)
	h.publish(topic, []byte(replaceOnce(t, good, `"kind":"marquee"`, `"kind":"survey"`)), false)

	h.marker(rec)
	st := c.Stats()
	require.EqualValues(t, len(invalid)+4, st.Invalid)
	require.EqualValues(t, 3, st.Ignored)
	require.Equal(t, map[protocol.Kind]int64{protocol.KindMarquee: 1}, st.Received, "only the marker")
	require.Empty(t, h.receiptsOf("x"))
}

func TestConcurrentCallsDoNotRace(t *testing.T) {
	t.Parallel()
	h := newHerald(t)
	rec := &recorder{}
	c := h.connect(rec)
	var wg sync.WaitGroup
	for i := range 20 {
		id := "d" + string(rune('a'+i))
		h.send("all", env{ID: id, StartsAt: time.Now().Add(50 * time.Millisecond)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for err := c.Displayed(id); err != nil; err = c.Displayed(id) {
				if !errors.Is(err, client.ErrUnknownMessage) {
					t.Error(err)
					return
				}
				_ = c.Stats()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	eventually(t, "20 messages shown", func() bool { return count(rec.lines(), "message") == 20 })
}
