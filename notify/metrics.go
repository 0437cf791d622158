package notify

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metric labels are low-cardinality: sink names are configured by admins
// (a handful), results are a fixed set. No per-account labels.
var (
	metricDelivered = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_notify_deliveries_total",
		Help: "Delivery attempts by sink and result (ok, retry, held, deadletter, disabled).",
	}, []string{"sink", "result"})
	metricDeliverSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lemonvox_notify_delivery_duration_seconds",
		Help:    "Duration of one delivery attempt by sink.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 30},
	}, []string{"sink"})
	metricLagSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lemonvox_notify_event_lag_seconds",
		Help:    "Time from an event's commit to its successful delivery, by sink.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600},
	}, []string{"sink"})
	metricCursor = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lemonvox_notify_cursor_seq",
		Help: "Journal sequence number up to which a sink has handled every event.",
	}, []string{"sink"})
	metricPending = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lemonvox_notify_pending_events",
		Help: "Events read from the journal and not yet delivered or dead-lettered, by sink.",
	}, []string{"sink"})
	metricDeadLetters = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_notify_deadletters_total",
		Help: "Events moved to a sink's dead-letter list.",
	}, []string{"sink"})
	metricSIPSubscriptions = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "lemonvox_notify_mwi_subscriptions",
		Help: "Active RFC 3842 message-summary subscriptions.",
	})
	metricSIPRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_notify_mwi_requests_total",
		Help: "SIP requests handled by the MWI server, by method and response status class.",
	}, []string{"method", "status"})
	metricSIPSubsRefused = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_notify_mwi_subscriptions_refused_total",
		Help: "New MWI subscriptions refused by the limits, by status (403 per account, 503 per source or in all).",
	}, []string{"status"})
	metricSIPNotifies = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_notify_mwi_notifies_total",
		Help: "NOTIFY requests sent, by kind (dialog, unsolicited) and result (ok, error).",
	}, []string{"kind", "result"})
)
