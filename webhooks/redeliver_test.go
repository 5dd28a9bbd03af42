package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/tasks"
)

// recordingQueue enqueues with a real asynq client and records the IDs of
// the tasks that the queue accepted.
type recordingQueue struct {
	client *asynq.Client

	mu  sync.Mutex
	ids []string
}

func (q *recordingQueue) EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	info, err := q.client.EnqueueContext(ctx, task, opts...)
	if err == nil {
		q.mu.Lock()
		q.ids = append(q.ids, info.ID)
		q.mu.Unlock()
	}
	return info, err
}

// takeEnqueued returns the task IDs enqueued since the last call.
func (q *recordingQueue) takeEnqueued() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	ids := q.ids
	q.ids = nil
	return ids
}

// newTaskDeliverer returns a Deliverer that can remove queued tasks, with
// the guard lifted for the tests' loopback receivers.
func newTaskDeliverer(t *testing.T, e env, cfg Config, nowFunc func() time.Time) *Deliverer {
	t.Helper()
	cfg.AllowPrivateNetworks = true
	deps := Deps{DB: e.db, Queue: e.queue, Tasks: e.inspector, Logger: testenv.Logger(t), NowFunc: nowFunc}
	return NewDeliverer(deps, cfg)
}

// requireTaskState requires that the task with id in queue exists in state.
func requireTaskState(t *testing.T, e env, queue, id string, state asynq.TaskState) *asynq.TaskInfo {
	t.Helper()
	info, err := e.inspector.GetTaskInfo(queue, id)
	require.NoError(t, err, "task %s in queue %s", id, queue)
	require.Equal(t, state, info.State, "state of task %s", id)
	return info
}

// requireNoTask requires that queue has no task with id.
func requireNoTask(t *testing.T, e env, queue, id string) {
	t.Helper()
	_, err := e.inspector.GetTaskInfo(queue, id)
	require.ErrorIs(t, err, asynq.ErrTaskNotFound, "task %s in queue %s", id, queue)
}

// failForGood makes the two attempts that a one-entry schedule allows, to a
// failing receiver, and requires that the delivery failed.
func failForGood(t *testing.T, e env, d *Deliverer, id string) {
	t.Helper()
	ctx := context.Background()
	requireRetry(t, d.Deliver(ctx, id))
	require.NoError(t, d.Deliver(ctx, id))
	got := loadDelivery(t, e.db, id)
	require.Equal(t, models.DeliveryFailed, got.Status)
	require.Equal(t, 2, got.AttemptCount)
}

func TestRedeliverArchivedDelivery(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	var healthy atomic.Bool
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	_, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	d := newTaskDeliverer(t, e, Config{RetrySchedule: []time.Duration{time.Second}}, nil)
	failForGood(t, e, d, dlv.ID)

	// asynq archives a task whose retries ran out. The test archives one
	// directly.
	require.NoError(t, d.Enqueue(ctx, dlv.ID, time.Time{}))
	require.NoError(t, e.inspector.ArchiveTask(tasks.QueueWebhooks, dlv.ID))
	requireTaskState(t, e, tasks.QueueWebhooks, dlv.ID, asynq.TaskStateArchived)

	returned, err := d.Redeliver(ctx, dlv.ID)
	require.NoError(t, err)

	t.Run("returned delivery", func(t *testing.T) {
		require.Equal(t, dlv.ID, returned.ID)
		require.Equal(t, models.DeliveryPending, returned.Status)
		require.Equal(t, 2, returned.AttemptCount)
		require.Equal(t, 2, returned.RetryBase)
		require.NotNil(t, returned.NextAttemptAt)
	})

	t.Run("stored delivery", func(t *testing.T) {
		got := loadDelivery(t, e.db, dlv.ID)
		require.Equal(t, models.DeliveryPending, got.Status)
		require.Equal(t, got.AttemptCount, got.RetryBase)
		require.NotNil(t, got.NextAttemptAt)
	})

	t.Run("archived task replaced", func(t *testing.T) {
		info := requireTaskState(t, e, tasks.QueueWebhooks, dlv.ID, asynq.TaskStatePending)
		require.Equal(t, tasks.TypeWebhookDelivery, info.Type)
	})

	healthy.Store(true)

	t.Run("next attempt succeeds", func(t *testing.T) {
		require.NoError(t, d.Deliver(ctx, dlv.ID))
		got := loadDelivery(t, e.db, dlv.ID)
		require.Equal(t, models.DeliverySucceeded, got.Status)
		require.Len(t, got.Attempts, 3)
		require.Equal(t, 3, got.Attempts[2].Number)
		require.Empty(t, got.Attempts[2].ErrorClass)
	})
}

func TestRedeliverRestartsSchedule(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	_, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	d := newTaskDeliverer(t, e, Config{RetrySchedule: []time.Duration{time.Second}}, nil)
	failForGood(t, e, d, dlv.ID)

	_, err := d.Redeliver(ctx, dlv.ID)
	require.NoError(t, err)

	// The new series has the whole schedule again: one retry after its
	// first attempt.
	requireRetry(t, d.Deliver(ctx, dlv.ID))
	require.Equal(t, models.DeliveryPending, loadDelivery(t, e.db, dlv.ID).Status)
	require.NoError(t, d.Deliver(ctx, dlv.ID))
	got := loadDelivery(t, e.db, dlv.ID)
	require.Equal(t, models.DeliveryFailed, got.Status)
	require.Equal(t, 4, got.AttemptCount)
	require.Len(t, rcv.received(), 4)
}

func TestRedeliverUnknownDelivery(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := newTaskDeliverer(t, e, Config{}, nil)
	_, err := d.Redeliver(context.Background(), models.NewID(models.PrefixDelivery))
	require.ErrorIs(t, err, outpost.ErrNotFound)
}

func TestRedeliverTaskInProgress(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	_, _, dlv := newPendingDelivery(t, e, "http://127.0.0.1:9/hooks")
	d := newTaskDeliverer(t, e, Config{}, nil)
	require.NoError(t, d.Enqueue(ctx, dlv.ID, time.Time{}))

	// A worker marks the task hash active while it runs the task. The key
	// layout is that of asynq v0.26.0, from internal/base.TaskKey. No test
	// worker runs here, because it would also take the other tests' tasks.
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(), DB: redisIndex})
	t.Cleanup(func() { _ = rdb.Close() })
	taskKey := "asynq:{" + tasks.QueueWebhooks + "}:t:" + dlv.ID
	require.NoError(t, rdb.HSet(ctx, taskKey, "state", "active").Err())
	t.Cleanup(func() {
		_ = rdb.HSet(context.Background(), taskKey, "state", "pending").Err()
		_ = e.inspector.DeleteTask(tasks.QueueWebhooks, dlv.ID)
	})

	_, err := d.Redeliver(ctx, dlv.ID)
	var conflict *outpost.ConflictError
	require.True(t, errors.As(err, &conflict), "want a ConflictError, got %v", err)
	require.Equal(t, "path.id", conflict.Field)
	require.Contains(t, conflict.Message, "in progress")
	require.Zero(t, loadDelivery(t, e.db, dlv.ID).RetryBase)
}

func TestRedeliverQueueUnavailable(t *testing.T) {
	t.Parallel()
	e := setup(t)
	_, _, dlv := newPendingDelivery(t, e, "http://127.0.0.1:9/hooks")
	closed := asynq.NewInspector(redisOpt)
	require.NoError(t, closed.Close())
	deps := Deps{DB: e.db, Queue: e.queue, Tasks: closed, Logger: testenv.Logger(t)}
	d := NewDeliverer(deps, Config{AllowPrivateNetworks: true})

	_, err := d.Redeliver(context.Background(), dlv.ID)
	require.Error(t, err)
	var conflict *outpost.ConflictError
	require.False(t, errors.As(err, &conflict), "a Redis failure reported as an attempt in progress: %v", err)
}

func TestReplayFailedSince(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	eps := privateEndpoints(e.db, futureClock)
	newEndpoint := func() models.WebhookEndpoint {
		ep, err := eps.Create(ctx, NewEndpoint{URL: "http://127.0.0.1:9/hooks", Events: []string{AllEvents}})
		require.NoError(t, err)
		return ep
	}
	ep, other := newEndpoint(), newEndpoint()
	since := time.Now().UTC().Truncate(time.Microsecond)

	// delivery stores a delivery to endpoint epID created at at, in status.
	delivery := func(epID string, at time.Time, status models.DeliveryStatus) string {
		evt := appendEvent(t, e.db, at, outbox.TicketCreated)
		dlv := insertDelivery(t, e, epID, evt, at)
		err := e.db.Model(&models.WebhookDelivery{}).Where("id = ?", dlv.ID).
			Updates(map[string]any{"status": status, "attempt_count": 2}).Error
		require.NoError(t, err)
		return dlv.ID
	}
	before := delivery(ep.ID, since.Add(-time.Hour), models.DeliveryFailed)
	atSince := delivery(ep.ID, since, models.DeliveryFailed)
	after := delivery(ep.ID, since.Add(time.Minute), models.DeliveryFailed)
	succeeded := delivery(ep.ID, since.Add(time.Minute), models.DeliverySucceeded)
	otherEndpoint := delivery(other.ID, since.Add(time.Minute), models.DeliveryFailed)
	d := newTaskDeliverer(t, e, Config{}, nil)

	n, err := d.Replay(ctx, ep.ID, since)
	require.NoError(t, err)
	require.Equal(t, 2, n)

	t.Run("replayed deliveries", func(t *testing.T) {
		for _, id := range []string{atSince, after} {
			got := loadDelivery(t, e.db, id)
			require.Equal(t, models.DeliveryPending, got.Status, "delivery %s", id)
			require.Equal(t, 2, got.RetryBase, "delivery %s", id)
			requireTaskState(t, e, tasks.QueueWebhooks, id, asynq.TaskStatePending)
		}
	})

	t.Run("others untouched", func(t *testing.T) {
		want := map[string]models.DeliveryStatus{
			before:        models.DeliveryFailed,
			succeeded:     models.DeliverySucceeded,
			otherEndpoint: models.DeliveryFailed,
		}
		for id, status := range want {
			got := loadDelivery(t, e.db, id)
			require.Equal(t, status, got.Status, "delivery %s", id)
			require.Zero(t, got.RetryBase, "delivery %s", id)
			requireNoTask(t, e, tasks.QueueWebhooks, id)
		}
	})

	t.Run("second replay", func(t *testing.T) {
		n, err := d.Replay(ctx, ep.ID, since)
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("unknown endpoint", func(t *testing.T) {
		n, err := d.Replay(ctx, models.NewID(models.PrefixEndpoint), since)
		require.ErrorIs(t, err, outpost.ErrNotFound)
		require.Zero(t, n)
	})
}

func TestSendTestDelivery(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	rcv := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
	eps := privateEndpoints(e.db, futureClock)
	// Subscribed to another type: a test delivery ignores subscriptions.
	ep, err := eps.Create(ctx, NewEndpoint{URL: rcv.srv.URL + "/hooks", Events: []string{outbox.TicketCreated}})
	require.NoError(t, err)
	_, err = eps.Create(ctx, NewEndpoint{URL: rcv.srv.URL + "/everything", Events: []string{AllEvents}})
	require.NoError(t, err)
	d := newTaskDeliverer(t, e, Config{}, nil)

	dlv, err := d.SendTest(ctx, ep.ID)
	require.NoError(t, err)

	t.Run("delivery", func(t *testing.T) {
		require.True(t, models.ValidID(models.PrefixDelivery, dlv.ID), dlv.ID)
		require.Equal(t, ep.ID, dlv.EndpointID)
		require.Equal(t, TestEvent, dlv.EventType)
		require.Equal(t, models.DeliveryPending, dlv.Status)
	})

	t.Run("only this endpoint", func(t *testing.T) {
		var n int64
		require.NoError(t, e.db.Model(&models.WebhookDelivery{}).Where("event_id = ?", dlv.EventID).Count(&n).Error)
		require.EqualValues(t, 1, n)
	})

	t.Run("event", func(t *testing.T) {
		var evt models.Event
		require.NoError(t, e.db.Take(&evt, "id = ?", dlv.EventID).Error)
		require.Equal(t, TestEvent, evt.Type)
		require.NotNil(t, evt.DispatchedAt)
		require.NotNil(t, evt.FannedOutAt)
		var body struct {
			ID    string            `json:"id"`
			Event string            `json:"event"`
			Data  map[string]string `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(evt.Body), &body))
		require.Equal(t, evt.ID, body.ID)
		require.Equal(t, TestEvent, body.Event)
		require.Equal(t, ep.ID, body.Data["endpointId"])
	})

	t.Run("task enqueued", func(t *testing.T) {
		info := requireTaskState(t, e, tasks.QueueWebhooks, dlv.ID, asynq.TaskStatePending)
		require.Equal(t, tasks.TypeWebhookDelivery, info.Type)
	})

	t.Run("delivered", func(t *testing.T) {
		require.NoError(t, d.Deliver(ctx, dlv.ID))
		reqs := rcv.received()
		require.Len(t, reqs, 1)
		require.Equal(t, "/hooks", reqs[0].path)
		require.Equal(t, TestEvent, reqs[0].header.Get(HeaderEvent))
		require.Contains(t, string(reqs[0].body), `"event":"webhook.test"`)
	})

	t.Run("unknown endpoint", func(t *testing.T) {
		_, err := d.SendTest(ctx, models.NewID(models.PrefixEndpoint))
		require.ErrorIs(t, err, outpost.ErrNotFound)
	})
}

func TestReconcileRestoresLostTasks(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	ep, _, lost := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	_, kept := newEventDelivery(t, e, ep.ID)
	start := time.Now().UTC().Truncate(time.Second)
	cfg := Config{RetrySchedule: []time.Duration{time.Minute, time.Minute}}
	d := newDeliverer(t, e, cfg, func() time.Time { return start })

	// The first attempts fail, and the worker enqueues each retry for its
	// next_attempt_at.
	nextAttempt := map[string]time.Time{}
	for _, id := range []string{lost.ID, kept.ID} {
		requireRetry(t, d.Deliver(ctx, id))
		got := loadDelivery(t, e.db, id)
		require.NotNil(t, got.NextAttemptAt)
		nextAttempt[id] = *got.NextAttemptAt
		require.NoError(t, d.Enqueue(ctx, id, *got.NextAttemptAt))
	}
	// Redis loses the task of one delivery, as after a restart without
	// persistence.
	require.NoError(t, e.inspector.DeleteTask(tasks.QueueWebhooks, lost.ID))
	requireNoTask(t, e, tasks.QueueWebhooks, lost.ID)

	queue := &recordingQueue{client: e.queue}
	reconciler := func(at time.Time) *Deliverer {
		deps := Deps{DB: e.db, Queue: queue, Logger: testenv.Logger(t), NowFunc: func() time.Time { return at }}
		return NewDeliverer(deps, cfg)
	}

	t.Run("not overdue yet", func(t *testing.T) {
		_, err := reconciler(nextAttempt[lost.ID].Add(30 * time.Second)).Reconcile(ctx)
		require.NoError(t, err)
		require.NotContains(t, queue.takeEnqueued(), lost.ID)
		requireNoTask(t, e, tasks.QueueWebhooks, lost.ID)
	})

	// An event that was handed to the queue but never fanned out.
	unfanned := appendEvent(t, e.db, start, outbox.TicketCreated)
	err := e.db.Model(&models.Event{}).Where("id = ?", unfanned.ID).Update("dispatched_at", start).Error
	require.NoError(t, err)

	late := nextAttempt[lost.ID]
	if nextAttempt[kept.ID].After(late) {
		late = nextAttempt[kept.ID]
	}
	late = late.Add(reconcileGrace + time.Second)
	r := reconciler(late)
	n, err := r.Reconcile(ctx)
	require.NoError(t, err)
	enqueued := queue.takeEnqueued()

	t.Run("lost delivery enqueued", func(t *testing.T) {
		require.GreaterOrEqual(t, n, 2, "the lost delivery and the fan-out")
		require.Contains(t, enqueued, lost.ID)
		info := requireTaskState(t, e, tasks.QueueWebhooks, lost.ID, asynq.TaskStatePending)
		require.Equal(t, tasks.TypeWebhookDelivery, info.Type)
	})

	t.Run("existing task kept", func(t *testing.T) {
		require.NotContains(t, enqueued, kept.ID)
		requireTaskState(t, e, tasks.QueueWebhooks, kept.ID, asynq.TaskStateScheduled)
	})

	t.Run("fan-out enqueued", func(t *testing.T) {
		require.Contains(t, enqueued, unfanned.ID)
		info := requireTaskState(t, e, tasks.QueueEvents, unfanned.ID, asynq.TaskStatePending)
		require.Equal(t, tasks.TypeEventFanout, info.Type)
	})

	t.Run("second run adds nothing", func(t *testing.T) {
		_, err := r.Reconcile(ctx)
		require.NoError(t, err)
		again := queue.takeEnqueued()
		require.NotContains(t, again, lost.ID, "lost delivery enqueued twice")
		require.NotContains(t, again, unfanned.ID, "fan-out enqueued twice")
		require.Equal(t, 1, pendingTaskCounts(t, e)[lost.ID])
	})
}

// TestReconcileFanoutsShareTimestamp is not parallel, because its reconciler
// would enqueue the lost tasks of the other tests before their own
// reconcilers do, and those tests check what their reconcilers enqueued.
func TestReconcileFanoutsShareTimestamp(t *testing.T) {
	e := setup(t)
	// The outbox relay marks each batch of events dispatched with one
	// timestamp, so more than one reconciler batch can share it.
	at := time.Now().UTC().Truncate(time.Microsecond)
	events := make([]models.Event, reconcileBatch+1)
	for i := range events {
		events[i] = models.Event{
			ID:           models.NewID(models.PrefixEvent),
			Type:         outbox.TicketCreated,
			Body:         `{}`,
			CreatedAt:    at,
			DispatchedAt: &at,
		}
	}
	require.NoError(t, e.db.CreateInBatches(events, 200).Error)
	// The other reconciler tests would otherwise find these events too.
	t.Cleanup(func() {
		ids := make([]string, len(events))
		for i, evt := range events {
			ids[i] = evt.ID
		}
		err := e.db.Model(&models.Event{}).Where("id IN ?", ids).Update("fanned_out_at", at).Error
		require.NoError(t, err)
	})
	d := newDeliverer(t, e, Config{}, func() time.Time { return at.Add(reconcileGrace + time.Second) })

	n, err := d.Reconcile(context.Background())
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, len(events))

	var missing []string
	for _, evt := range events {
		if _, err := e.inspector.GetTaskInfo(tasks.QueueEvents, evt.ID); err != nil {
			require.ErrorIs(t, err, asynq.ErrTaskNotFound)
			missing = append(missing, evt.ID)
		}
	}
	require.Empty(t, missing, "events without a fan-out task after one reconciler run")
}

func TestReconcileRevivesArchivedTask(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	_, _, dlv := newPendingDelivery(t, e, "http://127.0.0.1:9/hooks")
	due := time.Now().UTC().Truncate(time.Second)
	require.NoError(t, e.db.Model(&models.WebhookDelivery{}).Where("id = ?", dlv.ID).Update("next_attempt_at", due).Error)

	// asynq archived the task after its own retries ran out, while the
	// delivery is still pending in PostgreSQL.
	d := newTaskDeliverer(t, e, Config{}, func() time.Time { return due })
	require.NoError(t, d.Enqueue(ctx, dlv.ID, time.Time{}))
	require.NoError(t, e.inspector.ArchiveTask(tasks.QueueWebhooks, dlv.ID))
	requireTaskState(t, e, tasks.QueueWebhooks, dlv.ID, asynq.TaskStateArchived)

	queue := &recordingQueue{client: e.queue}
	deps := Deps{DB: e.db, Queue: queue, Tasks: e.inspector, Logger: testenv.Logger(t),
		NowFunc: func() time.Time { return due.Add(2 * reconcileGrace) }}
	_, err := NewDeliverer(deps, Config{}).Reconcile(ctx)
	require.NoError(t, err)

	require.Contains(t, queue.takeEnqueued(), dlv.ID)
	requireTaskState(t, e, tasks.QueueWebhooks, dlv.ID, asynq.TaskStatePending)
	require.Equal(t, models.DeliveryPending, loadDelivery(t, e.db, dlv.ID).Status)
}
