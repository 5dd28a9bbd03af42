package webhooks

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/outposthq/outpost/models"
)

// insertDeliveries inserts a pending delivery of evt for each enabled
// endpoint subscribed to its type, skipping endpoints that already have one.
// It is PostgreSQL-specific: && tests array overlap.
func insertDeliveries(db *gorm.DB, evt models.Event, now time.Time) error {
	var endpointIDs []string
	err := db.Model(&models.WebhookEndpoint{}).
		Where("enabled AND events && ARRAY[?, ?]::text[] AND created_at <= ?", evt.Type, AllEvents, evt.CreatedAt).
		Order("id").
		Pluck("id", &endpointIDs).Error
	if err != nil {
		return fmt.Errorf("find subscribed endpoints: %w", err)
	}
	for _, epID := range endpointIDs {
		if err := insertEndpointDelivery(db, evt, epID, now); err != nil {
			return err
		}
	}
	return nil
}

func insertEndpointDelivery(db *gorm.DB, evt models.Event, endpointID string, now time.Time) error {
	err := db.Exec(`INSERT INTO webhook_deliveries
		(id, event_id, endpoint_id, event_type, status, attempt_count, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)
		ON CONFLICT (event_id, endpoint_id) DO NOTHING`,
		models.NewID(models.PrefixDelivery), evt.ID, endpointID, evt.Type, models.DeliveryPending, now, now, now).Error
	if err != nil {
		return fmt.Errorf("insert delivery: %w", err)
	}
	return nil
}

func markFannedOut(db *gorm.DB, eventID string, now time.Time) error {
	err := db.Model(&models.Event{}).Where("id = ? AND fanned_out_at IS NULL", eventID).
		Update("fanned_out_at", now).Error
	if err != nil {
		return fmt.Errorf("mark event fanned out: %w", err)
	}
	return nil
}

func pendingDeliveries(db *gorm.DB, eventID string) ([]string, error) {
	var ids []string
	err := db.Model(&models.WebhookDelivery{}).
		Where("event_id = ? AND status = ?", eventID, models.DeliveryPending).
		Order("id").
		Pluck("id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("list pending deliveries: %w", err)
	}
	return ids, nil
}

// record stores attempt, moves the delivery according to out and updates
// the endpoint's health, in one transaction. The delivery update is
// conditional on the delivery still being pending, so a concurrent run that
// finished it first wins.
func (d *Deliverer) record(ctx context.Context, dlv *models.WebhookDelivery, ep *models.WebhookEndpoint, attempt models.WebhookAttempt, out outcome) error {
	now := d.now()
	return d.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&attempt).Error; err != nil {
			return fmt.Errorf("insert delivery attempt: %w", err)
		}

		updates := map[string]any{
			"status":          out.status,
			"attempt_count":   gorm.Expr("attempt_count + 1"),
			"last_attempt_at": attempt.StartedAt,
			"last_error":      attempt.Error,
			"next_attempt_at": nil,
			"updated_at":      now,
		}
		if out.status == models.DeliveryPending {
			updates["next_attempt_at"] = now.Add(out.delay)
		}
		res := tx.Model(&models.WebhookDelivery{}).
			Where("id = ? AND status = ?", dlv.ID, models.DeliveryPending).
			Updates(updates)
		if res.Error != nil {
			return fmt.Errorf("update delivery: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			// Another run of the task finished the delivery first. Its
			// outcome is kept, and this attempt is only logged.
			return nil
		}
		return updateHealth(tx, ep.ID, out, now)
	})
}

// updateHealth counts an endpoint's consecutive failures, resets them on
// success, and disables the endpoint when out carries a disable reason.
func updateHealth(tx *gorm.DB, endpointID string, out outcome, now time.Time) error {
	q := tx.Model(&models.WebhookEndpoint{}).Where("id = ?", endpointID)
	var err error
	switch {
	case out.disableReason != "":
		err = q.Updates(map[string]any{
			"enabled":              false,
			"disabled_reason":      out.disableReason,
			"disabled_at":          now,
			"consecutive_failures": gorm.Expr("consecutive_failures + 1"),
			"updated_at":           now,
		}).Error
	case out.failure:
		err = q.Updates(map[string]any{
			"consecutive_failures": gorm.Expr("consecutive_failures + 1"),
			"failing_since":        gorm.Expr("COALESCE(failing_since, ?)", now),
		}).Error
	default:
		// Most successes follow successes; the condition skips the write.
		err = q.Where("consecutive_failures <> 0 OR failing_since IS NOT NULL").
			Updates(map[string]any{"consecutive_failures": 0, "failing_since": nil}).Error
	}
	if err != nil {
		return fmt.Errorf("update endpoint health: %w", err)
	}
	return nil
}

// abandon marks a pending delivery failed without an attempt.
func (d *Deliverer) abandon(ctx context.Context, dlv *models.WebhookDelivery, reason string) error {
	err := d.db.WithContext(ctx).Model(&models.WebhookDelivery{}).
		Where("id = ? AND status = ?", dlv.ID, models.DeliveryPending).
		Updates(map[string]any{
			"status":          models.DeliveryFailed,
			"last_error":      reason,
			"next_attempt_at": nil,
			"updated_at":      d.now(),
		}).Error
	if err != nil {
		return fmt.Errorf("update delivery: %w", err)
	}
	return nil
}

// lockDelivery loads delivery id for update within tx.
func lockDelivery(tx *gorm.DB, id string) (models.WebhookDelivery, error) {
	var dlv models.WebhookDelivery
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&dlv, "id = ?", id).Error
	return dlv, err
}
