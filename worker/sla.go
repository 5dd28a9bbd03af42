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
	return h.SLA.CheckBreach(ctx, p.TicketID, models.Metric(p.Metric), p.At)
}

// slaWarning runs the delayed task armed for one warning time.
func (h Handlers) slaWarning(ctx context.Context, t *asynq.Task) error {
	var p tasks.SLACheckPayload
	if err := tasks.Decode(t, &p); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return h.SLA.CheckWarning(ctx, p.TicketID, models.Metric(p.Metric), p.At)
}

// slaSweep marks the breaches and warnings whose tasks were lost and arms
// the tasks of the due times that come soon.
func (h Handlers) slaSweep(ctx context.Context, _ *asynq.Task) error {
	res, err := h.SLA.Sweep(ctx)
	if res.Breaches > 0 || res.Warnings > 0 {
		h.Logger.InfoContext(ctx, "SLA sweep marked overdue targets",
			slog.Int("breaches", res.Breaches),
			slog.Int("warnings", res.Warnings))
	}
	return err
}
