package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldpush/herald/mqttout"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/receipts"
)

// startReceipts starts taking client receipts: a connection of its own to the
// broker with the shared receipts subscription, feeding an Ingester that
// writes to store and tells onDelivered of each delivered receipt as soon as
// it is read (kickouts.Service.Delivered). Stopping the Ingester stops the
// subscription first.
func startReceipts(ctx context.Context, cfg config, store *receipts.Store, onDelivered func(game, player string, send uuid.UUID, at time.Time), log *slog.Logger) (*receipts.Ingester, *mqttout.Subscriber, prometheus.Histogram, error) {
	sub, err := mqttout.NewSubscriber(mqttout.SubscriberConfig{
		URL: cfg.MQTTURL, Username: cfg.MQTTUsername, Password: cfg.MQTTPassword, TLS: cfg.MQTTTLS, Log: log,
		Filter: protocol.ReceiptsSubscription(cfg.TopicPrefix), Fence: protocol.Fence(cfg.TopicPrefix),
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("set up the receipts connection: %w", err)
	}
	flushSeconds := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "herald_receipts_flush_seconds",
		Help:    "How long each batch write of receipts took (staging COPY, insert, notify, commit).",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	})
	ingester := store.NewIngester(receipts.Config{
		Prefix: cfg.TopicPrefix, Source: sub, Buffer: cfg.ReceiptBuffer, Log: log,
		OnFlush:     func(took time.Duration, _ int) { flushSeconds.Observe(took.Seconds()) },
		OnDelivered: onDelivered,
	})
	// Like the other background work, ingestion outlives requests; Stop ends it.
	ingester.Start(context.WithoutCancel(ctx))
	return ingester, sub, flushSeconds, nil
}

// registerReceiptMetrics adds ingestion's counters, its buffer and the
// subscription's state to reg.
func registerReceiptMetrics(reg *prometheus.Registry, in *receipts.Ingester, sub *mqttout.Subscriber, flushSeconds prometheus.Histogram) {
	counter := func(name, help string, value func(receipts.Counters) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(value(in.Counters())) })
	}
	dropped := func(reason string, value func(receipts.Counters) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "herald_receipts_dropped_total", Help: "Receipts dropped, by reason.",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 { return float64(value(in.Counters())) })
	}
	reg.MustRegister(
		counter("herald_receipts_received_total", "Messages this replica read on the receipts topics.",
			func(c receipts.Counters) int64 { return c.Received }),
		counter("herald_receipts_stored_total", "Receipts written (new send, player and event).",
			func(c receipts.Counters) int64 { return c.Stored }),
		counter("herald_receipts_duplicates_total", "Receipts already stored: counted once.",
			func(c receipts.Counters) int64 { return c.Duplicates }),
		dropped("malformed", func(c receipts.Counters) int64 { return c.Malformed }),
		dropped("unknown_send", func(c receipts.Counters) int64 { return c.UnknownSend }),
		dropped("other_game", func(c receipts.Counters) int64 { return c.OtherGame }),
		dropped("expired", func(c receipts.Counters) int64 { return c.Expired }),
		dropped("failed", func(c receipts.Counters) int64 { return c.Failed }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_receipts_buffered",
			Help: "Receipts read from the broker and not written yet (at most HERALD_RECEIPT_BUFFER plus two batches)."},
			func() float64 { return float64(in.Counters().Buffered) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_receipts_subscribed",
			Help: "1 while this replica's receipts subscription is in place."},
			func() float64 {
				if sub.Subscribed() {
					return 1
				}
				return 0
			}),
		flushSeconds,
	)
}
