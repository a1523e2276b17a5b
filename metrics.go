package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/mqttout"
	"github.com/heraldpush/herald/scheduler"
)

// newMetrics returns the registry served at /metrics: the Go runtime and the
// process, the broker connection's publish counters, and the retained-store
// guard's and restores' counters.
func newMetrics(broker *mqttout.Conn, workers *dispatch.Worker, guard *dispatch.Guard) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, value func(mqttout.Counters) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(value(broker.Counters())) })
	}
	reg.MustRegister(
		counter("herald_mqtt_publishes_acked_total", "QoS 1 publishes the broker acknowledged.",
			func(c mqttout.Counters) int64 { return c.Acked }),
		counter("herald_mqtt_publishes_retried_total", "Publishes sent again after a timeout, an error or a reconnect.",
			func(c mqttout.Counters) int64 { return c.Retried }),
		counter("herald_mqtt_publishes_failed_total", "Publishes given up on (shutdown).",
			func(c mqttout.Counters) int64 { return c.Failed }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_mqtt_publishes_in_flight", Help: "QoS 1 publishes awaiting their PUBACK."},
			func() float64 { return float64(broker.Counters().InFlight) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_mqtt_connected", Help: "1 while the broker connection is up."},
			func() float64 {
				if broker.Connected() {
					return 1
				}
				return 0
			}),
	)
	registerRestoreMetrics(reg, workers, guard)
	return reg
}

// registerRestoreMetrics adds the counters of retained-store losses and the
// restores that follow them (dispatch.Guard, README "How a send works").
func registerRestoreMetrics(reg *prometheus.Registry, workers *dispatch.Worker, guard *dispatch.Guard) {
	counter := func(name, help string, value func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(value()) })
	}
	reg.MustRegister(
		counter("herald_retained_store_losses_detected_total",
			"Sentinel checks of this replica that found the broker had lost its retained messages.",
			func() int64 { return guard.Counters().LossesDetected }),
		counter("herald_retained_restores_requested_total",
			"Restores of every live dispatch's retained messages this replica requested (one per loss over all replicas).",
			func() int64 { return guard.Counters().RestoresRequested }),
		counter("herald_retained_sentinel_check_failures_total",
			"Sentinel checks that could not tell (broker or database trouble); tried again shortly.",
			func() int64 { return guard.Counters().CheckFailures }),
		counter("herald_retained_restored_topics_total",
			"Retained messages this replica re-published to restore what the broker lost.",
			workers.Restored),
	)
}

// leaderGauge is 1 while this replica leads the scheduler: exactly one replica
// should show 1, and a change shows a fail-over.
func leaderGauge(sched *scheduler.Scheduler) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_scheduler_leader", Help: "1 while this replica leads the scheduler."},
		func() float64 {
			if sched.Leader() {
				return 1
			}
			return 0
		})
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
