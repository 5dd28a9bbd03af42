package audit

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/outposthq/outpost/models"
)

type changeContextKey struct{}

// change is the audit entry of the change that a context's caller is
// about to make, and whether the entry has been written.
type change struct {
	entry   models.AuditEntry
	written bool
}

// WithChange returns ctx carrying entry, the audit entry of the change the
// caller is about to make. Services that make audited changes write it with
// RecordChange in the change's own transaction.
func WithChange(ctx context.Context, entry models.AuditEntry) context.Context {
	return context.WithValue(ctx, changeContextKey{}, &change{entry: entry})
}

// RecordChange inserts the entry that ctx carries in tx, naming resourceID
// when the entry names no resource, so that the change and its entry
// commit or roll back together. Without an entry in ctx it does nothing.
// A service calls it once per transaction, and again if it retries the
// transaction.
func RecordChange(ctx context.Context, tx *gorm.DB, resourceID string) error {
	c, ok := ctx.Value(changeContextKey{}).(*change)
	if !ok {
		return nil
	}
	entry := c.entry
	if entry.ResourceID == "" {
		entry.ResourceID = resourceID
	}
	entry.ID = models.NewID(models.PrefixAudit)
	entry.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	if entry.Fields == nil {
		entry.Fields = []string{}
	}
	if err := tx.Create(&entry).Error; err != nil {
		return fmt.Errorf("insert audit entry: %w", err)
	}
	// A rolled-back transaction fails its request, so Recorded is read
	// only after a change that committed.
	c.written = true
	return nil
}

// Recorded reports whether RecordChange has written the entry that ctx
// carries.
func Recorded(ctx context.Context) bool {
	c, ok := ctx.Value(changeContextKey{}).(*change)
	return ok && c.written
}
