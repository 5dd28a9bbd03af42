package worker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
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
	db := testenv.DB(t, "worker")
	redisOpt, err := asynq.ParseRedisURI(testenv.RedisURL(t, 5))
	require.NoError(t, err)
	queue := asynq.NewClient(redisOpt)
	t.Cleanup(func() { _ = queue.Close() })

	logger := testenv.Logger(t)
	whCfg := webhooks.Config{RetrySchedule: schedule, Timeout: 2 * time.Second, AllowPrivateNetworks: true}
	deliverer := webhooks.NewDeliverer(webhooks.Deps{DB: db, Queue: queue, Logger: logger}, whCfg)
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
	ctx := context.Background()
	endpoints := webhooks.NewEndpoints(e.db, nil)
	endpoints.AllowPrivateNetworks = true
	ep, err := endpoints.Create(ctx, webhooks.NewEndpoint{URL: url, Events: []string{"*"}})
	require.NoError(t, err)

	var evt models.Event
	err = e.db.Transaction(func(tx *gorm.DB) error {
		var err error
		evt, err = outbox.Append(tx, time.Now().Add(time.Millisecond), outbox.AccountCreated, map[string]string{"id": "acc_test"})
		return err
	})
	require.NoError(t, err)
	e.dispatcher.Dispatch(ctx, evt)
	return ep
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
