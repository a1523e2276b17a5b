// Package client is Herald's Go SDK for game clients: it implements the client
// side of docs/protocol.md over one MQTT connection per player.
//
// Connect subscribes to the game's descriptor and to the player's topics (all,
// player, server, and the tag topics the descriptor gives), then for each message
// applies protocol.md section 5: removals, parsing, expiry, the filter,
// de-duplication (only among copies that passed their filter), one message per
// campaign, the delivered receipt, holding until starts_at and removing at
// expires_at. The game is told through callbacks and reports what the player did
// with Displayed, Clicked and Dismissed. The Client reconnects on its own with
// exponential backoff and random jitter and subscribes again each time; a
// message whose retained copy does not come back then (Options.RecallGrace)
// was recalled while it was offline, and is removed.
//
// Session is the same per-player logic without a connection, for programs that
// carry many players over shared connections (herald sim).
//
// The package imports only the standard library, protocol and
// paho.mqtt.golang.
//
// Example: the callbacks hand events to the game's loop, which owns the UI and
// the Client.
//
//	events := make(chan any, 64)
//	c, err := client.Connect(ctx, client.Options{
//		Broker: "ssl://push.example.com:8883",
//		Game:   "g1", Player: playerID, Password: loginToken,
//		Server: "s1", Tags: map[string]string{"region": "eu", "level": "35"},
//		Locale:    "zh-TW",
//		OnMessage: func(m client.Message) { events <- m },
//		OnRemove:  func(campaign string, _ client.RemoveReason) { events <- campaign },
//		OnKickout: func(k client.Kickout) { events <- k },
//	})
//	if err != nil {
//		return err // bad options, refused credentials, or ctx ended first
//	}
//	defer c.Close()
//	for ev := range events {
//		switch ev := ev.(type) {
//		case client.Message:
//			if ev.Marquee != nil {
//				ui.Scroll(c.Text(ev.Marquee.Text), ev.Marquee.Repeat)
//				_ = c.Displayed(ev.ID)
//			}
//		case string:
//			ui.Hide(ev)
//		case client.Kickout:
//			return game.Logout(c.Text(ev.Message), ev.ReconnectAfter)
//		}
//	}
//
// Callbacks run one at a time, in order, on the SDK's goroutines, and may run
// before Connect returns (retained messages arrive as it subscribes): they
// should hand their work over rather than do it. A kick-out's delivered receipt
// is sent before OnKickout is called; the SDK does not close the connection
// itself.
package client
