package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/heraldpush/herald/internal/brokertest"
)

// BenchmarkFanout sends a notice to a 100,000-member segment through a real
// Herald (in-process, its own database) and a private broker, and reports the
// fan-out rate from the campaign's creation to its dispatch being published, next
// to a bare paho QoS 1 publisher of as many retained messages of the same size to
// the same broker, measured in the same run.
//
//	go test -run '^$' -bench Fanout -benchtime 1x .
func BenchmarkFanout(b *testing.B) {
	const members = 100_000
	broker := brokertest.Start(b)

	h := startHeraldInProcess(b, broker.URL)
	h.createGame()
	seg := h.call(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "many", "rule": map[string]any{"members": true}})
	var list []byte
	for i := range members {
		list = fmt.Appendf(list, "p%06d\n", i)
	}
	h.call(http.StatusOK, "PUT", "/v1/games/g1/segments/"+seg["id"].(string)+"/members", string(list))

	var herald, bare time.Duration
	var payload []byte
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
			"kind": "notice", "name": "bench", "audience": map[string]any{"segment_id": seg["id"]},
			"content": map[string]any{"title": map[string]any{"en": "Season 4 starts"}, "body": map[string]any{"en": "Log in for your gift"}},
		})
		id := c["id"].(string)
		for h.dispatch(id)["state"] != "published" {
			time.Sleep(5 * time.Millisecond)
		}
		herald += time.Since(start)
		if payload == nil {
			payload = make([]byte, 300) // about this notice's envelope
		}

		client := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetCleanSession(true))
		if tok := client.Connect(); tok.Wait() && tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		start = time.Now()
		err := brokertest.BarePublish(client, func(i int) string {
			return fmt.Sprintf("bare/g1/player/p%06d/notice/%d", i, i)
		}, payload, members, 1024, true)
		bare += time.Since(start)
		client.Disconnect(100)
		if err != nil {
			b.Fatal(err)
		}
	}
	n := float64(members * b.N)
	b.ReportMetric(n/herald.Seconds(), "herald-publishes/s")
	b.ReportMetric(n/bare.Seconds(), "bare-paho-publishes/s")
	b.ReportMetric(bare.Seconds()/herald.Seconds(), "herald/bare-rate")
}
