package tasks

import (
	"time"

	"github.com/hibiken/asynq"
)

// TypeCleanup is the periodic task that deletes expired sessions and
// expired idempotency keys.
const TypeCleanup = "maintenance:cleanup"

// NewCleanup returns the periodic cleanup task, unique for interval.
func NewCleanup(interval time.Duration) *asynq.Task {
	return asynq.NewTask(TypeCleanup, nil,
		asynq.Queue(QueueMaintenance),
		asynq.MaxRetry(0),
		asynq.Unique(interval),
		asynq.Timeout(5*time.Minute),
	)
}
