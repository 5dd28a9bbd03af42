package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/tasks"
)

// TestEvent is the event type of the deliveries that SendTest makes. It
// reaches only the endpoint it is sent to, whatever its subscriptions.
const TestEvent = "webhook.test"

// reconcileGrace is how long past its due time a pending delivery may wait
// before the reconciler assumes its task is lost, and how long a dispatched
// event may wait for its fan-out.
const reconcileGrace = time.Minute

// reconcileBatch is the number of rows the reconciler reads per query.
const reconcileBatch = 500

// Redeliver starts a new series of attempts of delivery id, with the whole
// retry schedule, whatever its status. A task still queued for the delivery
// (waiting for a retry, or archived) is removed first, so that its TaskID
// can be enqueued again. It returns a ConflictError while an attempt of the
// delivery is running.
func (d *Deliverer) Redeliver(ctx context.Context, id string) (models.WebhookDelivery, error) {
	if err := d.removeTask(id); err != nil {
		return models.WebhookDelivery{}, err
	}
	var dlv models.WebhookDelivery
	err := d.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		dlv, err = lockDelivery(tx, id)
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return outpost.NotFound("webhook delivery", id)
		}
		if err != nil {
			return fmt.Errorf("load delivery: %w", err)
		}
		now := d.now()
		dlv.Status = models.DeliveryPending
		dlv.RetryBase = dlv.AttemptCount
		dlv.NextAttemptAt = &now
		dlv.UpdatedAt = now
		err = tx.Model(&dlv).Select("status", "retry_base", "next_attempt_at", "updated_at").Updates(&dlv).Error
		if err != nil {
			return fmt.Errorf("update delivery: %w", err)
		}
		return nil
	})
	if err != nil {
		return dlv, err
	}
	d.enqueueCommitted(ctx, id)
	return dlv, nil
}

// enqueueCommitted enqueues the task of a delivery whose pending state has
// committed. A failure is logged and not returned, because the change was
// made: the reconciler enqueues the delivery once it is overdue.
func (d *Deliverer) enqueueCommitted(ctx context.Context, id string) {
	if err := d.Enqueue(ctx, id, time.Time{}); err != nil {
		d.logger.WarnContext(ctx, "delivery left for the reconciler",
			slog.String("delivery_id", id),
			slog.String("err", err.Error()))
	}
}

// removeTask deletes the queued task of delivery id, if there is one.
func (d *Deliverer) removeTask(id string) error {
	if d.tasks == nil {
		return nil
	}
	err := d.tasks.DeleteTask(tasks.QueueWebhooks, id)
	switch {
	case err == nil, errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return nil
	// asynq refuses to delete the task of an attempt in progress. It exports
	// no error value for that, so the message of asynq v0.26.0 is matched.
	case strings.Contains(err.Error(), "cannot delete task in active state"):
		return &outpost.ConflictError{
			Field:   "path.id",
			Value:   id,
			Message: "an attempt of this delivery is in progress; retry the request after it ends",
		}
	default:
		return fmt.Errorf("remove queued task of delivery %s: %w", id, err)
	}
}

// Replay redelivers every failed delivery of endpoint endpointID created at
// or after since, oldest first, and returns how many it redelivered. A
// delivery that cannot be redelivered, such as one with an attempt in
// progress, is skipped; the first such error is returned with the count.
func (d *Deliverer) Replay(ctx context.Context, endpointID string, since time.Time) (int, error) {
	db := d.db.WithContext(ctx)
	var n int64
	if err := db.Model(&models.WebhookEndpoint{}).Where("id = ?", endpointID).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("load webhook endpoint: %w", err)
	}
	if n == 0 {
		return 0, outpost.NotFound("webhook endpoint", endpointID)
	}

	var ids []string
	err := db.Model(&models.WebhookDelivery{}).
		Where("endpoint_id = ? AND status = ? AND created_at >= ?", endpointID, models.DeliveryFailed, since).
		Order("created_at, id").
		Pluck("id", &ids).Error
	if err != nil {
		return 0, fmt.Errorf("list failed deliveries: %w", err)
	}
	redelivered := 0
	var firstErr error
	for _, id := range ids {
		if _, err := d.Redeliver(ctx, id); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		redelivered++
	}
	return redelivered, firstErr
}

// SendTest writes a webhook.test event and delivers it to endpoint
// endpointID only.
func (d *Deliverer) SendTest(ctx context.Context, endpointID string) (models.WebhookDelivery, error) {
	var dlv models.WebhookDelivery
	err := d.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var ep models.WebhookEndpoint
		err := tx.Select("id").Take(&ep, "id = ?", endpointID).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return outpost.NotFound("webhook endpoint", endpointID)
		}
		if err != nil {
			return fmt.Errorf("load webhook endpoint: %w", err)
		}

		now := d.now()
		data := map[string]string{"endpointId": endpointID, "message": "This is a test delivery from Outpost."}
		evt, err := outbox.Append(tx, now, TestEvent, data)
		if err != nil {
			return err
		}
		// The event is delivered here, not by a fan-out.
		err = tx.Model(&evt).Updates(map[string]any{"dispatched_at": now, "fanned_out_at": now}).Error
		if err != nil {
			return fmt.Errorf("mark test event: %w", err)
		}
		if err := insertEndpointDelivery(tx, evt, endpointID, now); err != nil {
			return err
		}
		return tx.Take(&dlv, "event_id = ? AND endpoint_id = ?", evt.ID, endpointID).Error
	})
	if err != nil {
		return dlv, fmt.Errorf("send test delivery: %w", err)
	}
	d.enqueueCommitted(ctx, dlv.ID)
	return dlv, nil
}

// Reconcile re-enqueues work that PostgreSQL records as pending but the
// queue may have lost, as after Redis restarts without persistence: the
// fan-out of dispatched events that were never fanned out, and pending
// deliveries overdue by more than a minute. Live tasks are left alone,
// because enqueueing their TaskID again is rejected; archived ones are
// replaced. It returns how many tasks it enqueued.
func (d *Deliverer) Reconcile(ctx context.Context) (int, error) {
	cutoff := d.now().Add(-reconcileGrace)
	events, err := d.reconcileFanouts(ctx, cutoff)
	if err != nil {
		return events, err
	}
	deliveries, err := d.reconcileDeliveries(ctx, cutoff)
	return events + deliveries, err
}

func (d *Deliverer) reconcileFanouts(ctx context.Context, cutoff time.Time) (int, error) {
	enqueued := 0
	// The outbox marks a whole batch of events dispatched with one
	// timestamp, so the pages are keyed by (dispatched_at, id).
	after, afterID := time.Time{}, ""
	for {
		var rows []models.Event
		err := d.db.WithContext(ctx).Select("id", "dispatched_at").
			Where("fanned_out_at IS NULL AND dispatched_at IS NOT NULL AND dispatched_at < ? AND (dispatched_at, id) > (?, ?)",
				cutoff, after, afterID).
			Order("dispatched_at, id").Limit(reconcileBatch).Find(&rows).Error
		if err != nil {
			return enqueued, fmt.Errorf("list events awaiting fan-out: %w", err)
		}
		for _, evt := range rows {
			ok, err := d.enqueueTask(ctx, tasks.NewEventFanout(evt.ID), tasks.QueueEvents, evt.ID)
			if err != nil {
				return enqueued, fmt.Errorf("enqueue event fan-out: %w", err)
			}
			if ok {
				enqueued++
				d.logger.DebugContext(ctx, "reconciler re-enqueued event fan-out", slog.String("event_id", evt.ID))
			}
		}
		if len(rows) < reconcileBatch {
			return enqueued, nil
		}
		after, afterID = *rows[len(rows)-1].DispatchedAt, rows[len(rows)-1].ID
	}
}

func (d *Deliverer) reconcileDeliveries(ctx context.Context, cutoff time.Time) (int, error) {
	enqueued := 0
	afterID := ""
	for {
		var rows []models.WebhookDelivery
		err := d.db.WithContext(ctx).Select("id", "next_attempt_at").
			Where("status = ? AND next_attempt_at < ? AND id > ?", models.DeliveryPending, cutoff, afterID).
			Order("id").Limit(reconcileBatch).Find(&rows).Error
		if err != nil {
			return enqueued, fmt.Errorf("list overdue deliveries: %w", err)
		}
		for _, dlv := range rows {
			ok, err := d.enqueueTask(ctx, d.deliveryTask(dlv.ID), tasks.QueueWebhooks, dlv.ID)
			if err != nil {
				return enqueued, fmt.Errorf("enqueue delivery %s: %w", dlv.ID, err)
			}
			if ok {
				enqueued++
				d.logger.DebugContext(ctx, "reconciler re-enqueued delivery", slog.String("delivery_id", dlv.ID))
			}
		}
		if len(rows) < reconcileBatch {
			return enqueued, nil
		}
		afterID = rows[len(rows)-1].ID
	}
}
