package worker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"gorm.io/gorm"

	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/webhooks"
	"github.com/outposthq/outpost/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql and the HTTP client keep these until the process ends.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

// env is a running worker with the services behind it.
type env struct {
	db         *gorm.DB
	queue      *asynq.Client
	dispatcher *outbox.Dispatcher
}

// setup starts a worker server with retry schedule schedule, and stops it
// when the test ends.
func setup(t *testing.T, schedule []time.Duration) env {
	t.Helper()
	return setupWith(t, webhooks.Config{RetrySchedule: schedule, Timeout: 2 * time.Second})
}

// setupWith starts a worker server whose deliveries use whCfg, with the
// per-endpoint in-flight limit kept in Redis.
func setupWith(t *testing.T, whCfg webhooks.Config) env {
	t.Helper()
	db := testenv.DB(t, "worker")
	redisURL := testenv.RedisURL(t, 5)
	redisOpt, err := asynq.ParseRedisURI(redisURL)
	require.NoError(t, err)
	queue := asynq.NewClient(redisOpt)
	t.Cleanup(func() { _ = queue.Close() })
	rdb := redisOpt.MakeRedisClient().(redis.UniversalClient)
	t.Cleanup(func() { _ = rdb.Close() })

	logger := testenv.Logger(t)
	whCfg.AllowPrivateNetworks = true
	deliverer := webhooks.NewDeliverer(webhooks.Deps{DB: db, Queue: queue, Redis: rdb, Logger: logger}, whCfg)
	dispatcher := outbox.NewDispatcher(db, queue, logger, nil)

	srv := worker.NewServer(redisOpt, worker.Config{Concurrency: 4, ShutdownTimeout: 2 * time.Second}, logger)
	mux := worker.NewMux(worker.Handlers{Deliverer: deliverer, Dispatcher: dispatcher, Logger: logger})
	require.NoError(t, srv.Start(mux))
	t.Cleanup(srv.Shutdown)
	return env{db: db, queue: queue, dispatcher: dispatcher}
}

// emit writes an account.created event for a new endpoint at url and
// dispatches it, and returns the endpoint.
func (e env) emit(t *testing.T, url string) models.WebhookEndpoint {
	t.Helper()
	ep := e.endpoint(t, url)
	e.event(t)
	return ep
}

// endpoint registers an endpoint at url for every event type.
func (e env) endpoint(t *testing.T, url string) models.WebhookEndpoint {
	t.Helper()
	endpoints := webhooks.NewEndpoints(e.db, nil)
	endpoints.AllowPrivateNetworks = true
	ep, err := endpoints.Create(context.Background(), webhooks.NewEndpoint{URL: url, Events: []string{"*"}})
	require.NoError(t, err)
	return ep
}

// event writes an account.created event and dispatches it.
func (e env) event(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var evt models.Event
	err := e.db.Transaction(func(tx *gorm.DB) error {
		var err error
		evt, err = outbox.Append(tx, time.Now().Add(time.Millisecond), outbox.AccountCreated, map[string]string{"id": "acc_test"})
		return err
	})
	require.NoError(t, err)
	e.dispatcher.Dispatch(ctx, evt)
}

func (e env) delivery(t *testing.T, endpointID string) models.WebhookDelivery {
	t.Helper()
	var d models.WebhookDelivery
	err := e.db.Preload("Attempts").Take(&d, "endpoint_id = ?", endpointID).Error
	if err != nil {
		return models.WebhookDelivery{}
	}
	return d
}

func TestWorkerRetriesUntilSuccess(t *testing.T) {
	e := setup(t, []time.Duration{time.Second, time.Second})
	var calls atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(recv.Close)

	ep := e.emit(t, recv.URL)
	require.Eventually(t, func() bool {
		return e.delivery(t, ep.ID).Status == models.DeliverySucceeded
	}, 15*time.Second, 50*time.Millisecond)

	d := e.delivery(t, ep.ID)
	require.Equal(t, 2, d.AttemptCount)
	require.Len(t, d.Attempts, 2)
	require.EqualValues(t, 2, calls.Load())
}

func TestWorkerFailsAfterLastRetry(t *testing.T) {
	e := setup(t, []time.Duration{time.Second})
	var calls atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(recv.Close)

	ep := e.emit(t, recv.URL)
	require.Eventually(t, func() bool {
		return e.delivery(t, ep.ID).Status == models.DeliveryFailed
	}, 15*time.Second, 50*time.Millisecond)

	d := e.delivery(t, ep.ID)
	require.Equal(t, 2, d.AttemptCount, "one attempt plus one retry")
	require.EqualValues(t, 2, calls.Load())
	for _, a := range d.Attempts {
		require.NotNil(t, a.StatusCode)
		require.Equal(t, http.StatusInternalServerError, *a.StatusCode)
	}
}

func TestHangingEndpointLeavesOthersFlowing(t *testing.T) {
	const limit = 2
	e := setupWith(t, webhooks.Config{
		RetrySchedule:          []time.Duration{time.Second},
		Timeout:                time.Minute,
		MaxInFlightPerEndpoint: limit,
	})

	// The hanging receiver holds every request until the test releases it.
	release := make(chan struct{})
	var inFlight, maxInFlight atomic.Int32
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(release) })
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(healthy.Close)

	slow := e.endpoint(t, hanging.URL)
	fast := e.endpoint(t, healthy.URL)
	const events = 20
	for range events {
		e.event(t)
	}

	// Four workers serve both endpoints. Without the limit, the hanging
	// endpoint's deliveries would take all four and the healthy endpoint
	// would wait for them to time out.
	count := func(endpointID string, status models.DeliveryStatus) int64 {
		var n int64
		require.NoError(t, e.db.Model(&models.WebhookDelivery{}).
			Where("endpoint_id = ? AND status = ?", endpointID, status).Count(&n).Error)
		return n
	}
	require.Eventually(t, func() bool {
		return count(fast.ID, models.DeliverySucceeded) == events
	}, 20*time.Second, 20*time.Millisecond, "healthy deliveries did not complete while the other endpoint hung")

	require.Equal(t, int64(events), count(slow.ID, models.DeliveryPending), "no hanging delivery may finish before release")
	require.LessOrEqual(t, maxInFlight.Load(), int32(limit), "more requests in flight to one endpoint than its limit")
	require.Positive(t, maxInFlight.Load(), "the hanging endpoint was never called")
}
