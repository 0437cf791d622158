package streaming

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	metricWHEPRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_whep_requests_total",
		Help: "WHEP HTTP requests by method and status code.",
	}, []string{"method", "code"})
	metricWHEPSessions = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_whep_sessions_total",
		Help: "WHEP sessions created, by codec.",
	}, []string{"codec"})
	metricWHEPEnded = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_whep_sessions_ended_total",
		Help: "WHEP sessions ended, by reason (end, deleted, connect-timeout, ice-failed, closed, shutdown, ...).",
	}, []string{"reason"})
	metricWHEPActive = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "lemonvox_whep_sessions_active",
		Help: "Open WHEP sessions.",
	})
	metricWHEPRefused = promauto.NewCounter(prometheus.CounterOpts{
		Name: "lemonvox_whep_sessions_refused_total",
		Help: "WHEP offers refused with 503 at the session limit.",
	})
	metricWHEPSetup = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "lemonvox_whep_setup_seconds",
		Help:    "Time from a WHEP offer to its answer (grant check, ICE gathering).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	metricWHEPConnect = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "lemonvox_whep_connect_seconds",
		Help:    "Time from a WHEP answer to the established DTLS-SRTP connection.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	})
	metricWHEPPackets = promauto.NewCounter(prometheus.CounterOpts{
		Name: "lemonvox_whep_rtp_packets_total",
		Help: "RTP packets sent on WHEP sessions.",
	})
	metricWHEPDropped = promauto.NewCounter(prometheus.CounterOpts{
		Name: "lemonvox_whep_rtp_dropped_total",
		Help: "RTP packets a WHEP session could not send.",
	})
)
