package mqttout

import (
	"context"
	"testing"
	"time"

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
	payload := make([]byte, 256) // about an envelope (docs/protocol.md section 3)
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
			if err := brokertest.BarePublish(client, func(int) string { return topic }, payload, n, window, false); err != nil {
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
