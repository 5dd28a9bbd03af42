package sla

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/audit"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/paging"
)

// NewSchedule is the input of CreateSchedule.
type NewSchedule struct {
	Name     string
	TimeZone string
	Hours    []models.OpeningHours
	Holidays []models.Holiday
}

// SchedulePatch is the input of UpdateSchedule. Unset fields keep their
// value; Hours and Holidays replace the whole list.
type SchedulePatch struct {
	Name     outpost.Field[string]
	TimeZone outpost.Field[string]
	Hours    outpost.Field[[]models.OpeningHours]
	Holidays outpost.Field[[]models.Holiday]
}

var scheduleSortKeys = map[string]string{"createdAt": "created_at", "updatedAt": "updated_at"}

// CreateSchedule validates and stores a business-hours schedule.
func (e *Engine) CreateSchedule(ctx context.Context, in NewSchedule) (models.BusinessHours, error) {
	now := e.now()
	bh := models.BusinessHours{
		ID:        models.NewID(models.PrefixSchedule),
		Name:      in.Name,
		TimeZone:  in.TimeZone,
		Hours:     in.Hours,
		Holidays:  in.Holidays,
		CreatedAt: now,
		UpdatedAt: now,
	}
	if bh.Holidays == nil {
		bh.Holidays = []models.Holiday{}
	}
	if _, err := Compile(bh); err != nil {
		return bh, err
	}
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&bh).Error; err != nil {
			return fmt.Errorf("insert business hours: %w", err)
		}
		return audit.RecordChange(ctx, tx, bh.ID)
	})
	return bh, err
}

// GetSchedule returns schedule id.
func (e *Engine) GetSchedule(ctx context.Context, id string) (models.BusinessHours, error) {
	var bh models.BusinessHours
	err := e.db.WithContext(ctx).Take(&bh, "id = ?", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return bh, outpost.NotFound("business hours", id)
	}
	if err != nil {
		return bh, fmt.Errorf("load business hours: %w", err)
	}
	return bh, nil
}

// ListSchedules returns one page of schedules and the next page's cursor.
func (e *Engine) ListSchedules(ctx context.Context, p paging.Params) ([]models.BusinessHours, *string, error) {
	q, err := paging.New(p, scheduleSortKeys, "createdAt")
	if err != nil {
		return nil, nil, err
	}
	var rows []models.BusinessHours
	if err := q.Apply(e.db.WithContext(ctx).Model(&models.BusinessHours{}), "business_hours").Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list business hours: %w", err)
	}
	page, next := paging.Page(q, rows, func(bh models.BusinessHours) (time.Time, string) {
		if q.SortColumn() == "updatedAt" {
			return bh.UpdatedAt, bh.ID
		}
		return bh.CreatedAt, bh.ID
	})
	return page, next, nil
}

// UpdateSchedule applies patch to schedule id and recomputes the unfinished
// tickets whose targets count in it.
func (e *Engine) UpdateSchedule(ctx context.Context, id string, patch SchedulePatch) (models.BusinessHours, error) {
	var bh models.BusinessHours
	err := e.commit(ctx, func(tx *gorm.DB) (outcome, error) {
		if err := lockByID(tx, &bh, "business hours", id); err != nil {
			return outcome{}, err
		}
		if patch.Name.Set {
			bh.Name = patch.Name.Value
		}
		if patch.TimeZone.Set {
			bh.TimeZone = patch.TimeZone.Value
		}
		if patch.Hours.Set {
			bh.Hours = patch.Hours.Value
		}
		if patch.Holidays.Set {
			bh.Holidays = patch.Holidays.Value
			if bh.Holidays == nil {
				bh.Holidays = []models.Holiday{}
			}
		}
		if _, err := Compile(bh); err != nil {
			return outcome{}, err
		}
		bh.UpdatedAt = e.now()
		if err := tx.Save(&bh).Error; err != nil {
			return outcome{}, fmt.Errorf("save business hours: %w", err)
		}
		if err := audit.RecordChange(ctx, tx, bh.ID); err != nil {
			return outcome{}, err
		}
		// Only unfinished tickets are recomputed: finished ones keep the
		// hours they were judged by.
		var ids []string
		err := tx.Model(&models.TicketSLA{}).Distinct("ticket_sla.ticket_id").
			Joins("JOIN tickets ON tickets.id = ticket_sla.ticket_id").
			Where("ticket_sla.business_hours_id = ? AND tickets.status IN ?", id,
				[]models.Status{models.StatusOpen, models.StatusPending}).
			Order("ticket_sla.ticket_id").Pluck("ticket_sla.ticket_id", &ids).Error
		if err != nil {
			return outcome{}, fmt.Errorf("list tickets on business hours: %w", err)
		}
		return e.recomputeAll(tx, ids, bh.UpdatedAt)
	})
	return bh, err
}

// DeleteSchedule deletes schedule id. A schedule that a policy uses cannot
// be deleted; finished tickets that counted in it keep their minutes.
func (e *Engine) DeleteSchedule(ctx context.Context, id string) error {
	return e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var bh models.BusinessHours
		if err := lockByID(tx, &bh, "business hours", id); err != nil {
			return err
		}
		var users []string
		err := tx.Model(&models.SLAPolicy{}).Where("business_hours_id = ? AND deleted_at IS NULL", id).Pluck("id", &users).Error
		if err != nil {
			return fmt.Errorf("check business hours use: %w", err)
		}
		if len(users) > 0 {
			return &outpost.ConflictError{
				Field:   "path.id",
				Value:   id,
				Message: fmt.Sprintf("SLA policy %s uses this schedule; point it at another schedule or delete it first", users[0]),
			}
		}
		if err := tx.Delete(&bh).Error; err != nil {
			return fmt.Errorf("delete business hours: %w", err)
		}
		if err := audit.RecordChange(ctx, tx, bh.ID); err != nil {
			return err
		}
		return nil
	})
}

// lockByID loads the row with id into dest and locks it until tx ends.
func lockByID(tx *gorm.DB, dest any, kind, id string) error {
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(dest, "id = ?", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return outpost.NotFound(kind, id)
	}
	if err != nil {
		return fmt.Errorf("load %s: %w", kind, err)
	}
	return nil
}
