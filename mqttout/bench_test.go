package mqttout

import (
	"context"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/heraldpush/herald/internal/brokertest"
)

// BenchmarkPublish compares PublishAll with the best a bare paho publisher does:
// N QoS 1 publishes with up to 1024 tokens outstanding, waiting on all of them.
// Both run against the same private broker (set_tcp_nodelay true) in one run;
// it prints msgs/s for each and, for PublishAll, its ratio to bare paho. Run:
//
//	go test ./mqttout -run '^$' -bench Publish -benchtime 1x
func BenchmarkPublish(b *testing.B) {
	const (
		n      = 100_000
		window = 1024
	)
	broker := brokertest.Start(b)
	payload := make([]byte, 256) // about an envelope (DESIGN 4)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	topic := "bench/" + randomHex(b)

	var bareRate float64
	b.Run("bare-paho", func(b *testing.B) {
		client := pahoClient(b, broker.URL)
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if err := barePublish(client, topic, payload, n, window); err != nil {
				b.Fatal(err)
			}
		}
		bareRate = float64(n*b.N) / time.Since(start).Seconds()
		b.ReportMetric(bareRate, "msgs/s")
	})

	b.Run("PublishAll", func(b *testing.B) {
		c := dialTest(b, Config{URL: broker.URL, MaxInFlight: window})
		waitUp(b, c)
		msgs := make([]Message, n)
		for i := range msgs {
			msgs[i] = Message{Topic: topic, Payload: payload}
		}
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			res, err := c.PublishAll(context.Background(), msgs)
			if err != nil || res.Acked != n {
				b.Fatalf("PublishAll: %+v, %v", res, err)
			}
		}
		rate := float64(n*b.N) / time.Since(start).Seconds()
		b.ReportMetric(rate, "msgs/s")
		if bareRate > 0 {
			b.ReportMetric(rate/bareRate, "ratio-vs-bare")
		}
	})
}

// barePublish is a plain paho publisher: publish as long as fewer than window
// tokens are outstanding, a second goroutine waits on them in order.
func barePublish(client mqtt.Client, topic string, payload []byte, n, window int) error {
	toks := make(chan mqtt.Token, window)
	errc := make(chan error, 1)
	go func() {
		var first error
		for tok := range toks {
			tok.Wait()
			if err := tok.Error(); err != nil && first == nil {
				first = err
			}
		}
		errc <- first
	}()
	for range n {
		toks <- client.Publish(topic, 1, false, payload)
	}
	close(toks)
	return <-errc
}
