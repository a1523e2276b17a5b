package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/heraldpush/herald/client"
)

// The callbacks hand events to the game's loop, which owns the UI and the
// Client. (Not run: it needs a broker.)
func ExampleConnect() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events := make(chan any, 64)
	c, err := client.Connect(ctx, client.Options{
		Broker: "ssl://push.example.com:8883",
		Game:   "g1", Player: "p1", Password: "login-token",
		Server: "s1", Tags: map[string]string{"region": "eu", "level": "35"},
		Locale:    "zh-TW",
		OnMessage: func(m client.Message) { events <- m },
		OnRemove:  func(campaign string, _ client.RemoveReason) { events <- campaign },
		OnKickout: func(k client.Kickout) { events <- k },
	})
	if err != nil {
		fmt.Println(err) // bad options, refused credentials, or ctx ended first
		return
	}
	defer c.Close()
	for ev := range events {
		switch ev := ev.(type) {
		case client.Message:
			if ev.Marquee != nil {
				fmt.Println("scroll", c.Text(ev.Marquee.Text), ev.Marquee.Repeat, "times")
				_ = c.Displayed(ev.ID)
			}
		case string:
			fmt.Println("hide", ev)
		case client.Kickout:
			fmt.Println("log out:", c.Text(ev.Message), "; back in", ev.ReconnectAfter)
			return
		}
	}
}
