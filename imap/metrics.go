package imap

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	metricConnections = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_imap_connections_total",
		Help: "IMAP connections accepted, by listener (plain, tls).",
	}, []string{"listener"})
	metricRefused = promauto.NewCounter(prometheus.CounterOpts{
		Name: "lemonvox_imap_connections_refused_total",
		Help: "IMAP connections refused with BYE [UNAVAILABLE] (connection limits).",
	})
	metricOpen = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "lemonvox_imap_connections_open",
		Help: "IMAP connections currently open.",
	})
	metricIdle = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "lemonvox_imap_idle_sessions",
		Help: "IMAP sessions currently in IDLE.",
	})
	metricCommand = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lemonvox_imap_command_duration_seconds",
		Help:    "IMAP command duration by command and result (ok, no, bad, error).",
		Buckets: []float64{0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30},
	}, []string{"cmd", "result"})
	metricAuth = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_imap_auth_total",
		Help: "IMAP authentication attempts by mechanism (login, plain) and result (ok, fail, limited, refused).",
	}, []string{"mech", "result"})
	metricUpdates = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_imap_unsolicited_total",
		Help: "Unsolicited mailbox updates sent to clients, by kind (exists, expunge, vanished, fetch).",
	}, []string{"kind"})
)
