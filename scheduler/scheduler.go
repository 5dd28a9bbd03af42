// Package scheduler configures the periodic tasks that asynq's scheduler
// enqueues. Every periodic task is idempotent and enqueued as unique for its
// interval, so two schedulers running at once do no work twice.
package scheduler

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outposthq/outpost/tasks"
	"github.com/outposthq/outpost/worker"
)

// Config sets the periodic tasks' intervals.
type Config struct {
	// RelayInterval is how often undispatched outbox events are handed to
	// the queue. It bounds the extra delay of an event whose enqueue failed
	// after its commit. Default 5s; asynq's scheduler runs at most once a
	// second.
	RelayInterval time.Duration

	// ReconcileInterval is how often the webhook reconciler looks for
	// fan-outs and deliveries that the queue lost. Default 1m.
	ReconcileInterval time.Duration

	// SLASweepInterval is how often the SLA sweep runs. It bounds the
	// delay of a breach whose delayed task was lost. Default 1m; at least
	// 1s.
	SLASweepInterval time.Duration

	// AnalyticsRefreshInterval is how often the rollup hours of changed
	// tickets are recomputed. It bounds how stale the analytics reports
	// are. Default 10s; at least 1s.
	AnalyticsRefreshInterval time.Duration

	// AnalyticsReconcileInterval is how often the recent rollup hours are
	// recomputed from the ticket tables. Default 10m; at least 1s.
	AnalyticsReconcileInterval time.Duration

	// CleanupInterval is how often expired sessions and idempotency keys
	// are deleted. Default 1h.
	CleanupInterval time.Duration
}

// New returns an asynq scheduler connected with redisOpt, with every
// periodic task registered.
func New(redisOpt asynq.RedisConnOpt, cfg Config, logger *slog.Logger) (*asynq.Scheduler, error) {
	if cfg.RelayInterval == 0 {
		cfg.RelayInterval = 5 * time.Second
	}
	if cfg.ReconcileInterval == 0 {
		cfg.ReconcileInterval = time.Minute
	}
	if cfg.RelayInterval < time.Second {
		return nil, fmt.Errorf("outbox relay interval %s is below the scheduler's resolution of 1s", cfg.RelayInterval)
	}
	if cfg.ReconcileInterval < time.Second {
		return nil, fmt.Errorf("webhook reconcile interval %s is below the scheduler's resolution of 1s", cfg.ReconcileInterval)
	}
	if cfg.SLASweepInterval == 0 {
		cfg.SLASweepInterval = time.Minute
	}
	if cfg.SLASweepInterval < time.Second {
		return nil, fmt.Errorf("SLA sweep interval %s is below the scheduler's resolution of 1s", cfg.SLASweepInterval)
	}
	if cfg.AnalyticsRefreshInterval == 0 {
		cfg.AnalyticsRefreshInterval = 10 * time.Second
	}
	if cfg.AnalyticsReconcileInterval == 0 {
		cfg.AnalyticsReconcileInterval = 10 * time.Minute
	}
	if cfg.AnalyticsRefreshInterval < time.Second || cfg.AnalyticsReconcileInterval < time.Second {
		return nil, fmt.Errorf("analytics intervals %s and %s must be at least the scheduler's resolution of 1s",
			cfg.AnalyticsRefreshInterval, cfg.AnalyticsReconcileInterval)
	}
	if cfg.CleanupInterval == 0 {
		cfg.CleanupInterval = time.Hour
	}
	if cfg.CleanupInterval < time.Second {
		return nil, fmt.Errorf("cleanup interval %s is below the scheduler's resolution of 1s", cfg.CleanupInterval)
	}
	s := asynq.NewScheduler(redisOpt, &asynq.SchedulerOpts{
		Logger: worker.NewAsynqLogger(logger),
		EnqueueErrorHandler: func(t *asynq.Task, _ []asynq.Option, err error) {
			if errors.Is(err, asynq.ErrDuplicateTask) {
				// Another scheduler enqueued this tick's task first.
				logger.Debug("periodic task already enqueued", slog.String("task_type", t.Type()))
				return
			}
			logger.Warn("enqueue periodic task",
				slog.String("task_type", t.Type()),
				slog.String("err", err.Error()))
		},
	})
	if _, err := s.Register(every(cfg.RelayInterval), tasks.NewOutboxRelay(cfg.RelayInterval)); err != nil {
		return nil, fmt.Errorf("register outbox relay: %w", err)
	}
	if _, err := s.Register(every(cfg.ReconcileInterval), tasks.NewWebhookReconcile(cfg.ReconcileInterval)); err != nil {
		return nil, fmt.Errorf("register webhook reconciler: %w", err)
	}
	if _, err := s.Register(every(cfg.SLASweepInterval), tasks.NewSLASweep(cfg.SLASweepInterval)); err != nil {
		return nil, fmt.Errorf("register SLA sweep: %w", err)
	}
	if _, err := s.Register(every(cfg.AnalyticsRefreshInterval), tasks.NewAnalyticsRefresh(cfg.AnalyticsRefreshInterval)); err != nil {
		return nil, fmt.Errorf("register analytics refresh: %w", err)
	}
	if _, err := s.Register(every(cfg.CleanupInterval), tasks.NewCleanup(cfg.CleanupInterval)); err != nil {
		return nil, fmt.Errorf("register cleanup: %w", err)
	}
	if _, err := s.Register(every(cfg.AnalyticsReconcileInterval), tasks.NewAnalyticsReconcile(cfg.AnalyticsReconcileInterval)); err != nil {
		return nil, fmt.Errorf("register analytics reconciliation: %w", err)
	}
	return s, nil
}

func every(d time.Duration) string { return fmt.Sprintf("@every %s", d) }
