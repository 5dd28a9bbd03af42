// Command slabench measures the SLA engine at scale. It recreates its own
// database, bulk-inserts open tickets with running SLA targets, and reports:
//
//   - how long one sweep takes when nothing is due, over every open ticket;
//   - how long one sweep takes to mark a backlog of overdue targets, as after
//     a worker outage;
//   - the delay between a due time and its ticket.sla_breach event, for
//     tickets created through the helpdesk service while other goroutines
//     keep writing tickets and messages.
//
// It drops and recreates the database it is given, so it refuses a name
// that does not contain "bench". Redis must be a server the benchmark may
// flush: it flushes the database index of -redis-url.
//
//	go run ./cmd/slabench -database-url postgres://root@127.0.0.1:5432/sla_bench?sslmode=disable \
//	    -redis-url redis://127.0.0.1:6391/10
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/outposthq/outpost/database"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/migrations"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/scheduler"
	"github.com/outposthq/outpost/sla"
	"github.com/outposthq/outpost/webhooks"
	"github.com/outposthq/outpost/worker"
)

type options struct {
	databaseURL string
	redisURL    string
	tickets     int
	backlog     int
	timed       int
	writers     int
	spread      time.Duration
	headStart   time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.databaseURL, "database-url", "postgres://root@127.0.0.1:5432/sla_bench?sslmode=disable", "PostgreSQL URL of the benchmark database, which is dropped and recreated; its name must contain \"bench\"")
	flag.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6391/10", "Redis URL whose database index the benchmark flushes and uses")
	flag.IntVar(&o.tickets, "tickets", 1_000_000, "open tickets to bulk-insert, each with two running SLA targets")
	flag.IntVar(&o.backlog, "backlog", 10_000, "targets made overdue for the backlog sweep")
	flag.IntVar(&o.timed, "timed", 500, "tickets created through the helpdesk service whose breach delay is measured; each has two targets")
	flag.IntVar(&o.writers, "writers", 4, "goroutines that create tickets and messages during the delay measurement")
	flag.DurationVar(&o.spread, "spread", 30*time.Second, "window over which the timed tickets' due times are spread")
	flag.DurationVar(&o.headStart, "head-start", 45*time.Second, "time from the start of the timed phase to the first due time; creating the timed tickets must take less")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(context.Background(), o, logger); err != nil {
		fmt.Fprintln(os.Stderr, "slabench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, logger *slog.Logger) error {
	name, err := databaseName(o.databaseURL)
	if err != nil {
		return err
	}
	if !strings.Contains(name, "bench") {
		return fmt.Errorf("database %q: the benchmark drops its database, so its name must contain \"bench\"", name)
	}
	redisOpt, err := asynq.ParseRedisURI(o.redisURL)
	if err != nil {
		return fmt.Errorf("-redis-url: %w", err)
	}
	rdb := redisOpt.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("flush Redis: %w", err)
	}

	step("recreate database %s and migrate", name)
	if err := database.Recreate(ctx, o.databaseURL); err != nil {
		return err
	}
	db, err := database.Open(ctx, o.databaseURL, logger)
	if err != nil {
		return err
	}
	defer database.Close(db)
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	if _, err := migrations.Up(ctx, sqlDB); err != nil {
		return err
	}

	if err := describeMachine(ctx, db); err != nil {
		return err
	}
	start := time.Now()
	if err := bulkInsert(ctx, db, o.tickets); err != nil {
		return err
	}
	insertTime := time.Since(start)
	report("bulk insert of %d open tickets and %d running targets: %s", o.tickets, 2*o.tickets, insertTime.Round(time.Second))

	queue := asynq.NewClient(redisOpt)
	defer queue.Close()
	dispatcher := outbox.NewDispatcher(db, queue, logger, nil)
	engine := sla.NewEngine(db, queue, dispatcher, logger, nil)

	if err := measureIdleSweep(ctx, engine); err != nil {
		return err
	}
	if err := measureBacklogSweep(ctx, db, engine, o.backlog); err != nil {
		return err
	}
	return measureBreachDelay(ctx, o, db, redisOpt, queue, dispatcher, logger)
}

// bulkInsert writes n open tickets, their creation history and two running
// SLA targets each, due between one hour and 30 days from now, with
// INSERT ... SELECT generate_series in chunks.
func bulkInsert(ctx context.Context, db *gorm.DB, n int) error {
	step("bulk insert %d tickets", n)
	const chunk = 100_000
	err := db.WithContext(ctx).Exec(`INSERT INTO accounts (id, name, tier, created_at, updated_at)
		SELECT 'acc_bench_' || g, 'Bench ' || g, CASE WHEN g % 10 = 0 THEN 'gold' ELSE '' END, now(), now()
		FROM generate_series(1, 1000) g`).Error
	if err != nil {
		return fmt.Errorf("insert accounts: %w", err)
	}
	for lo := 1; lo <= n; lo += chunk {
		hi := min(lo+chunk-1, n)
		err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			err := tx.Exec(`INSERT INTO tickets (id, title, description, status, priority, source, account_id, created_at, updated_at)
				SELECT 'tkt_bench_' || g, 'Bench ticket ' || g, 'Generated by slabench',
					'open', (ARRAY['low','medium','high','urgent'])[1 + g % 4], 'api',
					'acc_bench_' || (1 + g % 1000), now() - interval '1 hour', now() - interval '1 hour'
				FROM generate_series(?::int, ?::int) g`, lo, hi).Error
			if err != nil {
				return fmt.Errorf("insert tickets: %w", err)
			}
			err = tx.Exec(`INSERT INTO ticket_changes (id, ticket_id, actor, changes, created_at)
				SELECT 'chg_bench_' || g, 'tkt_bench_' || g, 'slabench', '{"status":{"from":null,"to":"open"}}', now() - interval '1 hour'
				FROM generate_series(?::int, ?::int) g`, lo, hi).Error
			if err != nil {
				return fmt.Errorf("insert ticket changes: %w", err)
			}
			err = tx.Exec(`INSERT INTO ticket_sla (ticket_id, metric, policy_id, target_minutes, state, due_at, running_since, updated_at)
				SELECT 'tkt_bench_' || g, m.metric, 'slp_01m90wf0e2fv0a0hd8q122cfj6', 60, 'running',
					now() + interval '1 hour' + (g % 43200) * interval '1 minute', now() - interval '1 hour', now()
				FROM generate_series(?::int, ?::int) g
				CROSS JOIN (VALUES ('first_response'), ('resolution')) AS m(metric)`, lo, hi).Error
			if err != nil {
				return fmt.Errorf("insert ticket SLA: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		step("  %d/%d", hi, n)
	}
	step("vacuum analyze")
	for _, table := range []string{"accounts", "tickets", "ticket_changes", "ticket_sla"} {
		if err := db.WithContext(ctx).Exec("VACUUM ANALYZE " + table).Error; err != nil {
			return fmt.Errorf("vacuum %s: %w", table, err)
		}
	}
	return nil
}

// measureIdleSweep times sweeps that find nothing due among every running
// target.
func measureIdleSweep(ctx context.Context, engine *sla.Engine) error {
	step("idle sweeps")
	var times []time.Duration
	for range 5 {
		start := time.Now()
		res, err := engine.Sweep(ctx)
		if err != nil {
			return err
		}
		if res.Breaches != 0 {
			return fmt.Errorf("idle sweep marked %d breaches; the bulk rows should all be due later", res.Breaches)
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	report("sweep with nothing due (5 runs): median %s, max %s", times[len(times)/2].Round(time.Microsecond), times[len(times)-1].Round(time.Microsecond))
	return nil
}

// measureBacklogSweep makes n targets overdue, as if every worker had been
// down past their due times, and times the sweep that marks them.
func measureBacklogSweep(ctx context.Context, db *gorm.DB, engine *sla.Engine, n int) error {
	step("backlog sweep of %d overdue targets", n)
	err := db.WithContext(ctx).Exec(`UPDATE ticket_sla SET due_at = now() - interval '1 second'
		WHERE (ticket_id, metric) IN (SELECT ticket_id, metric FROM ticket_sla WHERE state = 'running' ORDER BY due_at DESC LIMIT ?)`, n).Error
	if err != nil {
		return fmt.Errorf("make targets overdue: %w", err)
	}
	start := time.Now()
	res, err := engine.Sweep(ctx)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if res.Breaches != n {
		return fmt.Errorf("backlog sweep marked %d breaches, expected %d", res.Breaches, n)
	}
	report("sweep marking %d overdue targets, each with its outbox event: %s (%.0f breaches/s)",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	return nil
}

// measureBreachDelay runs a worker and a scheduler and creates timed tickets
// through the helpdesk service, with due times spread over the next
// o.spread. It reports how long after each due time its breach event was
// written, while writer goroutines keep creating tickets and messages.
func measureBreachDelay(ctx context.Context, o options, db *gorm.DB, redisOpt asynq.RedisConnOpt, queue *asynq.Client,
	dispatcher *outbox.Dispatcher, logger *slog.Logger) error {
	step("breach delay under load: %d timed tickets, %d writers", o.timed, o.writers)
	engine := sla.NewEngine(db, queue, dispatcher, logger, nil)
	srv := worker.NewServer(redisOpt, worker.Config{Concurrency: 10}, logger)
	mux := worker.NewMux(worker.Handlers{
		Deliverer:  webhooks.NewDeliverer(webhooks.Deps{DB: db, Queue: queue, Logger: logger}, webhooks.Config{}),
		Dispatcher: dispatcher,
		SLA:        engine,
		Logger:     logger,
	})
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer srv.Shutdown()
	sched, err := scheduler.New(redisOpt, scheduler.Config{}, logger)
	if err != nil {
		return err
	}
	if err := sched.Start(); err != nil {
		return fmt.Errorf("start scheduler: %w", err)
	}
	defer sched.Shutdown()

	// The timed tickets use a one-minute calendar target for both metrics
	// and are created with a clock that lags the real one, so each falls
	// due at its chosen instant a few seconds ahead.
	var lag atomic.Int64
	svc := helpdesk.NewService(db, dispatcher, func() time.Time { return time.Now().Add(-time.Duration(lag.Load())) }, helpdesk.WithTicketHook(engine))
	loadSvc := helpdesk.NewService(db, dispatcher, nil, helpdesk.WithTicketHook(engine))
	if _, err := engine.CreatePolicy(ctx, sla.NewPolicy{
		Name: "Bench", Tier: "bench",
		FirstResponse: models.SLATargets{Clock: models.ClockCalendar, Urgent: 1, High: 1, Medium: 1, Low: 1},
		Resolution:    models.SLATargets{Clock: models.ClockCalendar, Urgent: 1, High: 1, Medium: 1, Low: 1},
	}); err != nil {
		return err
	}
	acc, err := svc.CreateAccount(ctx, helpdesk.NewAccount{Name: "Bench timed", Tier: "bench"})
	if err != nil {
		return err
	}
	agent, err := svc.CreateAgent(ctx, helpdesk.NewAgent{Name: "Bench agent", Email: "bench@support.example"})
	if err != nil {
		return err
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	var writes atomic.Int64
	var wg sync.WaitGroup
	for w := range o.writers {
		wg.Go(func() { generateLoad(loadCtx, loadSvc, agent.ID, w, &writes, logger) })
	}
	loadStart := time.Now()

	first := time.Now().Add(o.headStart)
	ids := make([]string, 0, o.timed)
	for i := range o.timed {
		due := first.Add(time.Duration(i) * o.spread / time.Duration(o.timed))
		lag.Store(int64(time.Minute - time.Until(due)))
		tk, err := svc.CreateTicket(ctx, helpdesk.NewTicket{
			Title: "Timed", Priority: models.PriorityHigh, Source: models.SourceAPI, AccountID: acc.ID,
		}, "slabench")
		if err != nil {
			stopLoad()
			wg.Wait()
			return err
		}
		if time.Now().Before(due) {
			ids = append(ids, tk.ID)
		}
	}
	if skipped := o.timed - len(ids); skipped > 0 {
		report("%d timed tickets were created after their due time and breached in their own transaction; they are left out, so raise -head-start", skipped)
	}

	delays, err := waitForBreaches(ctx, db, ids, loadStart, first.Add(o.spread+2*time.Minute))
	stopLoad()
	wg.Wait()
	if err != nil {
		return err
	}
	loadSeconds := time.Since(loadStart).Seconds()
	slices.Sort(delays)
	pct := func(p float64) time.Duration {
		return delays[int(p*float64(len(delays)-1))].Round(10 * time.Microsecond)
	}
	report("background load: %d ticket and message writes in %.0f s (%.0f writes/s), each recomputing SLA state",
		writes.Load(), loadSeconds, float64(writes.Load())/loadSeconds)
	report("breach delay over %d targets (due time to ticket.sla_breach event): p50 %s, p95 %s, p99 %s, max %s",
		len(delays), pct(0.5), pct(0.95), pct(0.99), delays[len(delays)-1].Round(10*time.Microsecond))
	return nil
}

// generateLoad creates tickets and adds messages until ctx ends.
func generateLoad(ctx context.Context, svc *helpdesk.Service, agentID string, w int, writes *atomic.Int64, logger *slog.Logger) {
	account := fmt.Sprintf("acc_bench_%d", 1+w)
	for i := 0; ctx.Err() == nil; i++ {
		tk, err := svc.CreateTicket(ctx, helpdesk.NewTicket{
			Title: "Load", Priority: models.PriorityMedium, Source: models.SourceAPI, AccountID: account,
		}, "slabench")
		if err != nil {
			if ctx.Err() == nil {
				logger.Warn("load ticket failed", slog.String("err", err.Error()))
			}
			return
		}
		writes.Add(1)
		_, err = svc.AddMessage(ctx, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorAgent, AuthorID: agentID, Body: "On it."})
		if err != nil {
			if ctx.Err() == nil {
				logger.Warn("load message failed", slog.String("err", err.Error()))
			}
			return
		}
		writes.Add(1)
	}
}

// waitForBreaches polls until every target of tickets ids has its breach
// event, then returns each event's delay after its due time. It reads only
// the breach events written since since.
func waitForBreaches(ctx context.Context, db *gorm.DB, ids []string, since, deadline time.Time) ([]time.Duration, error) {
	want := 2 * len(ids)
	timed := map[string]bool{}
	for _, id := range ids {
		timed[id] = true
	}
	for {
		var events []models.Event
		err := db.WithContext(ctx).Select("body", "created_at").
			Where("type = ? AND created_at >= ?", outbox.TicketSLABreach, since).Find(&events).Error
		if err != nil {
			return nil, fmt.Errorf("read breach events: %w", err)
		}
		var delays []time.Duration
		for _, e := range events {
			var env struct{ Data sla.BreachData }
			if err := json.Unmarshal([]byte(e.Body), &env); err != nil {
				return nil, fmt.Errorf("decode breach event: %w", err)
			}
			if timed[env.Data.TicketID] {
				delays = append(delays, e.CreatedAt.Sub(env.Data.DueAt))
			}
		}
		if len(delays) >= want {
			return delays, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d breach events after the deadline", len(delays), want)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func databaseName(dsn string) (string, error) {
	i := strings.LastIndex(dsn, "/")
	if i < 0 {
		return "", fmt.Errorf("-database-url %q has no database name", dsn)
	}
	name, _, _ := strings.Cut(dsn[i+1:], "?")
	if name == "" {
		return "", fmt.Errorf("-database-url %q has no database name", dsn)
	}
	return name, nil
}

// step prints progress to standard error.
func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// report prints one result line to standard output.
func report(format string, args ...any) {
	fmt.Printf("- "+format+"\n", args...)
}

// describeMachine reports the CPU count, memory and PostgreSQL version that
// the results depend on.
func describeMachine(ctx context.Context, db *gorm.DB) error {
	var version string
	if err := db.WithContext(ctx).Raw("SHOW server_version").Scan(&version).Error; err != nil {
		return fmt.Errorf("read PostgreSQL version: %w", err)
	}
	memory := "unknown"
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				memory = strings.TrimSpace(v)
			}
		}
	}
	report("machine: %d CPUs, %s memory, PostgreSQL %s, %s", runtime.NumCPU(), memory, version, runtime.Version())
	return nil
}
