package models

import (
	"time"

	"github.com/lib/pq"
)

// Clock is how an SLA target counts time.
type Clock string

// SLA clocks.
const (
	ClockCalendar Clock = "calendar"
	ClockBusiness Clock = "business"
)

// Metric names one SLA target of a ticket.
type Metric string

// SLA metrics. The values are the ones stored in ticket_sla.metric and sent
// in ticket.sla_breach and ticket.sla_warning events.
const (
	MetricFirstResponse Metric = "first_response"
	MetricResolution    Metric = "resolution"
)

// SLAState is the state of one SLA target of a ticket.
type SLAState string

// SLA target states.
const (
	SLARunning  SLAState = "running"
	SLAPaused   SLAState = "paused"
	SLAAchieved SLAState = "achieved"
	SLABreached SLAState = "breached"
)

// SLATargets are the minutes a policy allows for one metric at each
// priority, and the clock that counts them.
type SLATargets struct {
	Clock  Clock `json:"clock" enum:"calendar,business" doc:"calendar counts every minute; business counts only the opening hours of the policy's business-hours schedule."`
	Urgent int   `json:"urgent" minimum:"1" maximum:"525600" doc:"Minutes allowed for urgent tickets."`
	High   int   `json:"high" minimum:"1" maximum:"525600" doc:"Minutes allowed for high-priority tickets."`
	Medium int   `json:"medium" minimum:"1" maximum:"525600" doc:"Minutes allowed for medium-priority tickets."`
	Low    int   `json:"low" minimum:"1" maximum:"525600" doc:"Minutes allowed for low-priority tickets."`
}

// Minutes returns the target for priority p.
func (t SLATargets) Minutes(p Priority) int {
	switch p {
	case PriorityUrgent:
		return t.Urgent
	case PriorityHigh:
		return t.High
	case PriorityLow:
		return t.Low
	default:
		return t.Medium
	}
}

// SLAPolicy sets the first-response and resolution targets of the tickets
// it applies to. A ticket gets the policy that names its account, else the
// one for its account's tier, else the default policy.
type SLAPolicy struct {
	ID                string         `json:"id" example:"slp_01jd5v8zq3f6n9w2k4m7r8t0yb" doc:"Policy ID."`
	Name              string         `json:"name" example:"Enterprise"`
	IsDefault         bool           `json:"isDefault" doc:"The default policy applies to tickets that no other policy matches. Exactly one policy is the default."`
	Tier              string         `json:"tier" doc:"Account tier the policy applies to, or empty."`
	AccountIDs        pq.StringArray `json:"accountIds" gorm:"type:text[]" doc:"Accounts the policy applies to, whatever their tier."`
	BusinessHoursID   *string        `json:"businessHoursId" doc:"Business-hours schedule that business-time targets count in, or null."`
	WarnBeforeMinutes *int           `json:"warnBeforeMinutes" doc:"Minutes before a due time at which ticket.sla_warning is emitted, in the target's own clock, or null for no warning."`
	FirstResponse     SLATargets     `json:"firstResponse" gorm:"serializer:json" doc:"Time to the first public reply by an agent."`
	Resolution        SLATargets     `json:"resolution" gorm:"serializer:json" doc:"Time to resolution, not counting time in pending."`
	CreatedAt         time.Time      `json:"createdAt" gorm:"autoCreateTime:false"`
	UpdatedAt         time.Time      `json:"updatedAt" gorm:"autoUpdateTime:false"`
	DeletedAt         *time.Time     `json:"-"`
}

// TableName maps SLAPolicy to sla_policies.
func (SLAPolicy) TableName() string { return "sla_policies" }

// Targets returns the policy's targets for metric m.
func (p SLAPolicy) Targets(m Metric) SLATargets {
	if m == MetricFirstResponse {
		return p.FirstResponse
	}
	return p.Resolution
}

// OpeningHours is one interval of a weekly business-hours schedule, in the
// schedule's time zone.
type OpeningHours struct {
	Weekday string `json:"weekday" enum:"monday,tuesday,wednesday,thursday,friday,saturday,sunday"`
	Start   string `json:"start" pattern:"^[0-9]{2}:[0-9]{2}$" example:"09:00" doc:"Opening time, HH:MM."`
	End     string `json:"end" pattern:"^[0-9]{2}:[0-9]{2}$" example:"17:00" doc:"Closing time, HH:MM, after start; 24:00 is the end of the day."`
}

// Holiday is a local date on which a business-hours schedule is closed all
// day.
type Holiday struct {
	Date string `json:"date" pattern:"^[0-9]{4}-[0-9]{2}-[0-9]{2}$" example:"2026-12-25" doc:"Local date, YYYY-MM-DD."`
	Name string `json:"name,omitempty" maxLength:"200" example:"Christmas Day"`
}

// BusinessHours is a named weekly schedule of opening hours in one IANA
// time zone, with holidays.
type BusinessHours struct {
	ID        string         `json:"id" example:"bhr_01jd5v8zq3f6n9w2k4m7r8t0yb" doc:"Business-hours schedule ID."`
	Name      string         `json:"name" example:"Berlin office"`
	TimeZone  string         `json:"timeZone" example:"Europe/Berlin" doc:"IANA time zone in which the hours and holidays are read."`
	Hours     []OpeningHours `json:"hours" gorm:"serializer:json" doc:"Weekly opening hours. An overnight shift is two intervals: 22:00-24:00 and 00:00-06:00 on the next day."`
	Holidays  []Holiday      `json:"holidays" gorm:"serializer:json" doc:"Dates on which the schedule is closed."`
	CreatedAt time.Time      `json:"createdAt" gorm:"autoCreateTime:false"`
	UpdatedAt time.Time      `json:"updatedAt" gorm:"autoUpdateTime:false"`
}

// TicketSLA is the stored state of one SLA target of one ticket. The engine
// rewrites it in the transaction of every ticket change.
type TicketSLA struct {
	TicketID        string  `gorm:"primaryKey"`
	Metric          Metric  `gorm:"primaryKey"`
	PolicyID        string  // policy whose target applies
	TargetMinutes   int     // minutes allowed, in the clock below
	BusinessHoursID *string // schedule of a business-time target; nil for calendar time
	State           SLAState
	// DueAt is when the clock reaches the target: in the future while the
	// clock runs, and nil while it is paused with time left.
	DueAt *time.Time
	// WarnAt is when ticket.sla_warning is due, or nil without a warning.
	WarnAt     *time.Time
	AchievedAt *time.Time // when the target was met, on time or late
	BreachedAt *time.Time // the due time that was missed; set once, never cleared
	WarnedAt   *time.Time // when the warning was emitted; set once
	// RunningSince is the start of the current running stretch of the
	// clock, or nil while it is stopped.
	RunningSince *time.Time
	// CalendarUsedUS and BusinessUsedUS are the clock time used before
	// RunningSince (or in total, while stopped), in microseconds.
	CalendarUsedUS int64     `gorm:"column:calendar_used_us"`
	BusinessUsedUS int64     `gorm:"column:business_used_us"`
	UpdatedAt      time.Time `gorm:"autoUpdateTime:false"`
}

// TableName maps TicketSLA to ticket_sla.
func (TicketSLA) TableName() string { return "ticket_sla" }

// TableName maps BusinessHours to business_hours.
func (BusinessHours) TableName() string { return "business_hours" }
