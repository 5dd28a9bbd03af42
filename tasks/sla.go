package tasks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// QueueSLA carries the SLA detection tasks and the sweep.
const QueueSLA = "sla"

// SLA task type names.
const (
	TypeSLABreach  = "sla:breach"
	TypeSLAWarning = "sla:warning"
	TypeSLASweep   = "sla:sweep"
)

// SLACheckPayload names one SLA target of a ticket and the time at which
// the task was armed to fire: its due time, or its warning time.
type SLACheckPayload struct {
	TicketID string    `json:"ticketId"`
	Metric   string    `json:"metric"`
	At       time.Time `json:"at"`
}

// slaLead is the time by which an SLA task is scheduled before its time. asynq
// stores a delayed task's time in whole seconds and moves due tasks to their
// queue once a second, so a task scheduled for its exact time would start up
// to a second late. Scheduled this much earlier, it starts before its time
// and its handler waits for the exact instant.
const slaLead = time.Second

// NewSLABreach returns the task that marks the breach of ticketID's metric
// target at due. It is scheduled slaLead before due. The TaskID
// contains the ticket, the metric and the due time, so arming the same due
// time twice runs one task. A moved due time arms a new task, and the old
// one finds its time stale and does nothing.
func NewSLABreach(ticketID, metric string, due time.Time) *asynq.Task {
	return newSLACheck(TypeSLABreach, ticketID, metric, due)
}

// NewSLAWarning returns the task that emits the warning of ticketID's
// metric target at warnAt. Its TaskID works as NewSLABreach's does.
func NewSLAWarning(ticketID, metric string, warnAt time.Time) *asynq.Task {
	return newSLACheck(TypeSLAWarning, ticketID, metric, warnAt)
}

// SLATaskID returns the TaskID of the SLA task of taskType (TypeSLABreach
// or TypeSLAWarning) for ticketID's metric target armed at at.
func SLATaskID(taskType, ticketID, metric string, at time.Time) string {
	return fmt.Sprintf("%s:%s:%s:%d", taskType, ticketID, metric, at.UnixMicro())
}

func newSLACheck(taskType, ticketID, metric string, at time.Time) *asynq.Task {
	at = at.UTC()
	payload, _ := json.Marshal(SLACheckPayload{TicketID: ticketID, Metric: metric, At: at})
	return asynq.NewTask(taskType, payload,
		asynq.TaskID(SLATaskID(taskType, ticketID, metric, at)),
		asynq.Queue(QueueSLA),
		asynq.ProcessAt(at.Add(-slaLead)),
		asynq.MaxRetry(10),
		asynq.Timeout(time.Minute),
	)
}

// NewSLASweep returns the periodic task that marks the breaches and
// warnings whose tasks were lost and arms the tasks of due times that come
// soon. It is unique for interval, like the outbox relay, so two schedulers
// enqueue it once; a second run would still be harmless.
func NewSLASweep(interval time.Duration) *asynq.Task {
	return asynq.NewTask(TypeSLASweep, nil,
		asynq.Queue(QueueSLA),
		asynq.MaxRetry(0),
		asynq.Unique(interval),
		asynq.Timeout(5*time.Minute),
	)
}
