package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/heraldpush/herald/mqttout"
)

// newMetrics returns the registry served at /metrics: the Go runtime and the
// process, and the broker connection's publish counters.
func newMetrics(broker *mqttout.Conn) *prometheus.Registry {
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
	return reg
}
