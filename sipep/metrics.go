package sipep

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	metricResponses = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_sip_endpoint_responses_total",
		Help: "Responses the SIP endpoint sent itself (validation, rate, connection limits, digest, unserved methods), by kind or method and status class.",
	}, []string{"kind", "status"})
	metricDigestReplays = promauto.NewCounter(prometheus.CounterOpts{
		Name: "lemonvox_sip_digest_replays_total",
		Help: "SIP requests whose digest nonce count did not increase (replayed credentials).",
	})
)

func countResponse(kind string, code int) {
	metricResponses.WithLabelValues(kind, strconv.Itoa(code/100)+"xx").Inc()
}
