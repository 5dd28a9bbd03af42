// Package tasks is the contract between the processes that enqueue work and
// the workers that run it: task type names, payloads, queue names and the
// options each task is enqueued with.
package tasks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Queue names. A worker serves all of them, weighted by Queues.
const (
	QueueEvents      = "events"
	QueueWebhooks    = "webhooks"
	QueueMaintenance = "maintenance"
)

// Queues maps each queue to its weight: with every queue busy, a worker
// spends about that share of its time on the queue's tasks.
var Queues = map[string]int{
	QueueEvents:      5,
	QueueWebhooks:    4,
	QueueMaintenance: 1,
	// SLA detection tasks are few and due at exact times, so a webhook
	// backlog must not hold them up.
	QueueSLA: 5,
}

// Task type names.
const (
	TypeEventFanout      = "event:fanout"
	TypeWebhookDelivery  = "webhook:deliver"
	TypeOutboxRelay      = "outbox:relay"
	TypeWebhookReconcile = "webhook:reconcile"
)

// fanoutRetention keeps a finished fan-out task, and with it its TaskID, so
// that the API and the outbox relay enqueueing the same event within this
// span run one fan-out.
const fanoutRetention = 24 * time.Hour

// EventFanoutPayload names the outbox event to fan out to webhook endpoints.
type EventFanoutPayload struct {
	EventID string `json:"eventId"`
}

// NewEventFanout returns the task that fans event eventID out to the
// subscribed endpoints. Its TaskID is the event ID, so enqueueing it twice
// runs it once.
func NewEventFanout(eventID string) *asynq.Task {
	payload, _ := json.Marshal(EventFanoutPayload{EventID: eventID})
	return asynq.NewTask(TypeEventFanout, payload,
		asynq.TaskID(eventID),
		asynq.Queue(QueueEvents),
		asynq.MaxRetry(25),
		asynq.Retention(fanoutRetention),
	)
}

// WebhookDeliveryPayload names the delivery row to attempt.
type WebhookDeliveryPayload struct {
	DeliveryID string `json:"deliveryId"`
}

// NewWebhookDelivery returns the task that delivers one event to one
// endpoint. Its TaskID is the delivery ID. maxRetry is the number of retries
// after the first attempt, and timeout bounds one attempt.
func NewWebhookDelivery(deliveryID string, maxRetry int, timeout time.Duration) *asynq.Task {
	payload, _ := json.Marshal(WebhookDeliveryPayload{DeliveryID: deliveryID})
	return asynq.NewTask(TypeWebhookDelivery, payload,
		asynq.TaskID(deliveryID),
		asynq.Queue(QueueWebhooks),
		asynq.MaxRetry(maxRetry),
		asynq.Timeout(timeout),
	)
}

// NewOutboxRelay returns the periodic task that hands undispatched outbox
// events to the queue. It is unique for interval, so two schedulers that
// fire at once enqueue it once; a second run would still be harmless.
func NewOutboxRelay(interval time.Duration) *asynq.Task {
	return asynq.NewTask(TypeOutboxRelay, nil,
		asynq.Queue(QueueMaintenance),
		asynq.MaxRetry(0),
		asynq.Unique(interval),
		asynq.Timeout(time.Minute),
	)
}

// NewWebhookReconcile returns the periodic task that re-enqueues fan-outs
// and deliveries that PostgreSQL records as pending but the queue lost. Like
// the relay, it is unique for interval.
func NewWebhookReconcile(interval time.Duration) *asynq.Task {
	return asynq.NewTask(TypeWebhookReconcile, nil,
		asynq.Queue(QueueMaintenance),
		asynq.MaxRetry(0),
		asynq.Unique(interval),
		asynq.Timeout(5*time.Minute),
	)
}

// Decode unmarshals the JSON payload of t into v.
func Decode(t *asynq.Task, v any) error {
	if err := json.Unmarshal(t.Payload(), v); err != nil {
		return fmt.Errorf("decode %s payload: %w", t.Type(), err)
	}
	return nil
}
