package streaming

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	metricSessions = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_streaming_sessions_total",
		Help: "Playback sessions started, by transport (udp, tcp, whep, sip, other).",
	}, []string{"transport"})
	metricSessionsEnded = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_streaming_sessions_ended_total",
		Help: "Playback sessions ended, by reason (end, stop, timeout, error).",
	}, []string{"reason"})
	metricActive = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "lemonvox_streaming_sessions_active",
		Help: "Playback sessions currently open (playing or paused).",
	})
	metricPackets = promauto.NewCounter(prometheus.CounterOpts{
		Name: "lemonvox_streaming_rtp_packets_total",
		Help: "RTP packets sent by the pacing scheduler.",
	})
	metricBytes = promauto.NewCounter(prometheus.CounterOpts{
		Name: "lemonvox_streaming_rtp_bytes_total",
		Help: "Octets of RTP (SRTP) packets sent.",
	})
	metricWakeLate = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "lemonvox_streaming_pacing_wake_late_seconds",
		Help:    "How late a pacing shard began serving a 1-ms tick of its timer wheel (once per tick served).",
		Buckets: []float64{20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 50e-3},
	})
	metricLate = promauto.NewCounter(prometheus.CounterOpts{
		Name: "lemonvox_streaming_late_packets_total",
		Help: "RTP packets sent more than 10 ms after their deadline.",
	})
	metricDropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_streaming_dropped_packets_total",
		Help: "Packets a sink could not send without blocking, by sink (udp, tcp).",
	}, []string{"sink"})
	metricRTCP = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_streaming_rtcp_packets_total",
		Help: "RTCP packets sent, by kind (sr, bye).",
	}, []string{"kind"})
	metricCache = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_streaming_media_cache_total",
		Help: "Media opens by cache result (hit, miss).",
	}, []string{"result"})
	metricConversions = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_streaming_conversions_total",
		Help: "Conversions of a part to a wire codec started (one per part and codec while cached).",
	}, []string{"codec"})
	metricSeen = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_streaming_seen_total",
		Help: "Messages marked \\Seen by playback, by result (ok, error).",
	}, []string{"result"})
)
