package sla

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/outposthq/outpost/models"
)

// TicketSLA is the SLA state of one ticket as the API returns it.
type TicketSLA struct {
	PolicyID      string  `json:"policyId" doc:"SLA policy that applies to the ticket."`
	FirstResponse *Target `json:"firstResponse" doc:"Time to the first public reply by an agent."`
	Resolution    *Target `json:"resolution" doc:"Time to resolution, not counting time in pending."`
}

// Target is the state of one SLA target of a ticket.
type Target struct {
	State           models.SLAState `json:"state" enum:"running,paused,achieved,breached" doc:"running: the clock counts. paused: the clock is stopped with time left (pending, or resolved or closed before the first reply). achieved: met on time. breached: the due time passed first; a breach is never undone."`
	Clock           models.Clock    `json:"clock" enum:"calendar,business"`
	TargetMinutes   int             `json:"targetMinutes" doc:"Minutes allowed, counted by clock."`
	DueAt           *time.Time      `json:"dueAt" doc:"When the clock reaches the target: ahead while running, the missed time once breached, the due time in force when it was achieved, and null while paused."`
	WarnAt          *time.Time      `json:"warnAt" doc:"When ticket.sla_warning is due, or null without a warning."`
	AchievedAt      *time.Time      `json:"achievedAt" doc:"When the target was met (first reply, or resolution), on time or late; null until then."`
	BreachedAt      *time.Time      `json:"breachedAt" doc:"The due time that was missed, or null."`
	WarnedAt        *time.Time      `json:"warnedAt" doc:"When ticket.sla_warning was emitted, or null."`
	CalendarMinutes int             `json:"calendarMinutes" doc:"Calendar minutes the clock has run, rounded down."`
	BusinessMinutes *int            `json:"businessMinutes" doc:"Business minutes the clock has run, rounded down, or null for a calendar-time target."`
}

// TicketSLAs returns the SLA state of each of ids that has one, with the
// minutes used counted up to now.
func (e *Engine) TicketSLAs(ctx context.Context, ids ...string) (map[string]*TicketSLA, error) {
	out := map[string]*TicketSLA{}
	if len(ids) == 0 {
		return out, nil
	}
	db := e.db.WithContext(ctx)
	var rows []models.TicketSLA
	if err := db.Where("ticket_id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("load ticket SLA: %w", err)
	}
	now := e.now()
	cache := scheduleCache{}
	for _, r := range rows {
		v := out[r.TicketID]
		if v == nil {
			v = &TicketSLA{PolicyID: r.PolicyID}
			out[r.TicketID] = v
		}
		target, err := e.target(db, r, now, cache)
		if err != nil {
			return nil, err
		}
		if r.Metric == models.MetricFirstResponse {
			v.FirstResponse = target
		} else {
			v.Resolution = target
		}
	}
	return out, nil
}

func (e *Engine) target(db *gorm.DB, r models.TicketSLA, now time.Time, cache scheduleCache) (*Target, error) {
	t := &Target{
		State:         r.State,
		Clock:         models.ClockCalendar,
		TargetMinutes: r.TargetMinutes,
		DueAt:         r.DueAt,
		WarnAt:        r.WarnAt,
		AchievedAt:    r.AchievedAt,
		BreachedAt:    r.BreachedAt,
		WarnedAt:      r.WarnedAt,
	}
	calendarUsed := time.Duration(r.CalendarUsedUS) * time.Microsecond
	if r.RunningSince != nil {
		calendarUsed += calendar{}.Between(*r.RunningSince, now)
	}
	t.CalendarMinutes = int(calendarUsed / time.Minute)
	if r.BusinessHoursID == nil {
		return t, nil
	}

	t.Clock = models.ClockBusiness
	businessUsed := time.Duration(r.BusinessUsedUS) * time.Microsecond
	if r.RunningSince != nil {
		schedule, err := cache.get(db, *r.BusinessHoursID)
		if err != nil {
			return nil, err
		}
		businessUsed += schedule.Between(*r.RunningSince, now)
	}
	minutes := int(businessUsed / time.Minute)
	t.BusinessMinutes = &minutes
	return t, nil
}
