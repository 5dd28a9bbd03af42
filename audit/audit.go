// Package audit stores and lists the audit log: who changed which agent,
// API key, SLA policy, business-hours schedule or webhook endpoint, and
// when.
package audit

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/paging"
)

// Log is the audit log in PostgreSQL.
type Log struct {
	db      *gorm.DB
	nowFunc func() time.Time
}

// New returns a Log backed by db. nowFunc is the clock; nil means time.Now.
func New(db *gorm.DB, nowFunc func() time.Time) *Log {
	if nowFunc == nil {
		nowFunc = time.Now
	}
	return &Log{db: db, nowFunc: nowFunc}
}

// Record inserts entry, setting its ID and time.
func (l *Log) Record(ctx context.Context, entry models.AuditEntry) (models.AuditEntry, error) {
	entry.ID = models.NewID(models.PrefixAudit)
	entry.CreatedAt = l.nowFunc().UTC().Truncate(time.Microsecond)
	if entry.Fields == nil {
		entry.Fields = []string{}
	}
	if err := l.db.WithContext(ctx).Create(&entry).Error; err != nil {
		return entry, fmt.Errorf("insert audit entry: %w", err)
	}
	return entry, nil
}

var sortKeys = map[string]string{"createdAt": "created_at"}

// List returns one page of entries, newest first by default.
func (l *Log) List(ctx context.Context, p paging.Params) ([]models.AuditEntry, *string, error) {
	q, err := paging.New(p, sortKeys, "-createdAt")
	if err != nil {
		return nil, nil, err
	}
	var rows []models.AuditEntry
	if err := q.Apply(l.db.WithContext(ctx).Model(&models.AuditEntry{}), "audit_log").Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list audit entries: %w", err)
	}
	page, next := paging.Page(q, rows, func(e models.AuditEntry) (time.Time, string) {
		return e.CreatedAt, e.ID
	})
	return page, next, nil
}
