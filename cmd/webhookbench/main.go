// Command webhookbench measures webhook delivery on one machine, in one run:
//
//  1. the raw asynq rate: no-op tasks per second through a server with the
//     worker's concurrency;
//  2. Outpost's delivery rate: signed deliveries per second to a local
//     receiver that returns 200 at once;
//  3. end-to-end latency, from an event's commit to its arrival at the
//     receiver, at a fixed moderate rate;
//  4. the same latency with a second endpoint added that never answers.
//
// It prints each figure and the ratios. It creates and drops its own
// PostgreSQL database (outpost_bench_webhooks) and uses Redis database 15,
// which it flushes.
//
//	go run ./cmd/webhookbench -deliveries 5000 -rate 50 -duration 20s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
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
	"github.com/outposthq/outpost/webhooks"
	"github.com/outposthq/outpost/worker"
)

type options struct {
	databaseURL string
	redisAddr   string
	concurrency int
	deliveries  int
	rate        int
	duration    time.Duration
	hangTimeout time.Duration
	maxInFlight int
}

func main() {
	var o options
	flag.StringVar(&o.databaseURL, "database-url", "postgres://root@127.0.0.1:5432/outpost_bench_webhooks?sslmode=disable", "PostgreSQL URL of the benchmark database; it is dropped and recreated")
	flag.StringVar(&o.redisAddr, "redis-addr", "127.0.0.1:6379", "Redis host:port; database 15 is flushed")
	flag.IntVar(&o.concurrency, "concurrency", 10, "worker concurrency, as OUTPOST_WORKER_CONCURRENCY")
	flag.IntVar(&o.deliveries, "deliveries", 5000, "tasks and deliveries for the throughput phases")
	flag.IntVar(&o.rate, "rate", 50, "events per second in the latency phases")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "length of each latency phase")
	flag.DurationVar(&o.hangTimeout, "hang-timeout", 15*time.Second, "delivery timeout, which the hanging endpoint always reaches")
	flag.IntVar(&o.maxInFlight, "max-in-flight", 4, "attempts in flight per endpoint, as OUTPOST_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT")
	flag.Parse()

	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "webhookbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	redisOpt := asynq.RedisClientOpt{Addr: o.redisAddr, DB: 15}
	rdb := redis.NewClient(&redis.Options{Addr: o.redisAddr, DB: 15})
	defer rdb.Close()

	fmt.Printf("machine: %d CPUs; worker concurrency %d; %d attempts in flight per endpoint; delivery timeout %s\n\n",
		numCPU(), o.concurrency, o.maxInFlight, o.hangTimeout)

	rawRate, err := rawAsynqRate(ctx, rdb, redisOpt, o)
	if err != nil {
		return err
	}
	fmt.Printf("1. raw asynq no-op rate:          %8.0f tasks/s (%d tasks)\n", rawRate, o.deliveries)

	db, err := freshDatabase(ctx, o.databaseURL, logger)
	if err != nil {
		return err
	}
	defer database.Close(db)

	b := &bench{db: db, rdb: rdb, redisOpt: redisOpt, logger: logger, o: o}
	deliveryRate, err := b.deliveryRate(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("2. Outpost delivery rate:         %8.0f deliveries/s (%d deliveries)\n", deliveryRate, o.deliveries)
	fmt.Printf("   delivery rate / raw asynq rate: %7.2f\n\n", deliveryRate/rawRate)

	alone, err := b.latency(ctx, false)
	if err != nil {
		return err
	}
	fmt.Printf("3. end-to-end latency at %d events/s for %s: %s\n", o.rate, o.duration, alone)
	withHang, err := b.latency(ctx, true)
	if err != nil {
		return err
	}
	fmt.Printf("4. same, plus one endpoint that never answers: %s\n", withHang)
	fmt.Printf("   healthy p99 with / without the hanging endpoint: %.2f\n", float64(withHang.p99)/float64(alone.p99))
	return nil
}

func rawAsynqRate(ctx context.Context, rdb *redis.Client, redisOpt asynq.RedisConnOpt, o options) (float64, error) {
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return 0, fmt.Errorf("flush Redis database 15: %w", err)
	}
	client := asynq.NewClient(redisOpt)
	defer client.Close()
	for i := range o.deliveries {
		if _, err := client.EnqueueContext(ctx, asynq.NewTask("bench:noop", []byte(fmt.Sprint(i)))); err != nil {
			return 0, fmt.Errorf("enqueue no-op task: %w", err)
		}
	}

	var done atomic.Int64
	finished := make(chan struct{})
	srv := asynq.NewServer(redisOpt, asynq.Config{
		Concurrency:       o.concurrency,
		TaskCheckInterval: 100 * time.Millisecond,
		Logger:            worker.NewAsynqLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	})
	start := time.Now()
	err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		if done.Add(1) == int64(o.deliveries) {
			close(finished)
		}
		return nil
	}))
	if err != nil {
		return 0, err
	}
	<-finished
	elapsed := time.Since(start)
	srv.Shutdown()
	return float64(o.deliveries) / elapsed.Seconds(), nil
}

func freshDatabase(ctx context.Context, dsn string, logger *slog.Logger) (*gorm.DB, error) {
	if err := database.Recreate(ctx, dsn); err != nil {
		return nil, err
	}
	db, err := database.Open(ctx, dsn, logger)
	if err != nil {
		return nil, err
	}
	sqlDB, _ := db.DB()
	if _, err := migrations.Up(ctx, sqlDB); err != nil {
		return nil, err
	}
	return db, nil
}

type bench struct {
	db       *gorm.DB
	rdb      *redis.Client
	redisOpt asynq.RedisConnOpt
	logger   *slog.Logger
	o        options
}

// startWorker starts a worker server and returns its stop function.
func (b *bench) startWorker(flush bool) (func(), error) {
	if flush {
		if err := b.rdb.FlushDB(context.Background()).Err(); err != nil {
			return nil, fmt.Errorf("flush Redis database 15: %w", err)
		}
	}
	queue := asynq.NewClient(b.redisOpt)
	deliverer := webhooks.NewDeliverer(webhooks.Deps{DB: b.db, Queue: queue, Redis: b.rdb, Logger: b.logger},
		webhooks.Config{AllowPrivateNetworks: true, Timeout: b.o.hangTimeout, MaxInFlightPerEndpoint: b.o.maxInFlight})
	dispatcher := outbox.NewDispatcher(b.db, queue, b.logger, nil)
	srv := worker.NewServer(b.redisOpt, worker.Config{Concurrency: b.o.concurrency}, b.logger)
	mux := worker.NewMux(worker.Handlers{Deliverer: deliverer, Dispatcher: dispatcher, Logger: b.logger})
	if err := srv.Start(mux); err != nil {
		return nil, err
	}
	return func() { srv.Shutdown(); queue.Close() }, nil
}

func (b *bench) endpoint(ctx context.Context, url string) (models.WebhookEndpoint, error) {
	endpoints := webhooks.NewEndpoints(b.db, nil)
	endpoints.AllowPrivateNetworks = true
	// Every earlier endpoint is disabled, so each phase measures only its
	// own receivers.
	if err := b.db.Model(&models.WebhookEndpoint{}).Where("enabled").Update("enabled", false).Error; err != nil {
		return models.WebhookEndpoint{}, err
	}
	return endpoints.Create(ctx, webhooks.NewEndpoint{URL: url, Events: []string{"*"}})
}

// deliveryRate writes the events first, then starts the worker and times
// how long it takes to deliver them all.
func (b *bench) deliveryRate(ctx context.Context) (float64, error) {
	var received atomic.Int64
	finished := make(chan struct{})
	n := int64(b.o.deliveries)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if received.Add(1) == n {
			close(finished)
		}
	}))
	defer recv.Close()
	if _, err := b.endpoint(ctx, recv.URL); err != nil {
		return 0, err
	}

	// The backlog of events is written and handed to the queue before the
	// worker starts, so the timing covers fan-out and delivery only.
	if err := b.rdb.FlushDB(ctx).Err(); err != nil {
		return 0, fmt.Errorf("flush Redis database 15: %w", err)
	}
	queue := asynq.NewClient(b.redisOpt)
	defer queue.Close()
	dispatcher := outbox.NewDispatcher(b.db, queue, b.logger, nil)
	for i := range b.o.deliveries {
		var evt models.Event
		err := b.db.Transaction(func(tx *gorm.DB) error {
			var err error
			evt, err = outbox.Append(tx, time.Now(), outbox.AccountCreated, map[string]any{"id": fmt.Sprintf("acc_bench_%d", i)})
			return err
		})
		if err != nil {
			return 0, err
		}
		dispatcher.Dispatch(ctx, evt)
	}

	start := time.Now()
	stop, err := b.startWorker(false)
	if err != nil {
		return 0, err
	}
	defer stop()
	select {
	case <-finished:
	case <-time.After(10 * time.Minute):
		return 0, fmt.Errorf("only %d of %d deliveries arrived in 10 minutes", received.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

type latencyResult struct {
	count         int
	p50, p99, max time.Duration
}

func (r latencyResult) String() string {
	return fmt.Sprintf("p50 %s, p99 %s, max %s over %d deliveries",
		r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.max.Round(time.Millisecond), r.count)
}

// latency creates accounts through the helpdesk service at the configured
// rate and measures, at a healthy receiver, the time from each event's
// commit timestamp to its arrival.
func (b *bench) latency(ctx context.Context, withHanging bool) (latencyResult, error) {
	var mu sync.Mutex
	var samples []time.Duration
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived := time.Now()
		var env struct {
			Timestamp time.Time `json:"timestamp"`
		}
		if err := json.NewDecoder(r.Body).Decode(&env); err == nil {
			mu.Lock()
			samples = append(samples, arrived.Sub(env.Timestamp))
			mu.Unlock()
		}
	}))
	defer recv.Close()
	if _, err := b.endpoint(ctx, recv.URL); err != nil {
		return latencyResult{}, err
	}
	if withHanging {
		release := make(chan struct{})
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer hang.Close()
		defer close(release)
		endpoints := webhooks.NewEndpoints(b.db, nil)
		endpoints.AllowPrivateNetworks = true
		if _, err := endpoints.Create(ctx, webhooks.NewEndpoint{URL: hang.URL, Events: []string{"*"}}); err != nil {
			return latencyResult{}, err
		}
	}

	stop, err := b.startWorker(true)
	if err != nil {
		return latencyResult{}, err
	}
	defer stop()
	queue := asynq.NewClient(b.redisOpt)
	defer queue.Close()
	svc := helpdesk.NewService(b.db, outbox.NewDispatcher(b.db, queue, b.logger, nil), nil)

	total := int(b.o.duration.Seconds() * float64(b.o.rate))
	tick := time.NewTicker(time.Second / time.Duration(b.o.rate))
	defer tick.Stop()
	for i := range total {
		<-tick.C
		if _, err := svc.CreateAccount(ctx, helpdesk.NewAccount{Name: fmt.Sprintf("Latency %d", i)}); err != nil {
			return latencyResult{}, err
		}
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(samples)
		mu.Unlock()
		if n >= total {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(samples) < total {
		return latencyResult{}, fmt.Errorf("only %d of %d deliveries arrived", len(samples), total)
	}
	slices.Sort(samples)
	return latencyResult{
		count: len(samples),
		p50:   samples[len(samples)/2],
		p99:   samples[len(samples)*99/100],
		max:   samples[len(samples)-1],
	}, nil
}

func numCPU() int { return runtime.NumCPU() }
