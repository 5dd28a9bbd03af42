// Package worker runs Outpost's background tasks: the asynq server, its mux
// and the task handlers, which call the domain packages.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outposthq/outpost/analytics"
	"github.com/outposthq/outpost/auth"
	"github.com/outposthq/outpost/idempotency"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/sla"
	"github.com/outposthq/outpost/tasks"
	"github.com/outposthq/outpost/webhooks"
)

// Config tunes the asynq server.
type Config struct {
	// Concurrency is the number of tasks run at once. Default 10.
	Concurrency int
	// ShutdownTimeout is how long running tasks may finish after a stop
	// request before they are abandoned and later retried. Default 20s.
	ShutdownTimeout time.Duration
	// PollInterval is how long the worker waits before it looks at empty
	// queues again, which bounds the pickup delay of a new task. Each
	// worker makes about one Redis call per interval while idle.
	// Default 100ms.
	PollInterval time.Duration
}

// Handlers holds the services the task handlers call.
type Handlers struct {
	Deliverer  *webhooks.Deliverer
	Dispatcher *outbox.Dispatcher
	// SLA runs the SLA detection tasks and the sweep; nil leaves those task
	// types without a handler.
	SLA *sla.Engine
	// Analytics runs the rollup refresh and reconciliation; nil leaves
	// those task types without a handler.
	Analytics *analytics.Rollup
	// Sessions and Idempotency have their expired rows deleted by the
	// cleanup task; when either is nil the task has no handler.
	Sessions    *auth.Sessions
	Idempotency *idempotency.Store
	Logger      *slog.Logger
}

// NewServer returns an asynq server connected with redisOpt that serves
// every queue in tasks.Queues.
func NewServer(redisOpt asynq.RedisConnOpt, cfg Config, logger *slog.Logger) *asynq.Server {
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 10
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 20 * time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	return asynq.NewServer(redisOpt, asynq.Config{
		Concurrency:       cfg.Concurrency,
		Queues:            tasks.Queues,
		TaskCheckInterval: cfg.PollInterval,
		// Retries and scheduled tasks move to their queue within a second
		// of their due time, instead of asynq's default of five seconds.
		DelayedTaskCheckInterval: time.Second,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		Logger:                   NewAsynqLogger(logger),
		// A delivery decides its own retry delay, from the schedule or the
		// receiver's Retry-After, and counts its attempts in PostgreSQL.
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			if d, ok := webhooks.RetryDelay(err); ok {
				return d
			}
			return asynq.DefaultRetryDelayFunc(n, err, t)
		},
		// A delivery deferred because its endpoint is at its in-flight
		// limit made no attempt, so it does not use up a retry.
		IsFailure: func(err error) bool { return !webhooks.IsBusy(err) },
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			if webhooks.IsBusy(err) {
				return
			}
			id, _ := asynq.GetTaskID(ctx)
			retried, _ := asynq.GetRetryCount(ctx)
			logger.WarnContext(ctx, "task failed",
				slog.String("task_id", id),
				slog.String("task_type", t.Type()),
				slog.Int("retried", retried),
				slog.String("err", err.Error()))
		}),
	})
}

// NewMux returns the mux that routes each task type to its handler.
func NewMux(h Handlers) *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeEventFanout, h.fanout)
	mux.HandleFunc(tasks.TypeWebhookDelivery, h.deliver)
	mux.HandleFunc(tasks.TypeOutboxRelay, h.relay)
	mux.HandleFunc(tasks.TypeWebhookReconcile, h.reconcile)
	if h.SLA != nil {
		mux.HandleFunc(tasks.TypeSLABreach, h.slaBreach)
		mux.HandleFunc(tasks.TypeSLAWarning, h.slaWarning)
		mux.HandleFunc(tasks.TypeSLASweep, h.slaSweep)
	}
	if h.Analytics != nil {
		mux.HandleFunc(tasks.TypeAnalyticsRefresh, h.analyticsRefresh)
		mux.HandleFunc(tasks.TypeAnalyticsReconcile, h.analyticsReconcile)
	}
	if h.Sessions != nil && h.Idempotency != nil {
		mux.HandleFunc(tasks.TypeCleanup, h.cleanup)
	}
	return mux
}

func (h Handlers) fanout(ctx context.Context, t *asynq.Task) error {
	var p tasks.EventFanoutPayload
	if err := tasks.Decode(t, &p); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return h.Deliverer.Fanout(ctx, p.EventID)
}

func (h Handlers) deliver(ctx context.Context, t *asynq.Task) error {
	var p tasks.WebhookDeliveryPayload
	if err := tasks.Decode(t, &p); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return h.Deliverer.Deliver(ctx, p.DeliveryID)
}

func (h Handlers) reconcile(ctx context.Context, _ *asynq.Task) error {
	n, err := h.Deliverer.Reconcile(ctx)
	if n > 0 {
		h.Logger.InfoContext(ctx, "webhook reconciler re-enqueued lost tasks", slog.Int("count", n))
	}
	return err
}

func (h Handlers) relay(ctx context.Context, _ *asynq.Task) error {
	n, err := h.Dispatcher.Relay(ctx)
	if n > 0 {
		h.Logger.InfoContext(ctx, "outbox relay enqueued events", slog.Int("count", n))
	}
	return err
}
