package webhooks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
)

// requireRetry requires that err is a RetryError and returns its delay.
func requireRetry(t *testing.T, err error) time.Duration {
	t.Helper()
	delay, ok := RetryDelay(err)
	require.True(t, ok, "want a RetryError, got %v", err)
	return delay
}

// onlyAttempt loads delivery id and requires that it has exactly one
// attempt, which it returns.
func onlyAttempt(t *testing.T, e env, id string) models.WebhookAttempt {
	t.Helper()
	got := loadDelivery(t, e.db, id)
	require.Len(t, got.Attempts, 1)
	return got.Attempts[0]
}

func TestClassifyErrors(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error {
		return &url.Error{Op: "Post", URL: "https://hooks.example.com/x", Err: err}
	}
	dial := func(err error) error {
		return wrap(&net.OpError{Op: "dial", Net: "tcp", Err: err})
	}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"dns not found", dial(&net.DNSError{Err: "no such host", Name: "hooks.example.com", IsNotFound: true}), ClassDNS},
		{"dns timeout", dial(&net.DNSError{Err: "i/o timeout", Name: "hooks.example.com", IsTimeout: true}), ClassDNS},
		{"dns unwrapped", wrap(&net.DNSError{Err: "server misbehaving", Name: "hooks.example.com"}), ClassDNS},
		{"blocked", dial(&BlockedAddressError{Addr: netip.MustParseAddr("10.0.0.1"), Reason: "a private address"}), ClassBlocked},
		{"deadline", wrap(context.DeadlineExceeded), ClassTimeout},
		{"unknown authority", wrap(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), ClassTLS},
		{"hostname mismatch", wrap(x509.HostnameError{Host: "hooks.example.com"}), ClassTLS},
		{"expired certificate", wrap(x509.CertificateInvalidError{Reason: x509.Expired}), ClassTLS},
		{"tls alert", wrap(tls.AlertError(40)), ClassTLS},
		{"record header", wrap(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), ClassTLS},
		{"plain http answer", wrap(http.ErrSchemeMismatch), ClassTLS},
		{"connection refused", dial(syscall.ECONNREFUSED), ClassConnect},
		{"connection reset", wrap(syscall.ECONNRESET), ClassConnect},
		{"unexpected EOF", wrap(io.ErrUnexpectedEOF), ClassConnect},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, classify(tc.err))
		})
	}
}

func TestAttemptErrorClasses(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()

	t.Run("connect", func(t *testing.T) {
		t.Parallel()
		_, _, dlv := newPendingDelivery(t, e, "http://"+closedPortAddr(t)+"/hooks")
		d := newDeliverer(t, e, Config{}, nil)
		requireRetry(t, d.Deliver(ctx, dlv.ID))
		a := onlyAttempt(t, e, dlv.ID)
		require.Equal(t, ClassConnect, a.ErrorClass)
		require.Nil(t, a.StatusCode)
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		rcv := newReceiver(t, func(_ http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		// Cleanups run last-in first-out, so the handler returns before the
		// server closes.
		t.Cleanup(func() { close(release) })
		_, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
		d := newDeliverer(t, e, Config{Timeout: 300 * time.Millisecond}, nil)
		requireRetry(t, d.Deliver(ctx, dlv.ID))
		a := onlyAttempt(t, e, dlv.ID)
		require.Equal(t, ClassTimeout, a.ErrorClass)
		require.Nil(t, a.StatusCode)
	})

	t.Run("tls", func(t *testing.T) {
		t.Parallel()
		var hits atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
		// The server logs every failed handshake, and this test causes one.
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		t.Cleanup(srv.Close)
		_, _, dlv := newPendingDelivery(t, e, srv.URL+"/hooks")
		d := newDeliverer(t, e, Config{}, nil)
		requireRetry(t, d.Deliver(ctx, dlv.ID))
		a := onlyAttempt(t, e, dlv.ID)
		require.Equal(t, ClassTLS, a.ErrorClass)
		require.Contains(t, a.Error, "certificate")
		require.Nil(t, a.StatusCode)
		require.Zero(t, hits.Load(), "request sent over an untrusted connection")
	})

	t.Run("https to plain http", func(t *testing.T) {
		t.Parallel()
		rcv := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
		plain := strings.Replace(rcv.srv.URL, "http://", "https://", 1)
		_, _, dlv := newPendingDelivery(t, e, plain+"/hooks")
		d := newDeliverer(t, e, Config{}, nil)
		requireRetry(t, d.Deliver(ctx, dlv.ID))
		a := onlyAttempt(t, e, dlv.ID)
		require.Equal(t, ClassTLS, a.ErrorClass, "error %q", a.Error)
	})

	t.Run("http_status", func(t *testing.T) {
		t.Parallel()
		rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
		})
		_, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
		d := newDeliverer(t, e, Config{}, nil)
		requireRetry(t, d.Deliver(ctx, dlv.ID))
		a := onlyAttempt(t, e, dlv.ID)
		require.Equal(t, ClassHTTPStatus, a.ErrorClass)
		require.NotNil(t, a.StatusCode)
		require.Equal(t, http.StatusInternalServerError, *a.StatusCode)
	})

	t.Run("success has no class", func(t *testing.T) {
		t.Parallel()
		rcv := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
		_, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
		d := newDeliverer(t, e, Config{}, nil)
		require.NoError(t, d.Deliver(ctx, dlv.ID))
		require.Empty(t, onlyAttempt(t, e, dlv.ID).ErrorClass)
	})
}

func TestRetryAfterSetsNextAttempt(t *testing.T) {
	t.Parallel()
	e := setup(t)
	// HTTP dates have whole seconds, so the clock does too.
	at := time.Now().UTC().Truncate(time.Second)
	httpDate := func(d time.Duration) string { return at.Add(d).Format(http.TimeFormat) }
	const maxRetryAfter = time.Hour
	// The schedule's only delay is 10s with ±10% jitter.
	scheduled := [2]time.Duration{9 * time.Second, 11 * time.Second}
	exactly := func(d time.Duration) [2]time.Duration { return [2]time.Duration{d, d} }

	cases := []struct {
		name       string
		status     int
		retryAfter string
		want       [2]time.Duration // inclusive range of the delay
	}{
		{"429 seconds", http.StatusTooManyRequests, "120", exactly(120 * time.Second)},
		{"429 http date", http.StatusTooManyRequests, httpDate(90 * time.Second), exactly(90 * time.Second)},
		{"429 huge seconds", http.StatusTooManyRequests, "86400000", exactly(maxRetryAfter)},
		// 9223372037 seconds overflow time.Duration, which is int64
		// nanoseconds, to a negative value.
		{"429 overflowing seconds", http.StatusTooManyRequests, "9223372037", exactly(maxRetryAfter)},
		{"429 seconds beyond int64", http.StatusTooManyRequests, "99999999999999999999", exactly(maxRetryAfter)},
		{"429 distant date", http.StatusTooManyRequests, httpDate(1000 * 24 * time.Hour), exactly(maxRetryAfter)},
		{"429 past date", http.StatusTooManyRequests, httpDate(-time.Minute), scheduled},
		{"429 invalid value", http.StatusTooManyRequests, "soon", scheduled},
		{"429 without header", http.StatusTooManyRequests, "", scheduled},
		{"503 seconds", http.StatusServiceUnavailable, "120", exactly(120 * time.Second)},
		{"503 http date", http.StatusServiceUnavailable, httpDate(5 * time.Minute), exactly(5 * time.Minute)},
		{"503 huge seconds", http.StatusServiceUnavailable, "999999", exactly(maxRetryAfter)},
		{"500 ignores header", http.StatusInternalServerError, "120", scheduled},
		{"502 ignores header", http.StatusBadGateway, "120", scheduled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
			})
			_, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
			cfg := Config{RetrySchedule: []time.Duration{10 * time.Second, time.Hour}, MaxRetryAfter: maxRetryAfter}
			d := newDeliverer(t, e, cfg, func() time.Time { return at })

			delay := requireRetry(t, d.Deliver(context.Background(), dlv.ID))
			require.GreaterOrEqual(t, delay, tc.want[0])
			require.LessOrEqual(t, delay, tc.want[1])

			got := loadDelivery(t, e.db, dlv.ID)
			require.Equal(t, models.DeliveryPending, got.Status)
			require.NotNil(t, got.NextAttemptAt)
			// PostgreSQL stores microseconds.
			require.WithinDuration(t, at.Add(delay), *got.NextAttemptAt, time.Microsecond)
			require.Equal(t, "HTTP "+strconv.Itoa(tc.status), got.LastError)
		})
	}
}

func TestGoneDisablesEndpoint(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusGone)
	})
	ep, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	at := time.Now().UTC().Truncate(time.Microsecond)
	d := newDeliverer(t, e, Config{}, func() time.Time { return at })

	require.NoError(t, d.Deliver(ctx, dlv.ID))

	t.Run("delivery failed", func(t *testing.T) {
		got := loadDelivery(t, e.db, dlv.ID)
		require.Equal(t, models.DeliveryFailed, got.Status)
		require.Equal(t, 1, got.AttemptCount)
		require.Nil(t, got.NextAttemptAt)
	})

	t.Run("endpoint disabled", func(t *testing.T) {
		got, err := privateEndpoints(e.db, nil).Get(ctx, ep.ID)
		require.NoError(t, err)
		require.False(t, got.Enabled)
		require.Contains(t, got.DisabledReason, "410")
		require.NotNil(t, got.DisabledAt)
		require.True(t, got.DisabledAt.Equal(at), "disabledAt %s", got.DisabledAt)
	})

	t.Run("later delivery dropped", func(t *testing.T) {
		_, next := newEventDelivery(t, e, ep.ID)
		require.NoError(t, d.Deliver(ctx, next.ID))
		got := loadDelivery(t, e.db, next.ID)
		require.Equal(t, models.DeliveryFailed, got.Status)
		require.Zero(t, got.AttemptCount)
		require.Empty(t, got.Attempts)
		require.Contains(t, got.LastError, "disabled")
		require.Len(t, rcv.received(), 1)
	})
}

func TestDeliverDripFeedTimesOut(t *testing.T) {
	t.Parallel()
	e := setup(t)
	stop := make(chan struct{})
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		flusher := w.(http.Flusher)
		flusher.Flush()
		ticker := time.NewTicker(100 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			case <-ticker.C:
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				flusher.Flush()
			}
		}
	})
	t.Cleanup(func() { close(stop) })
	_, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	const timeout = 500 * time.Millisecond
	d := newDeliverer(t, e, Config{Timeout: timeout}, nil)

	started := time.Now()
	err := d.Deliver(context.Background(), dlv.ID)
	elapsed := time.Since(started)

	// A 200 response decides the outcome even when its body breaks off.
	require.NoError(t, err)
	require.Less(t, elapsed, timeout+time.Second)
	a := onlyAttempt(t, e, dlv.ID)
	require.NotNil(t, a.StatusCode)
	require.Equal(t, http.StatusOK, *a.StatusCode)
	require.Less(t, a.DurationMS, int((timeout + time.Second).Milliseconds()))
	require.LessOrEqual(t, len(a.ResponseBody), 10, "body %q", a.ResponseBody)
}

func TestDeliverStopsReadingHugeBody(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const bodySize = 10 << 20
	const maxResponseBytes = 1000
	written := make(chan int64, 1)
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		chunk := []byte(strings.Repeat("y", 32<<10))
		var n int64
		for n < bodySize {
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
		}
		written <- n
	})
	_, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	d := newDeliverer(t, e, Config{MaxResponseBytes: maxResponseBytes, Timeout: 10 * time.Second}, nil)

	started := time.Now()
	require.NoError(t, d.Deliver(context.Background(), dlv.ID))
	elapsed := time.Since(started)

	a := onlyAttempt(t, e, dlv.ID)
	require.Equal(t, strings.Repeat("y", maxResponseBytes), a.ResponseBody)
	require.Less(t, elapsed, 5*time.Second)

	var sent int64
	require.Eventually(t, func() bool {
		select {
		case sent = <-written:
			return true
		default:
			return false
		}
	}, 5*time.Second, 10*time.Millisecond, "the handler is still writing")
	require.Less(t, sent, int64(bodySize), "the client read the whole body")
	t.Logf("the handler wrote %d of %d bytes before the client closed the connection", sent, bodySize)
}

func TestEndpointHealth(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	var failing atomic.Bool
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	eps := privateEndpoints(e.db, nil)
	ep, _, _ := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	start := time.Now().UTC().Truncate(time.Second)
	clock := newManualClock(start)
	// The schedule is long, so that only DisableAfter ends the deliveries.
	schedule := []time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second}
	d := newDeliverer(t, e, Config{RetrySchedule: schedule, DisableAfter: time.Hour}, clock.Now)

	// attempt delivers a new event at time at and returns the endpoint
	// afterwards.
	attempt := func(t *testing.T, at time.Time, fail bool) (models.WebhookEndpoint, models.WebhookDelivery) {
		t.Helper()
		failing.Store(fail)
		clock.Set(at)
		_, dlv := newEventDelivery(t, e, ep.ID)
		err := d.Deliver(ctx, dlv.ID)
		if !fail {
			require.NoError(t, err)
		}
		got, err := eps.Get(ctx, ep.ID)
		require.NoError(t, err)
		return got, loadDelivery(t, e.db, dlv.ID)
	}

	t.Run("failures counted", func(t *testing.T) {
		got, _ := attempt(t, start, true)
		require.Equal(t, 1, got.ConsecutiveFailures)
		require.NotNil(t, got.FailingSince)
		require.True(t, got.FailingSince.Equal(start), "failingSince %s", got.FailingSince)

		got, _ = attempt(t, start.Add(10*time.Minute), true)
		require.Equal(t, 2, got.ConsecutiveFailures)
		require.True(t, got.FailingSince.Equal(start), "failingSince moved to %s", got.FailingSince)
		require.True(t, got.Enabled)
	})

	t.Run("success resets", func(t *testing.T) {
		got, _ := attempt(t, start.Add(20*time.Minute), false)
		require.Zero(t, got.ConsecutiveFailures)
		require.Nil(t, got.FailingSince)
		require.True(t, got.Enabled)
	})

	runStart := start.Add(30 * time.Minute)
	disabledAt := runStart.Add(time.Hour + time.Minute)

	t.Run("long failure disables", func(t *testing.T) {
		got, _ := attempt(t, runStart, true)
		require.Equal(t, 1, got.ConsecutiveFailures)
		require.True(t, got.FailingSince.Equal(runStart), "failingSince %s", got.FailingSince)

		got, _ = attempt(t, runStart.Add(59*time.Minute), true)
		require.True(t, got.Enabled, "disabled before an hour of failures")

		got, dlv := attempt(t, disabledAt, true)
		require.False(t, got.Enabled)
		require.Equal(t, 3, got.ConsecutiveFailures)
		require.Contains(t, got.DisabledReason, "every attempt failed since")
		require.Contains(t, got.DisabledReason, runStart.Format(time.RFC3339))
		require.NotNil(t, got.DisabledAt)
		require.True(t, got.DisabledAt.Equal(disabledAt), "disabledAt %s", got.DisabledAt)
		require.Equal(t, models.DeliveryFailed, dlv.Status)
	})

	t.Run("enabling clears health", func(t *testing.T) {
		got, err := eps.Update(ctx, ep.ID, EndpointPatch{Enabled: outpost.Value(true)})
		require.NoError(t, err)
		require.True(t, got.Enabled)
		require.Empty(t, got.DisabledReason)
		require.Nil(t, got.DisabledAt)
		require.Nil(t, got.FailingSince)
		require.Zero(t, got.ConsecutiveFailures)

		stored, err := eps.Get(ctx, ep.ID)
		require.NoError(t, err)
		require.Equal(t, got.Enabled, stored.Enabled)
		require.Empty(t, stored.DisabledReason)
		require.Nil(t, stored.DisabledAt)
		require.Nil(t, stored.FailingSince)
		require.Zero(t, stored.ConsecutiveFailures)
	})

	t.Run("delivers after enabling", func(t *testing.T) {
		got, dlv := attempt(t, disabledAt.Add(time.Minute), false)
		require.Equal(t, models.DeliverySucceeded, dlv.Status)
		require.True(t, got.Enabled)
	})
}

func TestEndpointLimitBusy(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(), DB: redisIndex})
	t.Cleanup(func() { _ = rdb.Close() })

	release := make(chan struct{})
	var arrived atomic.Int32
	slow := newReceiver(t, func(_ http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	var releaseOnce atomic.Bool
	releaseSlow := func() {
		if releaseOnce.CompareAndSwap(false, true) {
			close(release)
		}
	}
	t.Cleanup(releaseSlow)
	fast := newReceiver(t, func(http.ResponseWriter, *http.Request) {})

	slowEP, _, first := newPendingDelivery(t, e, slow.srv.URL+"/hooks")
	_, second := newEventDelivery(t, e, slowEP.ID)
	_, _, other := newPendingDelivery(t, e, fast.srv.URL+"/hooks")

	cfg := Config{MaxInFlightPerEndpoint: 1, AllowPrivateNetworks: true}
	d := NewDeliverer(Deps{DB: e.db, Queue: e.queue, Redis: rdb, Logger: testenv.Logger(t)}, cfg)

	firstDone := make(chan error, 1)
	go func() { firstDone <- d.Deliver(ctx, first.ID) }()
	require.Eventually(t, func() bool { return arrived.Load() == 1 }, 5*time.Second, 10*time.Millisecond,
		"the first attempt never reached the endpoint")

	t.Run("second attempt busy", func(t *testing.T) {
		err := d.Deliver(ctx, second.ID)
		require.True(t, IsBusy(err), "want a busy RetryError, got %v", err)
		delay := requireRetry(t, err)
		require.Positive(t, delay)
		got := loadDelivery(t, e.db, second.ID)
		require.Equal(t, models.DeliveryPending, got.Status)
		require.Zero(t, got.AttemptCount)
		require.Empty(t, got.Attempts)
		require.Equal(t, int32(1), arrived.Load())
	})

	t.Run("other endpoint unaffected", func(t *testing.T) {
		require.NoError(t, d.Deliver(ctx, other.ID))
		require.Equal(t, models.DeliverySucceeded, loadDelivery(t, e.db, other.ID).Status)
	})

	releaseSlow()
	select {
	case err := <-firstDone:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the first attempt did not finish")
	}

	t.Run("proceeds after first", func(t *testing.T) {
		require.NoError(t, d.Deliver(ctx, second.ID))
		got := loadDelivery(t, e.db, second.ID)
		require.Equal(t, models.DeliverySucceeded, got.Status)
		require.Len(t, got.Attempts, 1)
	})

	t.Run("slots released", func(t *testing.T) {
		n, err := rdb.ZCard(ctx, limiterKey(slowEP.ID)).Result()
		require.NoError(t, err)
		require.Zero(t, n)
	})
}

// histogramCount returns the sample count of histogram name in reg.
func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			require.Len(t, f.GetMetric(), 1)
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	require.Failf(t, "histogram not registered", "%s", name)
	return 0
}

func TestMetricsCountAttempts(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	ok := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
	failing := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	_, _, success := newPendingDelivery(t, e, ok.srv.URL+"/hooks")
	_, _, failure := newPendingDelivery(t, e, failing.srv.URL+"/hooks")
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	cfg := Config{AllowPrivateNetworks: true, RetrySchedule: []time.Duration{time.Second}}
	d := NewDeliverer(Deps{DB: e.db, Queue: e.queue, Metrics: metrics, Logger: testenv.Logger(t)}, cfg)

	require.NoError(t, d.Deliver(ctx, success.ID))
	requireRetry(t, d.Deliver(ctx, failure.ID))

	t.Run("attempts by outcome", func(t *testing.T) {
		require.Equal(t, 1.0, testutil.ToFloat64(metrics.attempts.WithLabelValues("success", "")))
		require.Equal(t, 1.0, testutil.ToFloat64(metrics.attempts.WithLabelValues("failure", ClassHTTPStatus)))
		require.Equal(t, 2, testutil.CollectAndCount(metrics.attempts, "outpost_webhook_attempts_total"))
	})

	t.Run("finished deliveries", func(t *testing.T) {
		require.Equal(t, 1.0, testutil.ToFloat64(metrics.finished.WithLabelValues(string(models.DeliverySucceeded))))
		require.Equal(t, 1, testutil.CollectAndCount(metrics.finished, "outpost_webhook_deliveries_total"))
	})

	t.Run("histograms", func(t *testing.T) {
		require.EqualValues(t, 2, histogramCount(t, reg, "outpost_webhook_attempt_duration_seconds"))
		require.EqualValues(t, 1, histogramCount(t, reg, "outpost_webhook_end_to_end_seconds"))
	})

	t.Run("final failure", func(t *testing.T) {
		require.NoError(t, d.Deliver(ctx, failure.ID))
		require.Equal(t, 2.0, testutil.ToFloat64(metrics.attempts.WithLabelValues("failure", ClassHTTPStatus)))
		require.Equal(t, 1.0, testutil.ToFloat64(metrics.finished.WithLabelValues(string(models.DeliveryFailed))))
		require.EqualValues(t, 1, histogramCount(t, reg, "outpost_webhook_end_to_end_seconds"))
	})
}
