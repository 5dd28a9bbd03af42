package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"github.com/outposthq/outpost/analytics"
	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/apikeys"
	"github.com/outposthq/outpost/audit"
	"github.com/outposthq/outpost/auth"
	"github.com/outposthq/outpost/database"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/idempotency"
	"github.com/outposthq/outpost/migrations"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/scheduler"
	"github.com/outposthq/outpost/sla"
	"github.com/outposthq/outpost/webhooks"
	"github.com/outposthq/outpost/worker"
)

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// app holds the connections that every role shares.
type app struct {
	cfg       Config
	logger    *slog.Logger
	db        *gorm.DB
	redisOpt  asynq.RedisConnOpt
	rdb       redis.UniversalClient
	queue     *asynq.Client
	inspector *asynq.Inspector
	registry  *prometheus.Registry
	metrics   *webhooks.Metrics
}

// openApp connects to PostgreSQL and prepares the Redis connections. It
// does not require Redis to be up: the API accepts writes without it.
func openApp(ctx context.Context, cfg Config, logger *slog.Logger) (*app, error) {
	redisOpt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("OUTPOST_REDIS_URL: %w", err)
	}
	db, err := database.Open(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return nil, err
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &app{
		cfg:       cfg,
		logger:    logger,
		db:        db,
		redisOpt:  redisOpt,
		rdb:       redisOpt.MakeRedisClient().(redis.UniversalClient),
		queue:     asynq.NewClient(redisOpt),
		inspector: asynq.NewInspector(redisOpt),
		registry:  registry,
		metrics:   webhooks.NewMetrics(registry),
	}, nil
}

func (a *app) close() {
	if err := a.inspector.Close(); err != nil {
		a.logger.Warn("close queue inspector", slog.String("err", err.Error()))
	}
	if err := a.queue.Close(); err != nil {
		a.logger.Warn("close queue client", slog.String("err", err.Error()))
	}
	if err := a.rdb.Close(); err != nil {
		a.logger.Warn("close redis client", slog.String("err", err.Error()))
	}
	if err := database.Close(a.db); err != nil {
		a.logger.Warn("close database", slog.String("err", err.Error()))
	}
}

func (a *app) deliverer() *webhooks.Deliverer {
	return webhooks.NewDeliverer(webhooks.Deps{
		DB:      a.db,
		Queue:   a.queue,
		Redis:   a.rdb,
		Tasks:   a.inspector,
		Metrics: a.metrics,
		Logger:  a.logger,
	}, a.cfg.Webhooks)
}

func (a *app) dispatcher() *outbox.Dispatcher {
	d := outbox.NewDispatcher(a.db, a.queue, a.logger, nil)
	d.Timeout = a.cfg.DispatchTimeout
	return d
}

// slaEngine returns the SLA engine. Its sweep arms the tasks of due times
// up to two sweep intervals ahead, so a task lost before its due time is
// armed again in time.
func (a *app) slaEngine() *sla.Engine {
	e := sla.NewEngine(a.db, a.queue, a.dispatcher(), a.logger, nil)
	e.ArmTimeout = a.cfg.DispatchTimeout
	e.ArmAhead = 2 * a.cfg.SLASweepInterval
	return e
}

// runRoles runs role ("api", "worker", "scheduler" or "dev" for all three)
// until ctx is canceled or a role fails, then shuts every role down. The API
// serves on ln, or on a new listener on cfg.HTTPAddr when ln is nil.
func runRoles(ctx context.Context, cfg Config, logger *slog.Logger, role string, ln net.Listener) error {
	logger.Info("starting", append([]any{slog.String("role", role)}, cfg.logAttrs()...)...)
	if role == "dev" {
		if err := database.EnsureExists(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	}
	a, err := openApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.prepareSchema(ctx, role == "dev"); err != nil {
		return err
	}

	g, ctx := errgroup.WithContext(ctx)
	if a.cfg.MetricsAddr != "" && role != "api" {
		g.Go(func() error { return a.serveMetrics(ctx) })
	}
	if role == "api" || role == "dev" {
		if ln == nil {
			if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
				return fmt.Errorf("listen on OUTPOST_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
			}
		}
		g.Go(func() error { return a.serveAPI(ctx, ln) })
	}
	if role == "worker" || role == "dev" {
		g.Go(func() error { return a.runWorker(ctx) })
	}
	if role == "scheduler" || role == "dev" {
		g.Go(func() error { return a.runScheduler(ctx) })
	}
	err = g.Wait()
	logger.Info("stopped", slog.String("role", role))
	return err
}

// prepareSchema applies pending migrations when migrate is true, and
// otherwise refuses to run on a schema that is behind the binary.
func (a *app) prepareSchema(ctx context.Context, migrate bool) error {
	sqlDB, err := a.db.DB()
	if err != nil {
		return err
	}
	if migrate {
		applied, err := migrations.Up(ctx, sqlDB)
		if len(applied) > 0 {
			a.logger.Info("migrations applied", slog.Int("count", len(applied)), slog.Any("migrations", applied))
		}
		return err
	}
	p, err := migrations.Provider(sqlDB)
	if err != nil {
		return err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("check database migrations: %w", err)
	}
	if pending {
		return errors.New("the database schema is behind this binary; run `outpost migrate up` first")
	}
	return nil
}

func (a *app) serveAPI(ctx context.Context, ln net.Listener) error {
	engine := a.slaEngine()
	endpoints := webhooks.NewEndpoints(a.db, nil)
	endpoints.AllowPrivateNetworks = a.cfg.Webhooks.AllowPrivateNetworks
	var rateLimit api.RateLimit
	if a.cfg.RateLimitPerMinute > 0 {
		rateLimit = api.RateLimit{
			Limiter:   redis_rate.NewLimiter(a.rdb),
			PerMinute: a.cfg.RateLimitPerMinute,
			Burst:     a.cfg.RateLimitBurst,
		}
	}
	deps := api.Deps{
		Helpdesk:        helpdesk.NewService(a.db, a.dispatcher(), nil, helpdesk.WithTicketHook(engine)),
		Endpoints:       endpoints,
		Deliveries:      a.deliverer(),
		Keys:            apikeys.New(a.db, nil),
		Sessions:        auth.NewSessions(a.db, a.cfg.Sessions, nil),
		Throttle:        auth.NewThrottle(redis_rate.NewLimiter(a.rdb)),
		InsecureCookies: !a.cfg.SecureCookies,
		TrustedProxies:  a.cfg.TrustedProxies,
		TrustedOrigins:  a.cfg.TrustedOrigins,
		Idempotency:     idempotency.New(a.db, idempotency.DefaultTTL, nil),
		RateLimit:       rateLimit,
		Audit:           audit.New(a.db, nil),
		SLA:             engine,
		Analytics:       analytics.NewReports(a.db),
		Ready:           a.ready,
		Logger:          a.logger,
	}
	if a.cfg.Monitoring {
		monitor := asynqmon.New(asynqmon.Options{RootPath: api.MonitoringPath, RedisConnOpt: a.redisOpt})
		defer func() {
			if err := monitor.Close(); err != nil {
				a.logger.Warn("close queue monitor", slog.String("err", err.Error()))
			}
		}()
		deps.Monitoring = monitor
	}
	handler, err := api.NewHandler(deps)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", handler)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	return a.serveHTTP(ctx, ln, mux, "api")
}

// serveMetrics serves /metrics on cfg.MetricsAddr for the worker and
// scheduler roles.
func (a *app) serveMetrics(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen on OUTPOST_METRICS_ADDR %s: %w", a.cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	return a.serveHTTP(ctx, ln, mux, "metrics")
}

// serveHTTP serves handler on ln until ctx is canceled, then shuts the
// server down gracefully.
func (a *app) serveHTTP(ctx context.Context, ln net.Listener, handler http.Handler, name string) error {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.logger.Info("listening", slog.String("server", name), slog.String("addr", ln.Addr().String()))

	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", name, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down %s server: %w", name, err)
	}
	return nil
}

// ready reports whether PostgreSQL and Redis respond. Its errors name the
// unreachable store without connection details.
func (a *app) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	sqlDB, err := a.db.DB()
	if err != nil || sqlDB.PingContext(ctx) != nil {
		return errors.New("database unreachable")
	}
	if a.rdb.Ping(ctx).Err() != nil {
		return errors.New("redis unreachable")
	}
	return nil
}

func (a *app) runWorker(ctx context.Context) error {
	mux := worker.NewMux(worker.Handlers{
		Deliverer:   a.deliverer(),
		Dispatcher:  a.dispatcher(),
		SLA:         a.slaEngine(),
		Analytics:   analytics.NewRollup(a.db, a.logger, nil),
		Sessions:    auth.NewSessions(a.db, a.cfg.Sessions, nil),
		Idempotency: idempotency.New(a.db, idempotency.DefaultTTL, nil),
		Logger:      a.logger,
	})
	srv := worker.NewServer(a.redisOpt, worker.Config{
		Concurrency:     a.cfg.WorkerConcurrency,
		PollInterval:    a.cfg.WorkerPollInterval,
		ShutdownTimeout: a.cfg.ShutdownTimeout,
	}, a.logger)
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	<-ctx.Done()
	srv.Shutdown()
	return nil
}

func (a *app) runScheduler(ctx context.Context) error {
	s, err := scheduler.New(a.redisOpt, scheduler.Config{
		RelayInterval:     a.cfg.OutboxRelayInterval,
		ReconcileInterval: a.cfg.ReconcileInterval,
		SLASweepInterval:  a.cfg.SLASweepInterval,

		AnalyticsRefreshInterval:   a.cfg.AnalyticsRefreshInterval,
		AnalyticsReconcileInterval: a.cfg.AnalyticsReconcileInterval,
	}, a.logger)
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return fmt.Errorf("start scheduler: %w", err)
	}
	<-ctx.Done()
	s.Shutdown()
	return nil
}
