package sla_test

// These tests run real asynq workers and schedulers on the real clock, and
// their sweeps mark every overdue row of the sla_detect database, so they
// use that database alone and do not run in parallel with each other.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/scheduler"
	"github.com/outposthq/outpost/sla"
	"github.com/outposthq/outpost/tasks"
	"github.com/outposthq/outpost/webhooks"
	"github.com/outposthq/outpost/worker"
)

// detectEnv is the sla_detect database with a helpdesk service whose clock
// runs behind the real one by lag, so that tickets are created with their
// due times a few seconds ahead.
type detectEnv struct {
	db    *gorm.DB
	opt   asynq.RedisConnOpt
	queue *asynq.Client
	svc   *helpdesk.Service
	lag   time.Duration
	tier  string
}

// setupDetect prepares a tier whose policy allows one calendar minute for
// each target of every priority, with a warning warnBefore minutes ahead
// (0 for none).
func setupDetect(t *testing.T, warnBefore int) *detectEnv {
	t.Helper()
	e := &detectEnv{db: testenv.DB(t, "sla_detect"), opt: redisOpt(t)}
	e.queue = asynq.NewClient(e.opt)
	t.Cleanup(func() { _ = e.queue.Close() })
	engine := e.engine(t)
	e.svc = helpdesk.NewService(e.db, e.dispatcher(t), func() time.Time { return time.Now().Add(-e.lag) }, helpdesk.WithTicketHook(engine))

	e.tier = uniqueTier(t)
	in := sla.NewPolicy{Name: e.tier, Tier: e.tier, FirstResponse: flat(models.ClockCalendar, 1), Resolution: flat(models.ClockCalendar, 1)}
	if warnBefore > 0 {
		in.WarnBeforeMinutes = &warnBefore
		in.FirstResponse = flat(models.ClockCalendar, 2)
		in.Resolution = flat(models.ClockCalendar, 30)
	}
	_, err := engine.CreatePolicy(context.Background(), in)
	require.NoError(t, err)
	return e
}

func (e *detectEnv) dispatcher(t *testing.T) *outbox.Dispatcher {
	return outbox.NewDispatcher(e.db, e.queue, testenv.Logger(t), nil)
}

// engine returns an engine on the real clock.
func (e *detectEnv) engine(t *testing.T) *sla.Engine {
	return sla.NewEngine(e.db, e.queue, e.dispatcher(t), testenv.Logger(t), nil)
}

// tickets creates n tickets that are one minute old dueIn from now, when a
// one-minute target falls due, and returns the first one's due time.
func (e *detectEnv) tickets(t *testing.T, n int, dueIn time.Duration) ([]models.Ticket, time.Time) {
	t.Helper()
	acc, err := e.svc.CreateAccount(context.Background(), helpdesk.NewAccount{Name: "Detect", Tier: e.tier})
	require.NoError(t, err)
	var first *time.Time
	out := make([]models.Ticket, n)
	for i := range out {
		e.lag = time.Minute - dueIn
		tk, err := e.svc.CreateTicket(context.Background(), helpdesk.NewTicket{
			Title: "Due soon", Priority: models.PriorityHigh, Source: models.SourceAPI, AccountID: acc.ID,
		}, "key_test")
		require.NoError(t, err)
		out[i] = tk
		if first == nil {
			due := tk.CreatedAt.Add(time.Minute)
			first = &due
		}
	}
	return out, *first
}

// startWorker runs a worker server with the SLA handlers until the test
// ends.
func (e *detectEnv) startWorker(t *testing.T) {
	t.Helper()
	logger := testenv.Logger(t)
	srv := worker.NewServer(e.opt, worker.Config{Concurrency: 4, ShutdownTimeout: 2 * time.Second}, logger)
	mux := worker.NewMux(worker.Handlers{
		Deliverer:  webhooks.NewDeliverer(webhooks.Deps{DB: e.db, Queue: e.queue, Logger: logger}, webhooks.Config{}),
		Dispatcher: e.dispatcher(t),
		SLA:        e.engine(t),
		Logger:     logger,
	})
	require.NoError(t, srv.Start(mux))
	t.Cleanup(srv.Shutdown)
}

// startScheduler runs a scheduler that sweeps every second until the test
// ends.
func (e *detectEnv) startScheduler(t *testing.T) {
	t.Helper()
	s, err := scheduler.New(e.opt, scheduler.Config{RelayInterval: time.Second, SLASweepInterval: time.Second}, testenv.Logger(t))
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(s.Shutdown)
}

// allBreached reports whether every ticket has a breach event for each
// target.
func (e *detectEnv) allBreached(t *testing.T, tickets []models.Ticket) bool {
	for _, tk := range tickets {
		if len(breaches(t, e.db, tk.ID)) < 2 {
			return false
		}
	}
	return true
}

func (e *detectEnv) requireOneBreachPerTarget(t *testing.T, tickets []models.Ticket) {
	t.Helper()
	for _, tk := range tickets {
		got := countByMetric(breaches(t, e.db, tk.ID))
		require.Equal(t, 1, got[models.MetricFirstResponse], "first response breaches of %s", tk.ID)
		require.Equal(t, 1, got[models.MetricResolution], "resolution breaches of %s", tk.ID)
	}
}

func TestTaskBreachesAtDueTime(t *testing.T) {
	e := setupDetect(t, 0)
	e.startWorker(t)
	tickets, due := e.tickets(t, 1, 2*time.Second)

	require.Eventually(t, func() bool { return e.allBreached(t, tickets) }, 15*time.Second, 50*time.Millisecond)
	e.requireOneBreachPerTarget(t, tickets)

	var created []time.Time
	require.NoError(t, e.db.Model(&models.Event{}).Where("type = ? AND body LIKE ?", outbox.TicketSLABreach, `%`+tickets[0].ID+`%`).
		Pluck("created_at", &created).Error)
	for _, c := range created {
		delay := c.Sub(due)
		t.Logf("breach event %s after the due time", delay)
		require.GreaterOrEqual(t, delay, time.Duration(0), "never before the due time")
		// No sweep runs here, so only the delayed task can have marked it.
		// It starts early and waits for the due time; the bound leaves room
		// for a slow machine.
		require.Less(t, delay, time.Second)
	}
}

func TestBreachOnceAcrossWorkersSweepsSchedulers(t *testing.T) {
	e := setupDetect(t, 0)
	e.startWorker(t)
	e.startWorker(t)
	e.startScheduler(t)
	e.startScheduler(t)
	tickets, _ := e.tickets(t, 5, 2*time.Second)

	// Two more sweeps run by hand, over and over, while the tasks and the
	// scheduled sweeps race them.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		engine := e.engine(t)
		wg.Go(func() {
			for ctx.Err() == nil {
				_, err := engine.Sweep(ctx)
				if ctx.Err() == nil {
					require.NoError(t, err)
				}
			}
		})
	}
	require.Eventually(t, func() bool { return e.allBreached(t, tickets) }, 20*time.Second, 50*time.Millisecond)
	cancel()
	wg.Wait()

	for range 2 {
		_, err := e.engine(t).Sweep(context.Background())
		require.NoError(t, err)
	}
	e.requireOneBreachPerTarget(t, tickets)
}

func TestBreachAfterWorkersReturn(t *testing.T) {
	e := setupDetect(t, 0)
	tickets, due := e.tickets(t, 2, time.Second)

	// The second ticket's tasks are lost as well, as after a Redis restart
	// without persistence, so only the sweep can find it.
	inspector := asynq.NewInspector(e.opt)
	t.Cleanup(func() { _ = inspector.Close() })
	lost := tickets[1]
	for _, m := range []models.Metric{models.MetricFirstResponse, models.MetricResolution} {
		id := tasks.SLATaskID(tasks.TypeSLABreach, lost.ID, string(m), lost.CreatedAt.Add(time.Minute))
		require.NoError(t, inspector.DeleteTask(tasks.QueueSLA, id))
	}

	// Every worker is down while the due time passes.
	require.Eventually(t, func() bool { return time.Now().After(due.Add(time.Second)) }, 10*time.Second, 20*time.Millisecond)
	for _, tk := range tickets {
		require.Empty(t, breaches(t, e.db, tk.ID))
	}

	e.startWorker(t)
	e.startScheduler(t)
	require.Eventually(t, func() bool { return e.allBreached(t, tickets) }, 20*time.Second, 50*time.Millisecond)
	_, err := e.engine(t).Sweep(context.Background())
	require.NoError(t, err)
	e.requireOneBreachPerTarget(t, tickets)
}

func TestWarningOnceBeforeDueTime(t *testing.T) {
	e := setupDetect(t, 1)
	e.startWorker(t)
	e.startScheduler(t)
	// The first-response target is two minutes with a warning one minute
	// before, so a ticket created 58 seconds ago warns in two seconds and
	// breaches a minute later.
	tickets, _ := e.tickets(t, 1, 2*time.Second)
	tk := tickets[0]

	require.Eventually(t, func() bool { return len(warnings(t, e.db, tk.ID)) > 0 }, 15*time.Second, 50*time.Millisecond)
	for range 2 {
		_, err := e.engine(t).Sweep(context.Background())
		require.NoError(t, err)
	}
	got := warnings(t, e.db, tk.ID)
	require.Len(t, got, 1)
	require.Equal(t, models.MetricFirstResponse, got[0].Metric)
	require.Equal(t, tk.CreatedAt.Add(time.Minute), got[0].WarnAt.UTC())
	require.Empty(t, breaches(t, e.db, tk.ID))
}
