package vmstore

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	metricDeposits = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_deposits_total",
		Help: "Messages stored, by the service that deposited them.",
	}, []string{"service"})
	metricDepositBytes = promauto.NewCounter(prometheus.CounterOpts{
		Name: "lemonvox_deposit_bytes_total",
		Help: "Bytes of messages stored.",
	})
	metricDepositRefused = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_deposits_refused_total",
		Help: "Deposits refused, by reason.",
	}, []string{"reason"})
	metricDepositSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "lemonvox_deposit_duration_seconds",
		Help:    "Time to store a message durably, from the first byte read to the commit.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	metricCommitGroup = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "lemonvox_store_commit_group_size",
		Help:    "Account transactions written by one durable Badger commit (group commit).",
		Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16, 32, 64},
	})
)
