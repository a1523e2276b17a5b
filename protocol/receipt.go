package protocol

import (
	"strconv"
	"time"
)

// Receipt events, in funnel order (protocol.md section 7).
const (
	EventDelivered = "delivered" // it arrived and passed the filter; the SDKs send it on their own
	EventDisplayed = "displayed" // it was shown
	EventClicked   = "clicked"   // the player clicked it
	EventDismissed = "dismissed" // the player closed it
)

// Receipt is what a client publishes to ReceiptTopic:
// {"id":"<envelope id>","e":"<event>","t":<unix ms>}.
type Receipt struct {
	ID    string    // the envelope's id
	Event string    // one of the Event constants
	At    time.Time // when it happened
}

// EncodeReceipt returns the compact JSON of r, with At in Unix milliseconds.
func EncodeReceipt(r Receipt) []byte {
	b := make([]byte, 0, 32+len(r.ID)+len(r.Event))
	b = appendString(append(b, `{"id":`...), r.ID)
	b = appendString(append(b, `,"e":`...), r.Event)
	b = strconv.AppendInt(append(b, `,"t":`...), r.At.UnixMilli(), 10)
	return append(b, '}')
}

// ReceiptTopic returns the topic a player publishes its receipts to:
// {prefix}/{game}/receipts/{player}. Herald takes the game and the player from it.
func ReceiptTopic(prefix, game, player string) string {
	return prefix + "/" + game + "/receipts/" + player
}
