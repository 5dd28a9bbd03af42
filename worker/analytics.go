package worker

import (
	"context"
	"log/slog"

	"github.com/hibiken/asynq"
)

// analyticsRefresh recomputes the rollup hours of recently changed tickets.
func (h Handlers) analyticsRefresh(ctx context.Context, t *asynq.Task) error {
	n, err := h.Analytics.Refresh(ctx)
	if n > 0 {
		id, _ := asynq.GetTaskID(ctx)
		h.Logger.DebugContext(ctx, "analytics rollup refreshed",
			slog.String("task_id", id),
			slog.String("task_type", t.Type()),
			slog.Int("hours", n))
	}
	return err
}

// analyticsReconcile recomputes the recent rollup hours.
func (h Handlers) analyticsReconcile(ctx context.Context, _ *asynq.Task) error {
	return h.Analytics.Reconcile(ctx)
}
