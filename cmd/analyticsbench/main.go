// Command analyticsbench measures the analytics reports at scale. It
// recreates its own database, bulk-loads tickets spread over the past year
// with their history, replies and first-response SLA outcomes, builds the
// hourly rollups, and reports for each report endpoint the p50 and p99
// latency reading the rollups and computing the same answer straight from
// the ticket tables. It then runs a worker and a scheduler and measures how
// long a new ticket takes to show in the overview.
//
// It drops and recreates the database it is given, so it rejects a name
// that does not contain "bench", and it flushes the database index of
// -redis-url.
//
//	go run ./cmd/analyticsbench -database-url 'postgres://root@127.0.0.1:5432/analytics_bench?sslmode=disable' \
//	    -redis-url redis://127.0.0.1:6394/11
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
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/outposthq/outpost/analytics"
	"github.com/outposthq/outpost/database"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/migrations"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/scheduler"
	"github.com/outposthq/outpost/tasks"
	"github.com/outposthq/outpost/worker"
)

type options struct {
	databaseURL string
	redisURL    string
	tickets     int
	runs        int
	directRuns  int
	rangeDays   int
	changes     int
}

func main() {
	var o options
	flag.StringVar(&o.databaseURL, "database-url", "postgres://root@127.0.0.1:5432/analytics_bench?sslmode=disable", "PostgreSQL URL of the benchmark database, which is dropped and recreated; its name must contain \"bench\"")
	flag.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6394/11", "Redis URL whose database index the benchmark flushes and uses")
	flag.IntVar(&o.tickets, "tickets", 1_000_000, "tickets to bulk-insert, spread over the past 365 days")
	flag.IntVar(&o.runs, "runs", 30, "timed requests per report read from the rollups")
	flag.IntVar(&o.directRuns, "direct-runs", 5, "timed requests per report computed from the ticket tables")
	flag.IntVar(&o.rangeDays, "range-days", 30, "length of the reports' range in days, ending at the current hour")
	flag.IntVar(&o.changes, "changes", 10, "tickets created one at a time to measure how long the rollups take to show them")
	flag.Parse()

	// Bulk statements are slow by design, so gorm's slow-query warnings
	// are left out.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if err := run(context.Background(), o, logger); err != nil {
		fmt.Fprintln(os.Stderr, "analyticsbench:", err)
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

	now := time.Now().UTC()
	start := time.Now()
	if err := bulkInsert(ctx, db, o.tickets, now); err != nil {
		return err
	}
	report("bulk load of %d tickets: %s", o.tickets, time.Since(start).Round(time.Second))

	rollup := analytics.NewRollup(db, logger, nil)
	start = time.Now()
	to := now.Truncate(time.Hour).Add(time.Hour)
	for from := to.Add(-366 * 24 * time.Hour); from.Before(to); from = from.Add(30 * 24 * time.Hour) {
		step("rollup from %s", from.Format(time.DateOnly))
		end := from.Add(30 * 24 * time.Hour)
		if end.After(to) {
			end = to
		}
		if err := rollup.RecomputeRange(ctx, from, end); err != nil {
			return err
		}
	}
	// The bulk build covers every ticket, so the refresh starts from now
	// instead of reading the whole history again.
	if err := db.Exec("UPDATE analytics_state SET ticket_watermark = now()").Error; err != nil {
		return fmt.Errorf("set rollup watermark: %w", err)
	}
	var rows int64
	db.Raw("SELECT count(*) FROM analytics_hourly").Scan(&rows)
	report("rollup build over 366 days: %s, %d rows", time.Since(start).Round(time.Second), rows)
	if err := db.Exec("VACUUM ANALYZE analytics_hourly").Error; err != nil {
		return fmt.Errorf("vacuum rollup: %w", err)
	}

	if err := measureReports(ctx, o, db, now); err != nil {
		return err
	}
	return measureFreshness(ctx, o, db, redisOpt, rollup, logger)
}

// bulkInsert writes n tickets over the year before now with INSERT ...
// SELECT generate_series in chunks: four in five resolved, nine in ten
// assigned and answered by an agent, each with its creation and resolve
// history, a customer message and a first-response SLA outcome.
func bulkInsert(ctx context.Context, db *gorm.DB, n int, now time.Time) error {
	step("bulk insert %d tickets", n)
	db = db.WithContext(ctx)
	err := db.Exec(`INSERT INTO accounts (id, name, created_at, updated_at)
		SELECT 'acc_bench_' || g, 'Bench ' || g, now(), now() FROM generate_series(0, 999) g`).Error
	if err != nil {
		return fmt.Errorf("insert accounts: %w", err)
	}
	err = db.Exec(`INSERT INTO agents (id, name, email, created_at, updated_at)
		SELECT 'agt_bench_' || g, 'Agent ' || g, 'agent' || g || '@bench.example', now(), now() FROM generate_series(0, 49) g`).Error
	if err != nil {
		return fmt.Errorf("insert agents: %w", err)
	}
	// Ticket g is created at base + g × step; its reply comes (g % 53 + 1)
	// × 7 minutes later and its resolution (g % 97 + 1) × 17 minutes later.
	const chunk = 100_000
	base := now.Add(-365 * 24 * time.Hour)
	stepSeconds := 365 * 24 * 3600 / float64(n)
	created := `(?::timestamptz + g * ? * interval '1 second')`
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n) - 1
		stmts := []struct{ what, sql string }{
			{"tickets", `INSERT INTO tickets (id, title, status, priority, source, account_id, assignee_id, created_at, updated_at, resolved_at)
				SELECT 'tkt_bench_' || g, 'Bench ticket', CASE WHEN g % 5 = 0 THEN 'open' ELSE 'resolved' END,
					(ARRAY['low','medium','high','urgent'])[1 + g % 4],
					(ARRAY['web','email','discord','slack','teams','github','api','phone','chat'])[1 + g % 9],
					'acc_bench_' || (g % 1000), CASE WHEN g % 10 = 0 THEN NULL ELSE 'agt_bench_' || (g % 50) END,
					` + created + `, ` + created + `,
					CASE WHEN g % 5 = 0 THEN NULL ELSE ` + created + ` + (g % 97 + 1) * interval '17 minutes' END
				FROM generate_series(?::int, ?::int) g`},
			{"creation history", `INSERT INTO ticket_changes (id, ticket_id, changes, created_at)
				SELECT 'chg_bench_' || g, 'tkt_bench_' || g, '{"status":{"from":null,"to":"open"}}', ` + created + `
				FROM generate_series(?::int, ?::int) g`},
			{"resolve history", `INSERT INTO ticket_changes (id, ticket_id, changes, created_at)
				SELECT 'chg_bench_r' || g, 'tkt_bench_' || g, '{"status":{"from":"open","to":"resolved"}}',
					` + created + ` + (g % 97 + 1) * interval '17 minutes'
				FROM generate_series(?::int, ?::int) g WHERE g % 5 <> 0`},
			{"customer messages", `INSERT INTO messages (id, ticket_id, author_type, body, created_at)
				SELECT 'msg_bench_c' || g, 'tkt_bench_' || g, 'customer', 'Help', ` + created + `
				FROM generate_series(?::int, ?::int) g`},
			{"agent replies", `INSERT INTO messages (id, ticket_id, author_type, author_id, body, created_at)
				SELECT 'msg_bench_a' || g, 'tkt_bench_' || g, 'agent', 'agt_bench_' || (g % 50), 'Hello',
					` + created + ` + (g % 53 + 1) * interval '7 minutes'
				FROM generate_series(?::int, ?::int) g WHERE g % 10 <> 0`},
			{"SLA outcomes", `INSERT INTO ticket_sla (ticket_id, metric, policy_id, target_minutes, state, achieved_at, breached_at, updated_at)
				SELECT 'tkt_bench_' || g, 'first_response', 'slp_01m90wf0e2fv0a0hd8q122cfj6', 60,
					CASE WHEN (g % 53 + 1) * 7 <= 60 THEN 'achieved' ELSE 'breached' END,
					CASE WHEN (g % 53 + 1) * 7 <= 60 THEN ` + created + ` + (g % 53 + 1) * interval '7 minutes' END,
					CASE WHEN (g % 53 + 1) * 7 > 60 THEN ` + created + ` + interval '60 minutes' END, now()
				FROM generate_series(?::int, ?::int) g WHERE g % 10 <> 0`},
		}
		err := db.Transaction(func(tx *gorm.DB) error {
			for _, s := range stmts {
				args := []any{}
				for range strings.Count(s.sql, created) {
					args = append(args, base, stepSeconds)
				}
				args = append(args, lo, hi)
				if err := tx.Exec(s.sql, args...).Error; err != nil {
					return fmt.Errorf("insert %s: %w", s.what, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		step("  %d/%d", hi+1, n)
	}
	step("vacuum analyze")
	for _, table := range []string{"accounts", "agents", "tickets", "ticket_changes", "messages", "ticket_sla"} {
		if err := db.Exec("VACUUM ANALYZE " + table).Error; err != nil {
			return fmt.Errorf("vacuum %s: %w", table, err)
		}
	}
	return nil
}

// measureReports times each report over the last rangeDays days, from the
// rollups and from the ticket tables, and checks that both give the same
// totals.
func measureReports(ctx context.Context, o options, db *gorm.DB, now time.Time) error {
	to := now.Truncate(time.Hour)
	from := to.Add(-time.Duration(o.rangeDays) * 24 * time.Hour)
	loc, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		return err
	}
	rollup := analytics.NewReports(db)
	direct := analytics.NewReports(db)
	direct.Direct = true
	reports := []struct {
		name string
		call func(r *analytics.Reports) (any, error)
	}{
		{"overview", func(r *analytics.Reports) (any, error) { return r.Overview(ctx, from, to, analytics.Filter{}) }},
		{"sla", func(r *analytics.Reports) (any, error) { return r.SLA(ctx, from, to, analytics.Filter{}) }},
		{"volume (day, America/Los_Angeles)", func(r *analytics.Reports) (any, error) {
			return r.Volume(ctx, from, to, loc, "day", "", analytics.Filter{})
		}},
		{"agents", func(r *analytics.Reports) (any, error) { return r.Agents(ctx, from, to, analytics.Filter{}) }},
	}
	fmt.Printf("\nreports over %d days (%s to %s):\n\n", o.rangeDays, from.Format(time.DateOnly), to.Format(time.DateOnly))
	fmt.Println("| report | rollup p50 | rollup p99 | direct p50 | direct p99 | direct / rollup (p50) |")
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	for _, rep := range reports {
		step("time %s", rep.name)
		fast, fastAnswer, err := timeRuns(o.runs, func() (any, error) { return rep.call(rollup) })
		if err != nil {
			return err
		}
		slow, slowAnswer, err := timeRuns(o.directRuns, func() (any, error) { return rep.call(direct) })
		if err != nil {
			return err
		}
		fastJSON, _ := json.Marshal(fastAnswer)
		slowJSON, _ := json.Marshal(slowAnswer)
		if string(fastJSON) != string(slowJSON) {
			return fmt.Errorf("%s: the rollup and the ticket tables give different results", rep.name)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %.0f |\n", rep.name,
			pct(fast, 50), pct(fast, 99), pct(slow, 50), pct(slow, 99),
			float64(pct(slow, 50))/float64(pct(fast, 50)))
	}
	fmt.Println()
	return nil
}

func timeRuns(n int, call func() (any, error)) ([]time.Duration, any, error) {
	var times []time.Duration
	var answer any
	for range n {
		start := time.Now()
		a, err := call()
		if err != nil {
			return nil, nil, err
		}
		times = append(times, time.Since(start))
		answer = a
	}
	slices.Sort(times)
	return times, answer, nil
}

// pct returns the nearest-rank percentile p of sorted durations.
func pct(sorted []time.Duration, p int) time.Duration {
	i := (p*len(sorted)+99)/100 - 1
	return sorted[max(i, 0)].Round(100 * time.Microsecond)
}

// measureFreshness runs a worker and a scheduler with a 1 s refresh
// interval, creates tickets through the helpdesk service one at a time and
// measures from each commit until the overview counts it.
func measureFreshness(ctx context.Context, o options, db *gorm.DB, redisOpt asynq.RedisConnOpt, rollup *analytics.Rollup, logger *slog.Logger) error {
	step("freshness")
	srv := worker.NewServer(redisOpt, worker.Config{Concurrency: 4}, logger)
	// Only the refresh runs: the tickets' outbox events have no webhook
	// endpoints to reach, so their fan-out tasks wait in the queue.
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeAnalyticsRefresh, func(ctx context.Context, _ *asynq.Task) error {
		_, err := rollup.Refresh(ctx)
		return err
	})
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer srv.Shutdown()
	sched, err := scheduler.New(redisOpt, scheduler.Config{AnalyticsRefreshInterval: time.Second}, logger)
	if err != nil {
		return err
	}
	if err := sched.Start(); err != nil {
		return fmt.Errorf("start scheduler: %w", err)
	}
	defer sched.Shutdown()

	queue := asynq.NewClient(redisOpt)
	defer queue.Close()
	svc := helpdesk.NewService(db, outbox.NewDispatcher(db, queue, logger, nil), nil)
	reports := analytics.NewReports(db)
	filter := analytics.Filter{AccountID: "acc_bench_0"}
	var delays []time.Duration
	for range o.changes {
		hour := time.Now().UTC().Truncate(time.Hour)
		before, err := reports.Overview(ctx, hour, hour.Add(time.Hour), filter)
		if err != nil {
			return err
		}
		if _, err := svc.CreateTicket(ctx, helpdesk.NewTicket{Title: "fresh", Priority: models.PriorityLow,
			Source: models.SourceWeb, AccountID: "acc_bench_0"}, "analyticsbench"); err != nil {
			return err
		}
		committed := time.Now()
		for {
			after, err := reports.Overview(ctx, hour, hour.Add(time.Hour), filter)
			if err != nil {
				return err
			}
			if after.Created > before.Created {
				break
			}
			if time.Since(committed) > time.Minute {
				return fmt.Errorf("a new ticket did not show in the overview within a minute")
			}
			time.Sleep(20 * time.Millisecond)
		}
		delays = append(delays, time.Since(committed))
	}
	slices.Sort(delays)
	report("commit to visible in the overview, %d tickets, refresh every 1s: p50 %s, max %s",
		len(delays), pct(delays, 50), delays[len(delays)-1].Round(time.Millisecond))
	return nil
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
