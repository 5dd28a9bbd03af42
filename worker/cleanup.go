package worker

import (
	"context"
	"log/slog"

	"github.com/hibiken/asynq"
)

// cleanupBatch is how many rows one statement deletes, so that a large
// backlog is deleted in short transactions.
const cleanupBatch = 1000

// cleanupBatches bounds the batches of one run; the next run continues.
const cleanupBatches = 100

// cleanup deletes expired sessions and expired idempotency keys.
func (h Handlers) cleanup(ctx context.Context, t *asynq.Task) error {
	steps := []struct {
		name   string
		delete func(context.Context, int) (int64, error)
	}{
		{"sessions", h.Sessions.DeleteExpired},
		{"idempotency_keys", h.Idempotency.DeleteExpired},
	}
	for _, step := range steps {
		var total int64
		for range cleanupBatches {
			n, err := step.delete(ctx, cleanupBatch)
			if err != nil {
				return err
			}
			total += n
			if n < cleanupBatch {
				break
			}
		}
		if total > 0 {
			h.Logger.InfoContext(ctx, "expired rows deleted",
				slog.String("task_type", t.Type()),
				slog.String("table", step.name),
				slog.Int64("rows", total))
		}
	}
	return nil
}
