package admin

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/lemonvox/lemonvox/vmstore"
)

var httpRequests = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "lemonvox_admin_http_requests_total",
	Help: "Admin HTTP requests by status class.",
}, []string{"code"})

// RegisterStoreMetrics exports the store's size, journal position and hub
// subscribers (open IMAP sessions and notifiers) as gauges.
func RegisterStoreMetrics(reg prometheus.Registerer, st *vmstore.Store) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lemonvox_store_lsm_bytes", Help: "Size of the store's LSM tree."},
			func() float64 { return float64(st.Stats().LSMBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lemonvox_store_vlog_bytes", Help: "Size of the store's value log (message content)."},
			func() float64 { return float64(st.Stats().VLogBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lemonvox_journal_seq", Help: "Sequence number of the last journal event."},
			func() float64 { return float64(st.LastSeq()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lemonvox_open_sessions", Help: "Open sessions and notifiers watching the store."},
			func() float64 { return float64(st.Hub().Subscribers()) }),
	)
}
