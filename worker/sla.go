package worker

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"

	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/tasks"
)

// slaBreach runs the delayed task armed for one due time. A task whose due
// time moved, or whose target finished, does nothing.
func (h Handlers) slaBreach(ctx context.Context, t *asynq.Task) error {
	var p tasks.SLACheckPayload
	if err := tasks.Decode(t, &p); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	marked, err := h.SLA.CheckBreach(ctx, p.TicketID, models.Metric(p.Metric), p.At)
	if marked {
		h.logSLA(ctx, t, "SLA target breached", p)
	}
	return err
}

// slaWarning runs the delayed task armed for one warning time.
func (h Handlers) slaWarning(ctx context.Context, t *asynq.Task) error {
	var p tasks.SLACheckPayload
	if err := tasks.Decode(t, &p); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	warned, err := h.SLA.CheckWarning(ctx, p.TicketID, models.Metric(p.Metric), p.At)
	if warned {
		h.logSLA(ctx, t, "SLA warning emitted", p)
	}
	return err
}

func (h Handlers) logSLA(ctx context.Context, t *asynq.Task, msg string, p tasks.SLACheckPayload) {
	id, _ := asynq.GetTaskID(ctx)
	h.Logger.InfoContext(ctx, msg,
		slog.String("task_id", id),
		slog.String("task_type", t.Type()),
		slog.String("ticket_id", p.TicketID),
		slog.String("metric", p.Metric),
		slog.Time("at", p.At))
}

// slaSweep marks the breaches and warnings whose tasks were lost and arms
// the tasks of the due times that come soon.
func (h Handlers) slaSweep(ctx context.Context, t *asynq.Task) error {
	res, err := h.SLA.Sweep(ctx)
	if res.Breaches > 0 || res.Warnings > 0 {
		id, _ := asynq.GetTaskID(ctx)
		h.Logger.InfoContext(ctx, "SLA sweep marked overdue targets",
			slog.String("task_id", id),
			slog.String("task_type", t.Type()),
			slog.Int("breaches", res.Breaches),
			slog.Int("warnings", res.Warnings))
	}
	return err
}
