package webhooks

import (
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
)

// redisIndex is the Redis database index of this package's tests.
const redisIndex = 3

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

	queue := asynq.NewClient(redisOpt)
	t.Cleanup(func() { _ = queue.Close() })
	inspector := asynq.NewInspector(redisOpt)
	t.Cleanup(func() { _ = inspector.Close() })

	return env{db: testenv.DB(t, "webhooks"), queue: queue, inspector: inspector}
}

// stepClock is a clock that advances by step on every reading, so that
// durations measured by the code under test are exact.
type stepClock struct {
	mu   sync.Mutex
	next time.Time
	step time.Duration
}

func newStepClock(start time.Time, step time.Duration) *stepClock {
	return &stepClock{next: start, step: step}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.next
	c.next = c.next.Add(c.step)
	return now
}

// manualClock is a clock that stays at the time it was last set to.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func newManualClock(at time.Time) *manualClock {
	return &manualClock{now: at}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = at
}

// appendEvent writes an event of eventType to the outbox, dated at.
func appendEvent(t *testing.T, db *gorm.DB, at time.Time, eventType string) models.Event {
	t.Helper()
	data := map[string]any{"ticketId": models.NewID(models.PrefixTicket), "title": "Printer on fire"}
	evt, err := outbox.Append(db, at, eventType, data)
	require.NoError(t, err)
	return evt
}

// loadDelivery reads delivery id with its attempts in order.
func loadDelivery(t *testing.T, db *gorm.DB, id string) models.WebhookDelivery {
	t.Helper()
	var dlv models.WebhookDelivery
	err := db.Preload("Attempts", func(db *gorm.DB) *gorm.DB { return db.Order("number") }).
		Take(&dlv, "id = ?", id).Error
	require.NoError(t, err)
	return dlv
}

// insertDelivery stores a pending delivery of evt to endpoint epID, created
// at time at.
func insertDelivery(t *testing.T, e env, epID string, evt models.Event, at time.Time) models.WebhookDelivery {
	t.Helper()
	at = at.UTC().Truncate(time.Microsecond)
	dlv := models.WebhookDelivery{
		ID:         models.NewID(models.PrefixDelivery),
		EventID:    evt.ID,
		EndpointID: epID,
		EventType:  evt.Type,
		Status:     models.DeliveryPending,
		CreatedAt:  at,
		UpdatedAt:  at,
	}
	require.NoError(t, e.db.Create(&dlv).Error)
	return dlv
}

// newEventDelivery writes a ticket.created event and a pending delivery of
// it to endpoint epID, both dated now.
func newEventDelivery(t *testing.T, e env, epID string) (models.Event, models.WebhookDelivery) {
	t.Helper()
	evt := appendEvent(t, e.db, time.Now(), outbox.TicketCreated)
	return evt, insertDelivery(t, e, epID, evt, time.Now())
}

// privateEndpoints returns an Endpoints that accepts the loopback URLs of
// the tests' receivers.
func privateEndpoints(db *gorm.DB, nowFunc func() time.Time) *Endpoints {
	e := NewEndpoints(db, nowFunc)
	e.AllowPrivateNetworks = true
	return e
}
