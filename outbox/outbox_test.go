package outbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/tasks"
)

// The relay tests do not call t.Parallel, because a relay takes every
// undispatched event old enough in the shared database, including those of
// other tests. Parallel tests start only after all of them have finished.

// redisIndex is the Redis database index of this package's tests.
const redisIndex = 4

var (
	redisOnce sync.Once
	redisOpt  asynq.RedisConnOpt
)

// env is the database and queue that one test runs against.
type env struct {
	db        *gorm.DB
	queue     *asynq.Client
	inspector *asynq.Inspector
}

// setup connects to the package's test database and Redis index. The first
// call in the test binary flushes the Redis index, and later calls share it.
func setup(t *testing.T) env {
	t.Helper()
	redisOnce.Do(func() {
		opt, err := asynq.ParseRedisURI(testenv.RedisURL(t, redisIndex))
		require.NoError(t, err)
		redisOpt = opt
	})
	require.NotNil(t, redisOpt, "Redis setup failed in an earlier test")

	return env{db: testenv.DB(t, "outbox"), queue: newClient(t, redisOpt), inspector: newInspector(t, redisOpt)}
}

func newClient(t *testing.T, opt asynq.RedisConnOpt) *asynq.Client {
	t.Helper()
	client := asynq.NewClient(opt)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func newInspector(t *testing.T, opt asynq.RedisConnOpt) *asynq.Inspector {
	t.Helper()
	inspector := asynq.NewInspector(opt)
	t.Cleanup(func() { _ = inspector.Close() })
	return inspector
}

// unreachableClient returns an asynq client for a loopback port where
// nothing listens.
func unreachableClient(t *testing.T) *asynq.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	opt, err := asynq.ParseRedisURI("redis://" + addr + "/0")
	require.NoError(t, err)
	return newClient(t, opt)
}

// countingQueue passes every enqueue to a real asynq client and counts the
// calls per event ID.
type countingQueue struct {
	client *asynq.Client

	mu    sync.Mutex
	calls map[string]int
}

func newCountingQueue(client *asynq.Client) *countingQueue {
	return &countingQueue{client: client, calls: map[string]int{}}
}

func (q *countingQueue) EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	var payload tasks.EventFanoutPayload
	if err := tasks.Decode(task, &payload); err != nil {
		return nil, err
	}
	q.mu.Lock()
	q.calls[payload.EventID]++
	q.mu.Unlock()
	return q.client.EnqueueContext(ctx, task, opts...)
}

func (q *countingQueue) count(eventID string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.calls[eventID]
}

func appendEvents(t *testing.T, db *gorm.DB, n int, at time.Time) []models.Event {
	t.Helper()
	var events []models.Event
	for i := range n {
		evt, err := Append(db, at, TicketCreated, map[string]int{"n": i})
		require.NoError(t, err)
		events = append(events, evt)
	}
	return events
}

func loadEvent(t *testing.T, db *gorm.DB, id string) models.Event {
	t.Helper()
	var evt models.Event
	require.NoError(t, db.Take(&evt, "id = ?", id).Error)
	return evt
}

// requireQueued checks that the fan-out task of event id is in the events
// queue.
func requireQueued(t *testing.T, e env, id string) {
	t.Helper()
	info, err := e.inspector.GetTaskInfo(tasks.QueueEvents, id)
	require.NoError(t, err, "fan-out task of event %s", id)
	require.Equal(t, id, info.ID)
	require.Equal(t, tasks.TypeEventFanout, info.Type)

	var payload tasks.EventFanoutPayload
	require.NoError(t, tasks.Decode(asynq.NewTask(info.Type, info.Payload), &payload))
	require.Equal(t, id, payload.EventID)
}

func requireNotQueued(t *testing.T, e env, id string) {
	t.Helper()
	_, err := e.inspector.GetTaskInfo(tasks.QueueEvents, id)
	require.True(t, errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound),
		"fan-out task of event %s: want not found, got %v", id, err)
}

func TestDispatchQueueDownThenRelay(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	events := appendEvents(t, e.db, 2, time.Now())

	// go-redis, as asynq configures it, retries a refused connection for
	// about 1.7 s (measured on loopback), so only Dispatch's own deadline
	// makes it return within this Timeout.
	down := NewDispatcher(e.db, unreachableClient(t), testenv.Logger(t), nil)
	down.Timeout = 500 * time.Millisecond
	started := time.Now()
	down.Dispatch(ctx, events...)
	elapsed := time.Since(started)

	t.Run("dispatch returns in time", func(t *testing.T) {
		// The margin covers returning after the deadline fires.
		require.Less(t, elapsed, down.Timeout+250*time.Millisecond)
	})

	t.Run("events stay undispatched", func(t *testing.T) {
		for _, evt := range events {
			require.Nil(t, loadEvent(t, e.db, evt.ID).DispatchedAt, "event %s", evt.ID)
			requireNotQueued(t, e, evt.ID)
		}
	})

	relayAt := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	relay := NewDispatcher(e.db, e.queue, testenv.Logger(t), func() time.Time { return relayAt })
	relay.RelayMinAge = time.Millisecond
	n, err := relay.Relay(ctx)
	require.NoError(t, err)

	t.Run("relay sends them", func(t *testing.T) {
		require.GreaterOrEqual(t, n, len(events))
		for _, evt := range events {
			requireQueued(t, e, evt.ID)
			got := loadEvent(t, e.db, evt.ID).DispatchedAt
			require.NotNil(t, got, "event %s", evt.ID)
			require.True(t, got.Equal(relayAt), "dispatchedAt %s", got)
		}
	})
}

func TestRelaySkipsRecentEvents(t *testing.T) {
	e := setup(t)
	now := time.Now()
	events := appendEvents(t, e.db, 1, now)

	d := NewDispatcher(e.db, e.queue, testenv.Logger(t), func() time.Time { return now })
	d.RelayMinAge = time.Hour
	_, err := d.Relay(context.Background())
	require.NoError(t, err)

	require.Nil(t, loadEvent(t, e.db, events[0].ID).DispatchedAt)
	requireNotQueued(t, e, events[0].ID)
}

func TestRelayQueueDown(t *testing.T) {
	e := setup(t)
	events := appendEvents(t, e.db, 2, time.Now())

	d := NewDispatcher(e.db, unreachableClient(t), testenv.Logger(t), func() time.Time { return time.Now().Add(time.Hour) })
	d.RelayMinAge = time.Millisecond
	_, err := d.Relay(context.Background())
	require.Error(t, err)

	for _, evt := range events {
		require.Nil(t, loadEvent(t, e.db, evt.ID).DispatchedAt, "event %s", evt.ID)
	}
}

func TestRelayConcurrentSendsOnce(t *testing.T) {
	e := setup(t)
	events := appendEvents(t, e.db, 20, time.Now())

	queue := newCountingQueue(e.queue)
	later := func() time.Time { return time.Now().Add(time.Hour) }
	relays := make([]*Dispatcher, 2)
	for i := range relays {
		relays[i] = NewDispatcher(e.db, queue, testenv.Logger(t), later)
		relays[i].RelayMinAge = time.Millisecond
		relays[i].RelayBatch = 3
	}

	start := make(chan struct{})
	counts := make([]int, len(relays))
	errs := make([]error, len(relays))
	var wg sync.WaitGroup
	for i, d := range relays {
		wg.Go(func() {
			<-start
			counts[i], errs[i] = d.Relay(context.Background())
		})
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		require.NoError(t, err, "relay %d", i)
	}
	require.GreaterOrEqual(t, counts[0]+counts[1], len(events))
	for _, evt := range events {
		require.Equal(t, 1, queue.count(evt.ID), "enqueues of event %s", evt.ID)
		require.NotNil(t, loadEvent(t, e.db, evt.ID).DispatchedAt, "event %s", evt.ID)
		requireQueued(t, e, evt.ID)
	}
}

func TestAppendWritesEnvelope(t *testing.T) {
	t.Parallel()
	e := setup(t)
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.FixedZone("UTC+1", 3600))
	data := struct {
		TicketID string `json:"ticketId"`
		Title    string `json:"title"`
	}{"tkt_1", "Printer <on> fire"}

	evt, err := Append(e.db, at, TicketCreated, data)
	require.NoError(t, err)

	want := fmt.Sprintf(`{"id":%q,"event":"ticket.created","timestamp":"2026-03-04T04:06:07.123456789Z",`+
		`"data":{"ticketId":"tkt_1","title":"Printer \u003con\u003e fire"}}`, evt.ID)

	t.Run("returned event", func(t *testing.T) {
		require.True(t, models.ValidID(models.PrefixEvent, evt.ID), evt.ID)
		require.Equal(t, TicketCreated, evt.Type)
		require.Equal(t, want, evt.Body)
		require.Nil(t, evt.DispatchedAt)
	})

	t.Run("stored row", func(t *testing.T) {
		got := loadEvent(t, e.db, evt.ID)
		require.Equal(t, want, got.Body)
		require.Equal(t, TicketCreated, got.Type)
		require.WithinDuration(t, at, got.CreatedAt, time.Microsecond)
		require.Nil(t, got.DispatchedAt)
	})
}

func TestAppendRollsBackWithTx(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var evt models.Event
	rollback := errors.New("roll back")

	err := e.db.Transaction(func(tx *gorm.DB) error {
		var err error
		evt, err = Append(tx, time.Now(), TicketUpdated, map[string]string{"status": "pending"})
		require.NoError(t, err)
		return rollback
	})
	require.ErrorIs(t, err, rollback)

	err = e.db.Take(&models.Event{}, "id = ?", evt.ID).Error
	require.ErrorIs(t, err, gorm.ErrRecordNotFound)
}

func TestAppendRejectsUnencodableData(t *testing.T) {
	t.Parallel()
	e := setup(t)
	evt, err := Append(e.db, time.Now(), TicketCreated, map[string]any{"ch": make(chan int)})
	require.ErrorContains(t, err, "encode ticket.created event")
	require.Empty(t, evt.ID)
}

func TestDispatchEnqueuesFanout(t *testing.T) {
	t.Parallel()
	e := setup(t)
	events := appendEvents(t, e.db, 3, time.Now())
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	d := NewDispatcher(e.db, e.queue, testenv.Logger(t), func() time.Time { return at })

	d.Dispatch(context.Background(), events...)

	for _, evt := range events {
		requireQueued(t, e, evt.ID)
		got := loadEvent(t, e.db, evt.ID).DispatchedAt
		require.NotNil(t, got, "event %s", evt.ID)
		require.True(t, got.Equal(at), "dispatchedAt %s", got)
	}
}

func TestDispatchQueuedEventAgain(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	events := appendEvents(t, e.db, 2, time.Now())
	first, second := events[0], events[1]
	firstAt := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	secondAt := firstAt.Add(time.Hour)
	clock := []time.Time{firstAt, secondAt}
	var mu sync.Mutex
	nowFunc := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := clock[0]
		if len(clock) > 1 {
			clock = clock[1:]
		}
		return now
	}
	d := NewDispatcher(e.db, e.queue, testenv.Logger(t), nowFunc)

	d.Dispatch(ctx, first)
	requireQueued(t, e, first.ID)

	// Dispatch stops at the first event the queue rejects, so the second
	// event is sent only if the repeated first one counts as success.
	d.Dispatch(ctx, first, second)

	requireQueued(t, e, second.ID)
	got := loadEvent(t, e.db, second.ID).DispatchedAt
	require.NotNil(t, got)
	require.True(t, got.Equal(secondAt), "second dispatchedAt %s", got)

	got = loadEvent(t, e.db, first.ID).DispatchedAt
	require.NotNil(t, got)
	require.True(t, got.Equal(firstAt), "first dispatchedAt %s", got)
}

func TestDispatchNoEvents(t *testing.T) {
	t.Parallel()
	e := setup(t)
	queue := newCountingQueue(e.queue)
	d := NewDispatcher(e.db, queue, testenv.Logger(t), nil)

	d.Dispatch(context.Background())

	queue.mu.Lock()
	defer queue.mu.Unlock()
	require.Empty(t, queue.calls)
}
