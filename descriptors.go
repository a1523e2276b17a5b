package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/mqttout"
)

// descriptorBroker is the broker connection as games.DescriptorPublisher sees it.
type descriptorBroker struct {
	*mqttout.Conn
}

// PublishRetained publishes one retained message through mqttout.Conn.PublishAll.
func (b descriptorBroker) PublishRetained(ctx context.Context, topic string, payload []byte) error {
	_, err := b.PublishAll(ctx, []mqttout.Message{{Topic: topic, Payload: payload, Retain: true}})
	return err
}

// registerDescriptorMetrics adds the counters of the game descriptors this
// replica published (games.DescriptorPublisher).
func registerDescriptorMetrics(reg *prometheus.Registry, p *games.DescriptorPublisher) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "herald_descriptors_published_total",
			Help: "Game descriptors this replica published retained (a game created or changed, or the broker lost them)."},
			func() float64 { return float64(p.Counters().Published) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "herald_descriptor_publish_failures_total",
			Help: "Rounds of descriptor publishing cut short by broker or database trouble; tried again shortly."},
			func() float64 { return float64(p.Counters().Failures) }),
	)
}
