package webhooks

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/models"
)

// Metrics are the Prometheus collectors of webhook delivery. A nil *Metrics
// records nothing.
type Metrics struct {
	attempts *prometheus.CounterVec
	finished *prometheus.CounterVec
	duration prometheus.Histogram
	endToEnd prometheus.Histogram
}

// NewMetrics creates the delivery collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_webhook_attempts_total",
			Help: "Delivery attempts by outcome (success or failure) and error class (empty on success).",
		}, []string{"outcome", "error_class"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_webhook_deliveries_total",
			Help: "Deliveries that reached a final status: succeeded or failed.",
		}, []string{"status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "outpost_webhook_attempt_duration_seconds",
			Help:    "Duration of one delivery attempt, from sending the request to reading the response.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 13),
		}),
		endToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "outpost_webhook_end_to_end_seconds",
			Help:    "Time from the event's commit to the 2xx answer that completed its delivery.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36000},
		}),
	}
	reg.MustRegister(m.attempts, m.finished, m.duration, m.endToEnd)
	return m
}

func (m *Metrics) observeAttempt(r postResult, durationMS int, status models.DeliveryStatus, sinceEvent time.Duration) {
	if m == nil {
		return
	}
	outcome := "failure"
	if r.ok {
		outcome = "success"
		m.endToEnd.Observe(sinceEvent.Seconds())
	}
	m.attempts.WithLabelValues(outcome, r.class).Inc()
	m.duration.Observe(float64(durationMS) / 1000)
	if status != models.DeliveryPending {
		m.finished.WithLabelValues(string(status)).Inc()
	}
}
