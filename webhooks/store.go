package webhooks

import (
	"fmt"
	"time"

	"gorm.io/gorm"

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
		err := db.Exec(`INSERT INTO webhook_deliveries
			(id, event_id, endpoint_id, event_type, status, attempt_count, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 0, ?, ?)
			ON CONFLICT (event_id, endpoint_id) DO NOTHING`,
			models.NewID(models.PrefixDelivery), evt.ID, epID, evt.Type, models.DeliveryPending, now, now).Error
		if err != nil {
			return fmt.Errorf("insert delivery: %w", err)
		}
	}
	return nil
}
