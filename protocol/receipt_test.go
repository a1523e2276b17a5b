package protocol_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/protocol"
)

func TestEncodeReceipt(t *testing.T) {
	t.Parallel()
	// 10:00:05.123456789 in UTC+8 is 02:00:05.123Z, 1795572005123 ms.
	at := time.Date(2026, 11, 25, 10, 0, 5, 123_456_789, time.FixedZone("CST", 8*3600))
	b := protocol.EncodeReceipt(protocol.Receipt{ID: "0193a0c4-7f11-7c39-9a51-2f1d3b5e8a10", Event: protocol.EventDisplayed, At: at})
	require.Equal(t, `{"id":"0193a0c4-7f11-7c39-9a51-2f1d3b5e8a10","e":"displayed","t":1795572005123}`, string(b))

	// Herald's receipt parser reads what the SDK writes, for every event.
	for _, e := range []string{protocol.EventDelivered, protocol.EventDisplayed, protocol.EventClicked, protocol.EventDismissed} {
		r, err := campaigns.ParseReceipt(protocol.EncodeReceipt(protocol.Receipt{ID: "d1", Event: e, At: at}))
		require.NoError(t, err)
		require.Equal(t, campaigns.Receipt{ID: "d1", Event: e, At: at.Truncate(time.Millisecond).UTC()}, r)
	}
	require.Equal(t, "herald/g1/receipts/p1", protocol.ReceiptTopic("herald", "g1", "p1"))
}
