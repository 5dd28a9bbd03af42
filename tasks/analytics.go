package tasks

import (
	"time"

	"github.com/hibiken/asynq"
)

// Analytics rollup task types.
const (
	TypeAnalyticsRefresh   = "analytics:refresh"
	TypeAnalyticsReconcile = "analytics:reconcile"
)

// NewAnalyticsRefresh returns the periodic task that recomputes the rollup
// hours touched by tickets changed since the last refresh. It is unique for
// interval, like the outbox relay; a second run would still be harmless,
// because each hour is rewritten whole.
func NewAnalyticsRefresh(interval time.Duration) *asynq.Task {
	return asynq.NewTask(TypeAnalyticsRefresh, nil,
		asynq.Queue(QueueMaintenance),
		asynq.MaxRetry(0),
		asynq.Unique(interval),
		asynq.Timeout(5*time.Minute),
	)
}

// NewAnalyticsReconcile returns the periodic task that recomputes the
// recent rollup hours from the ticket tables. It is unique for interval.
func NewAnalyticsReconcile(interval time.Duration) *asynq.Task {
	return asynq.NewTask(TypeAnalyticsReconcile, nil,
		asynq.Queue(QueueMaintenance),
		asynq.MaxRetry(0),
		asynq.Unique(interval),
		asynq.Timeout(10*time.Minute),
	)
}
