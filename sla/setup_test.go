package sla_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/sla"
)

// redisIndex is this package's Redis database index.
const redisIndex = 8

var (
	redisOnce sync.Once
	redisURL  string
)

// redisOpt returns the connection to this package's Redis index, which the
// first call in the test binary flushes.
func redisOpt(t *testing.T) asynq.RedisConnOpt {
	t.Helper()
	redisOnce.Do(func() { redisURL = testenv.RedisURL(t, redisIndex) })
	opt, err := asynq.ParseRedisURI(redisURL)
	require.NoError(t, err)
	return opt
}

// recorder collects the events dispatched after each commit.
type recorder struct {
	mu     sync.Mutex
	events []models.Event
}

func (r *recorder) Dispatch(_ context.Context, events ...models.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, events...)
}

// clock is a settable clock shared by the helpdesk service and the engine.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fixture is a helpdesk service with the SLA engine as its hook, both on
// one settable clock.
type fixture struct {
	db     *gorm.DB
	engine *sla.Engine
	svc    *helpdesk.Service
	events *recorder
	clock  *clock
	queue  *asynq.Client
}

// monday is the start time of most tests: Monday 2030-06-03 12:00 UTC, in
// the future, so that no real-time sweep in another test touches it.
var monday = time.Date(2030, 6, 3, 12, 0, 0, 0, time.UTC)

func setup(t *testing.T, dbName string, start time.Time) *fixture {
	t.Helper()
	f := &fixture{
		db:     testenv.DB(t, dbName),
		events: &recorder{},
		clock:  &clock{now: start},
		queue:  asynq.NewClient(redisOpt(t)),
	}
	t.Cleanup(func() { _ = f.queue.Close() })
	f.engine = sla.NewEngine(f.db, f.queue, f.events, testenv.Logger(t), f.clock.Now)
	f.svc = helpdesk.NewService(f.db, f.events, f.clock.Now, helpdesk.WithTicketHook(f.engine))
	return f
}

func (f *fixture) account(t *testing.T, tier string) models.Account {
	t.Helper()
	acc, err := f.svc.CreateAccount(context.Background(), helpdesk.NewAccount{Name: "Acme", Tier: tier})
	require.NoError(t, err)
	return acc
}

func (f *fixture) ticket(t *testing.T, accountID string, priority models.Priority) models.Ticket {
	t.Helper()
	tk, err := f.svc.CreateTicket(context.Background(), helpdesk.NewTicket{
		Title: "Export fails", Priority: priority, Source: models.SourceEmail, AccountID: accountID,
	}, "key_test")
	require.NoError(t, err)
	return tk
}

func (f *fixture) update(t *testing.T, id string, patch helpdesk.TicketPatch) {
	t.Helper()
	_, err := f.svc.UpdateTicket(context.Background(), id, patch, "key_test")
	require.NoError(t, err)
}

func (f *fixture) setStatus(t *testing.T, id string, status models.Status) {
	t.Helper()
	f.update(t, id, helpdesk.TicketPatch{Status: outpost.Value(status)})
}

func (f *fixture) message(t *testing.T, ticketID string, m helpdesk.NewMessage) {
	t.Helper()
	if m.Body == "" {
		m.Body = "Looking into it."
	}
	_, err := f.svc.AddMessage(context.Background(), ticketID, m)
	require.NoError(t, err)
}

func (f *fixture) agent(t *testing.T) models.Agent {
	t.Helper()
	a, err := f.svc.CreateAgent(context.Background(), helpdesk.NewAgent{
		Name: "Dana", Email: models.NewID("x") + "@support.example",
	})
	require.NoError(t, err)
	return a
}

// policy creates the policy in.
func (f *fixture) policy(t *testing.T, in sla.NewPolicy) models.SLAPolicy {
	t.Helper()
	p, err := f.engine.CreatePolicy(context.Background(), in)
	require.NoError(t, err)
	return p
}

// flat returns targets of minutes for every priority, counted by clock.
func flat(clock models.Clock, minutes int) models.SLATargets {
	return models.SLATargets{Clock: clock, Urgent: minutes, High: minutes, Medium: minutes, Low: minutes}
}

// rows returns the stored SLA rows of ticket id by metric.
func (f *fixture) rows(t *testing.T, id string) map[models.Metric]models.TicketSLA {
	t.Helper()
	var rows []models.TicketSLA
	require.NoError(t, f.db.Where("ticket_id = ?", id).Find(&rows).Error)
	out := map[models.Metric]models.TicketSLA{}
	for _, r := range rows {
		out[r.Metric] = r
	}
	return out
}

// view returns the API view of ticket id's SLA state.
func (f *fixture) view(t *testing.T, id string) *sla.TicketSLA {
	t.Helper()
	states, err := f.engine.TicketSLAs(context.Background(), id)
	require.NoError(t, err)
	require.Contains(t, states, id)
	return states[id]
}

// breaches returns the stored ticket.sla_breach events of ticket id.
func breaches(t *testing.T, db *gorm.DB, id string) []sla.BreachData {
	t.Helper()
	var out []sla.BreachData
	for _, body := range eventBodies(t, db, outbox.TicketSLABreach, id) {
		var env struct{ Data sla.BreachData }
		require.NoError(t, json.Unmarshal([]byte(body), &env))
		out = append(out, env.Data)
	}
	return out
}

// warnings returns the stored ticket.sla_warning events of ticket id.
func warnings(t *testing.T, db *gorm.DB, id string) []sla.WarningData {
	t.Helper()
	var out []sla.WarningData
	for _, body := range eventBodies(t, db, outbox.TicketSLAWarning, id) {
		var env struct{ Data sla.WarningData }
		require.NoError(t, json.Unmarshal([]byte(body), &env))
		out = append(out, env.Data)
	}
	return out
}

func eventBodies(t *testing.T, db *gorm.DB, eventType, ticketID string) []string {
	t.Helper()
	var bodies []string
	err := db.Model(&models.Event{}).Where("type = ? AND body LIKE ?", eventType, `%"ticketId":"`+ticketID+`"%`).
		Order("created_at, id").Pluck("body", &bodies).Error
	require.NoError(t, err)
	return bodies
}

// countByMetric counts breach events per metric.
func countByMetric(events []sla.BreachData) map[models.Metric]int {
	out := map[models.Metric]int{}
	for _, e := range events {
		out[e.Metric]++
	}
	return out
}

// uniqueTier returns a tier name no other test uses.
func uniqueTier(t *testing.T) string {
	return strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
}

func ptr[T any](v T) *T { return &v }
