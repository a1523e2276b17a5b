package protocol_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/fielderr"
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
		r, err := protocol.ParseReceipt(protocol.EncodeReceipt(protocol.Receipt{ID: "d1", Event: e, At: at}))
		require.NoError(t, err)
		require.Equal(t, protocol.Receipt{ID: "d1", Event: e, At: at.Truncate(time.Millisecond).UTC()}, r)
	}
	require.Equal(t, "herald/g1/receipts/p1", protocol.ReceiptTopic("herald", "g1", "p1"))
	require.Equal(t, "$share/herald/herald/+/receipts/+", protocol.ReceiptsSubscription("herald"))
	require.Equal(t, "herald/$herald/fence", protocol.Fence("herald"))
}

func TestParseReceipt(t *testing.T) {
	t.Parallel()
	const id = "0193a4f2-7c1e-7b3a-9d2e-5f6a7b8c9d0e"
	at := time.Date(2026, 11, 25, 10, 0, 1, 234_000_000, time.UTC)
	tests := []struct {
		name    string
		payload string
		want    protocol.Receipt
		field   string // when refused: the field of the first error
	}{
		{"delivered", `{"id":"` + id + `","e":"delivered","t":1795600801234}`, protocol.Receipt{ID: id, Event: protocol.EventDelivered, At: at}, ""},
		{"displayed", `{"id":"` + id + `","e":"displayed","t":1795600801234}`, protocol.Receipt{ID: id, Event: protocol.EventDisplayed, At: at}, ""},
		{"clicked", `{"e":"clicked","t":1795600801234,"id":"` + id + `"}`, protocol.Receipt{ID: id, Event: protocol.EventClicked, At: at}, ""},
		{"dismissed", ` {"id":"` + id + `","e":"dismissed","t":1795600801234} `, protocol.Receipt{ID: id, Event: protocol.EventDismissed, At: at}, ""},
		{"unknown members ignored", `{"id":"` + id + `","e":"clicked","t":1795600801234,"sdk":"2.1"}`, protocol.Receipt{ID: id, Event: protocol.EventClicked, At: at}, ""},
		{"fractional t truncated", `{"id":"` + id + `","e":"clicked","t":1795600801234.9}`, protocol.Receipt{ID: id, Event: protocol.EventClicked, At: at}, ""},
		{"exponent t", `{"id":"` + id + `","e":"clicked","t":1.795600801234e12}`, protocol.Receipt{ID: id, Event: protocol.EventClicked, At: at}, ""},
		{"first millisecond", `{"id":"d","e":"delivered","t":1}`, protocol.Receipt{ID: "d", Event: protocol.EventDelivered, At: time.UnixMilli(1).UTC()}, ""},

		{"empty", ``, protocol.Receipt{}, "payload"},
		{"blank", " \n", protocol.Receipt{}, "payload"},
		{"not JSON", `delivered`, protocol.Receipt{}, "payload"},
		{"truncated", `{"id":"` + id + `","e":"delivered"`, protocol.Receipt{}, "payload"},
		{"array", `[{"id":"` + id + `"}]`, protocol.Receipt{}, "payload"},
		{"null", `null`, protocol.Receipt{}, "id"},
		{"too large", `{"id":"` + id + `","e":"delivered","t":1,"pad":"` + strings.Repeat("x", 1024) + `"}`, protocol.Receipt{}, "payload"},
		{"missing id", `{"e":"delivered","t":1795600801234}`, protocol.Receipt{}, "id"},
		{"empty id", `{"id":"","e":"delivered","t":1795600801234}`, protocol.Receipt{}, "id"},
		{"id with a slash", `{"id":"a/b","e":"delivered","t":1795600801234}`, protocol.Receipt{}, "id"},
		{"id as number", `{"id":42,"e":"delivered","t":1795600801234}`, protocol.Receipt{}, "id"},
		{"missing event", `{"id":"` + id + `","t":1795600801234}`, protocol.Receipt{}, "e"},
		{"unknown event", `{"id":"` + id + `","e":"opened","t":1795600801234}`, protocol.Receipt{}, "e"},
		{"event in upper case", `{"id":"` + id + `","e":"DELIVERED","t":1795600801234}`, protocol.Receipt{}, "e"},
		{"missing t", `{"id":"` + id + `","e":"delivered"}`, protocol.Receipt{}, "t"},
		{"null t", `{"id":"` + id + `","e":"delivered","t":null}`, protocol.Receipt{}, "t"},
		{"zero t", `{"id":"` + id + `","e":"delivered","t":0}`, protocol.Receipt{}, "t"},
		{"negative t", `{"id":"` + id + `","e":"delivered","t":-5}`, protocol.Receipt{}, "t"},
		{"fraction below one", `{"id":"` + id + `","e":"delivered","t":0.5}`, protocol.Receipt{}, "t"},
		{"t as string", `{"id":"` + id + `","e":"delivered","t":"1795600801234"}`, protocol.Receipt{}, "t"},
		{"t after 9999", `{"id":"` + id + `","e":"delivered","t":253402300800000}`, protocol.Receipt{}, "t"},
		{"t huge", `{"id":"` + id + `","e":"delivered","t":1e300}`, protocol.Receipt{}, "t"},
		{"t overflowing int64", `{"id":"` + id + `","e":"delivered","t":99999999999999999999}`, protocol.Receipt{}, "t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := protocol.ParseReceipt([]byte(tt.payload))
			if tt.field == "" {
				require.NoError(t, err)
				require.Equal(t, tt.want, got)
				return
			}
			require.ErrorIs(t, err, protocol.ErrBadReceipt)
			require.Equal(t, protocol.Receipt{}, got)
			list, ok := fielderr.As(err)
			require.True(t, ok, "%v", err)
			require.Equal(t, tt.field, list[0].Field, "%v", err)
		})
	}
}

// FuzzParseReceipt checks that no payload makes ParseReceipt panic, that every
// refusal wraps ErrBadReceipt, and that what it accepts is a valid receipt.
func FuzzParseReceipt(f *testing.F) {
	for _, seed := range []string{
		`{"id":"d1","e":"delivered","t":1795600801234}`,
		`{"id":"d1","e":"clicked","t":1.5e12,"x":[1,{}]}`,
		`{"id":"d1","e":"opened","t":-1}`,
		`{"id":null,"e":5,"t":"1"}`,
		`[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := protocol.ParseReceipt(payload)
		if err != nil {
			require.ErrorIs(t, err, protocol.ErrBadReceipt)
			return
		}
		require.NotEmpty(t, r.ID)
		require.Contains(t, []string{"delivered", "displayed", "clicked", "dismissed"}, r.Event)
		require.True(t, r.At.After(time.Unix(0, 0)))
		require.Equal(t, time.UTC, r.At.Location())
	})
}
