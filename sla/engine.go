// Package sla is Outpost's SLA engine: policies, business-hours schedules,
// the first-response and resolution clock of every ticket, and the
// ticket.sla_warning and ticket.sla_breach events, each emitted once per
// ticket and target.
//
// The engine recomputes a ticket's clocks inside the transaction of every
// change to the ticket (helpdesk calls it as its TicketHook), so the ticket
// and its SLA state never disagree. After the commit it arms one delayed
// asynq task per due time. Breaches are marked by a conditional update in the
// same transaction as their outbox event, and a periodic sweep marks what a
// lost task missed.
package sla

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
)

// Dispatcher hands committed outbox events to the queue. outbox.Dispatcher
// implements it.
type Dispatcher interface {
	Dispatch(ctx context.Context, events ...models.Event)
}

// Enqueuer is the part of asynq.Client the engine uses to arm its tasks.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Engine keeps the SLA state of tickets and detects warnings and breaches.
type Engine struct {
	db         *gorm.DB
	queue      Enqueuer
	dispatcher Dispatcher
	logger     *slog.Logger
	nowFunc    func() time.Time

	// ArmTimeout bounds the enqueue of the detection tasks after a commit,
	// so that an unreachable Redis delays a request by at most this long.
	// The sweep arms or marks what was skipped.
	ArmTimeout time.Duration

	// SweepBatch is the number of rows one sweep transaction marks.
	SweepBatch int

	// ArmAhead is how far ahead the sweep arms the tasks of due times, which
	// repairs tasks lost before they were due. Set it above the sweep
	// interval.
	ArmAhead time.Duration

	// MaxEarly is how long before its due time a task may start and still
	// wait for it. Tasks are scheduled a second early (see tasks.slaLead),
	// and asynq rounds their time down to a whole second, so they start up
	// to two seconds early.
	MaxEarly time.Duration
}

// NewEngine returns an engine that stores in db, arms tasks with queue and
// dispatches the events of its tasks and sweeps with dispatcher. nowFunc is
// the clock; nil means time.Now.
func NewEngine(db *gorm.DB, queue Enqueuer, dispatcher Dispatcher, logger *slog.Logger, nowFunc func() time.Time) *Engine {
	if nowFunc == nil {
		nowFunc = time.Now
	}
	return &Engine{
		db:         db,
		queue:      queue,
		dispatcher: dispatcher,
		logger:     logger,
		nowFunc:    nowFunc,
		ArmTimeout: 2 * time.Second,
		SweepBatch: 500,
		ArmAhead:   2 * time.Minute,
		MaxEarly:   3 * time.Second,
	}
}

// now returns the current time in UTC at PostgreSQL's microsecond
// precision, like helpdesk.Service.
func (e *Engine) now() time.Time {
	return e.nowFunc().UTC().Truncate(time.Microsecond)
}

// metrics lists the targets every ticket has.
var metrics = []models.Metric{models.MetricFirstResponse, models.MetricResolution}

// timer is a detection task to arm after a commit.
type timer struct {
	ticketID string
	metric   models.Metric
	warning  bool
	at       time.Time
}

// outcome is the result of a recompute: the events appended in the
// transaction and the tasks to arm after it commits.
type outcome struct {
	events []models.Event
	timers []timer
}

func (o *outcome) add(other outcome) {
	o.events = append(o.events, other.events...)
	o.timers = append(o.timers, other.timers...)
}

// TicketChanged recomputes the SLA state of ticket ticketID inside tx, the
// transaction that created or changed the ticket or added a message to it.
// It returns the events it appended and a function that arms the detection
// tasks, to be called after the commit.
func (e *Engine) TicketChanged(tx *gorm.DB, ticketID string, now time.Time) ([]models.Event, func(context.Context), error) {
	out, err := e.recompute(tx, ticketID, now, scheduleCache{})
	if err != nil {
		return nil, nil, err
	}
	return out.events, e.armer(out.timers), nil
}

// AccountChanged recomputes, inside tx, the SLA state of the unfinished
// tickets of account accountID, whose tier changed.
func (e *Engine) AccountChanged(tx *gorm.DB, accountID string, now time.Time) ([]models.Event, func(context.Context), error) {
	var ids []string
	err := tx.Model(&models.Ticket{}).
		Where("account_id = ? AND status IN ?", accountID, []models.Status{models.StatusOpen, models.StatusPending}).
		Order("id").Pluck("id", &ids).Error
	if err != nil {
		return nil, nil, fmt.Errorf("list account tickets: %w", err)
	}
	out, err := e.recomputeAll(tx, ids, now)
	if err != nil {
		return nil, nil, err
	}
	return out.events, e.armer(out.timers), nil
}

// recomputeAll recomputes tickets ids in order. Callers pass them sorted, so
// that concurrent recomputes lock tickets in the same order.
func (e *Engine) recomputeAll(tx *gorm.DB, ids []string, now time.Time) (outcome, error) {
	var all outcome
	cache := scheduleCache{}
	for _, id := range ids {
		out, err := e.recompute(tx, id, now, cache)
		if err != nil {
			return all, err
		}
		all.add(out)
	}
	return all, nil
}

// recompute rebuilds both SLA rows of ticket id from the start of the
// ticket: it selects the policy, replays the status history and finds the
// first agent reply. A breach or warning whose time has come is marked and
// its event appended here, in tx, unless an earlier run already did.
func (e *Engine) recompute(tx *gorm.DB, id string, now time.Time, cache scheduleCache) (outcome, error) {
	var t models.Ticket
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).
		Select("id", "status", "priority", "account_id", "created_at").
		Take(&t, "id = ?", id).Error
	if err != nil {
		return outcome{}, fmt.Errorf("load ticket: %w", err)
	}
	timeline, err := loadTimeline(tx, t)
	if err != nil {
		return outcome{}, err
	}
	reply, err := firstReply(tx, id)
	if err != nil {
		return outcome{}, err
	}

	var existing []models.TicketSLA
	err = tx.Clauses(clause.Locking{Strength: "UPDATE"}).
		Where("ticket_id = ?", id).Order("metric").Find(&existing).Error
	if err != nil {
		return outcome{}, fmt.Errorf("lock ticket SLA: %w", err)
	}
	previous := map[models.Metric]*models.TicketSLA{}
	for i := range existing {
		previous[existing[i].Metric] = &existing[i]
	}
	policy, err := policyFor(tx, t, existing)
	if err != nil {
		return outcome{}, err
	}

	var out outcome
	rows := make([]models.TicketSLA, 0, len(metrics))
	for _, m := range metrics {
		in := metricInput{ticket: t, policy: policy, metric: m, timeline: timeline, reply: reply, previous: previous[m], now: now}
		row, o, err := e.evaluateMetric(tx, in, cache)
		if err != nil {
			return outcome{}, err
		}
		rows = append(rows, row)
		out.add(o)
	}
	err = tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "ticket_id"}, {Name: "metric"}},
		UpdateAll: true,
	}).Create(&rows).Error
	if err != nil {
		return outcome{}, fmt.Errorf("save ticket SLA: %w", err)
	}
	return out, nil
}

// metricInput is everything evaluateMetric reads.
type metricInput struct {
	ticket   models.Ticket
	policy   models.SLAPolicy
	metric   models.Metric
	timeline []statusChange
	reply    *time.Time
	previous *models.TicketSLA
	now      time.Time
}

// evaluateMetric computes one SLA row, and marks a breach or warning that is
// due with its event.
func (e *Engine) evaluateMetric(tx *gorm.DB, in metricInput, cache scheduleCache) (models.TicketSLA, outcome, error) {
	targets := in.policy.Targets(in.metric)
	row := models.TicketSLA{
		TicketID:      in.ticket.ID,
		Metric:        in.metric,
		PolicyID:      in.policy.ID,
		TargetMinutes: targets.Minutes(in.ticket.Priority),
		UpdatedAt:     in.now,
	}
	var count counter = calendar{}
	if targets.Clock == models.ClockBusiness {
		if in.policy.BusinessHoursID == nil {
			return row, outcome{}, fmt.Errorf("policy %s counts business time without a schedule", in.policy.ID)
		}
		schedule, err := cache.get(tx, *in.policy.BusinessHoursID)
		if err != nil {
			return row, outcome{}, err
		}
		count = schedule
		row.BusinessHoursID = in.policy.BusinessHoursID
	}

	var segs []segment
	var completed *time.Time
	if in.metric == models.MetricFirstResponse {
		// The first-response clock runs while the ticket is open or pending
		// and stops at the first public agent reply.
		segs = buildSegments(in.timeline, func(s models.Status) bool {
			return s == models.StatusOpen || s == models.StatusPending
		}, in.reply)
		completed = in.reply
	} else {
		// The resolution clock runs only while the ticket is open: pending
		// pauses it, and resolved or closed stops it until a reopen.
		segs = buildSegments(in.timeline, func(s models.Status) bool { return s == models.StatusOpen }, nil)
		// The clock stopped at the first of the trailing resolved and closed
		// entries: closing a resolved ticket does not move its resolution.
		done := func(s models.Status) bool { return s == models.StatusResolved || s == models.StatusClosed }
		for i := len(in.timeline) - 1; i >= 0 && done(in.timeline[i].Status); i-- {
			completed = &in.timeline[i].At
		}
	}

	var lead time.Duration
	if in.policy.WarnBeforeMinutes != nil {
		lead = time.Duration(*in.policy.WarnBeforeMinutes) * time.Minute
	}
	target := time.Duration(row.TargetMinutes) * time.Minute
	ev, err := evaluate(segs, count, target, lead)
	if errors.Is(err, ErrNoOpening) {
		// The schedule has too few opening hours to ever reach the target.
		// The ticket write goes on; the target keeps no due time, so it is
		// never breached, and the log says why.
		e.logger.Warn("SLA target unreachable on its schedule",
			slog.String("ticket_id", in.ticket.ID),
			slog.String("metric", string(in.metric)),
			slog.String("policy_id", in.policy.ID))
		ev, err = evaluation{}, nil
	}
	if err != nil {
		return row, outcome{}, fmt.Errorf("compute %s due time of ticket %s: %w", in.metric, in.ticket.ID, err)
	}

	row.RunningSince = ev.runningSince
	row.CalendarUsedUS = ev.calendarUsed.Microseconds()
	if row.BusinessHoursID != nil {
		row.BusinessUsedUS = ev.used.Microseconds()
	}
	row.AchievedAt = completed
	row.DueAt = truncate(ev.reached)
	if row.DueAt == nil && completed != nil {
		row.DueAt = truncate(ev.projected)
	}
	row.WarnAt = truncate(ev.warn)
	if in.previous != nil {
		row.BreachedAt = in.previous.BreachedAt
		row.WarnedAt = in.previous.WarnedAt
	}

	var out outcome
	late := ev.reached != nil && !ev.reached.After(in.now) && (completed == nil || completed.After(*ev.reached))
	// The previous row was running with its due time passed: the target was
	// missed before this change, whatever the new target says. Every status
	// change recomputes the row, so the clock ran until now.
	missed := in.previous != nil && in.previous.State == models.SLARunning && in.previous.BreachedAt == nil &&
		in.previous.DueAt != nil && !in.previous.DueAt.After(in.now)
	switch {
	case row.BreachedAt != nil:
		row.State = models.SLABreached
	case missed:
		row.State = models.SLABreached
		row.BreachedAt = in.previous.DueAt
		evt, err := appendBreach(tx, in.now, breachRow{
			TicketID: row.TicketID, Metric: row.Metric, DueAt: *in.previous.DueAt, PolicyID: in.previous.PolicyID,
		})
		if err != nil {
			return row, outcome{}, err
		}
		out.events = append(out.events, evt)
	case late:
		row.State = models.SLABreached
		row.BreachedAt = row.DueAt
		evt, err := appendBreach(tx, in.now, breachRow{TicketID: row.TicketID, Metric: row.Metric, DueAt: *row.DueAt, PolicyID: row.PolicyID})
		if err != nil {
			return row, outcome{}, err
		}
		out.events = append(out.events, evt)
	case completed != nil:
		row.State = models.SLAAchieved
	case ev.runningSince != nil:
		row.State = models.SLARunning
	default:
		row.State = models.SLAPaused
	}

	if row.WarnedAt == nil && row.BreachedAt == nil && completed == nil && row.WarnAt != nil && !row.WarnAt.After(in.now) {
		row.WarnedAt = &in.now
		evt, err := appendWarning(tx, in.now, warningRow{
			TicketID: row.TicketID, Metric: row.Metric, DueAt: row.DueAt, WarnAt: *row.WarnAt, PolicyID: row.PolicyID,
		})
		if err != nil {
			return row, outcome{}, err
		}
		out.events = append(out.events, evt)
	}

	out.timers = timersFor(row, in.previous)
	return row, out, nil
}

// timersFor returns the detection tasks that row needs and previous did not
// already have armed.
func timersFor(row models.TicketSLA, previous *models.TicketSLA) []timer {
	if row.State != models.SLARunning {
		return nil
	}
	var out []timer
	wasRunning := previous != nil && previous.State == models.SLARunning
	if row.DueAt != nil && (!wasRunning || !sameTime(previous.DueAt, row.DueAt)) {
		out = append(out, timer{ticketID: row.TicketID, metric: row.Metric, at: *row.DueAt})
	}
	if row.WarnAt != nil && row.WarnedAt == nil && (!wasRunning || !sameTime(previous.WarnAt, row.WarnAt)) {
		out = append(out, timer{ticketID: row.TicketID, metric: row.Metric, warning: true, at: *row.WarnAt})
	}
	return out
}

// selectPolicy returns the policy for a ticket of account accountID: the
// policy that names the account, else the one for the account's tier, else
// the default.
//
// NOTE: it reads the account and policies without locks. A ticket changed
// while a policy or tier change commits can keep the previous policy until
// its next change. Share locks here would deadlock with those changes,
// which lock policies or the account first and tickets second.
func selectPolicy(tx *gorm.DB, accountID string) (models.SLAPolicy, error) {
	var acc models.Account
	if err := tx.Select("id", "tier").Take(&acc, "id = ?", accountID).Error; err != nil {
		return models.SLAPolicy{}, fmt.Errorf("load ticket account: %w", err)
	}
	var p models.SLAPolicy
	err := tx.Raw(`
		SELECT * FROM sla_policies
		WHERE deleted_at IS NULL AND (account_ids @> ARRAY[?]::text[] OR (tier <> '' AND tier = ?) OR is_default)
		ORDER BY account_ids @> ARRAY[?]::text[] DESC, (tier <> '' AND tier = ?) DESC, is_default DESC, created_at
		LIMIT 1`, acc.ID, acc.Tier, acc.ID, acc.Tier).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return p, errors.New("select SLA policy: no default policy exists")
	}
	if err != nil {
		return p, fmt.Errorf("select SLA policy: %w", err)
	}
	return p, nil
}

// policyFor returns the policy that judges ticket t. A resolved or closed
// ticket keeps the policy its SLA rows were computed under, even if the
// policy was deleted since, so that a later message or edit does not judge
// finished work by today's rules. Any other ticket gets the policy that
// applies now.
func policyFor(tx *gorm.DB, t models.Ticket, existing []models.TicketSLA) (models.SLAPolicy, error) {
	finished := t.Status == models.StatusResolved || t.Status == models.StatusClosed
	if !finished || len(existing) == 0 {
		return selectPolicy(tx, t.AccountID)
	}
	var p models.SLAPolicy
	if err := tx.Take(&p, "id = ?", existing[0].PolicyID).Error; err != nil {
		return p, fmt.Errorf("load ticket's SLA policy: %w", err)
	}
	return p, nil
}

// loadTimeline returns the ticket's status history from its change log,
// oldest first. The first entry is the creation.
func loadTimeline(tx *gorm.DB, t models.Ticket) ([]statusChange, error) {
	var rows []struct {
		CreatedAt time.Time
		Status    models.Status
	}
	err := tx.Model(&models.TicketChange{}).
		Select("created_at, changes->'status'->>'to' AS status").
		Where("ticket_id = ? AND changes->'status' IS NOT NULL", t.ID).
		Order("created_at, id").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("load ticket status history: %w", err)
	}
	timeline := make([]statusChange, 0, len(rows)+1)
	for _, r := range rows {
		timeline = append(timeline, statusChange{At: r.CreatedAt, Status: r.Status})
	}
	if len(timeline) == 0 || timeline[len(timeline)-1].Status != t.Status {
		// NOTE: only tickets written outside helpdesk (bulk imports) lack
		// the history; their clocks count from creation in today's status.
		timeline = []statusChange{{At: t.CreatedAt, Status: t.Status}}
	}
	return timeline, nil
}

// firstReply returns when the first public message by a human agent was
// written, or nil. Customer, bot and system messages and internal notes
// never count.
func firstReply(tx *gorm.DB, ticketID string) (*time.Time, error) {
	var at sql.NullTime
	err := tx.Model(&models.Message{}).
		Select("min(created_at)").
		Where("ticket_id = ? AND author_type = ? AND author_id IS NOT NULL AND NOT internal", ticketID, models.AuthorAgent).
		Row().Scan(&at)
	if err != nil {
		return nil, fmt.Errorf("find first agent reply: %w", err)
	}
	if !at.Valid {
		return nil, nil
	}
	v := at.Time.UTC()
	return &v, nil
}

// scheduleCache compiles each schedule once per recompute batch.
type scheduleCache map[string]*Schedule

func (c scheduleCache) get(tx *gorm.DB, id string) (*Schedule, error) {
	if s, ok := c[id]; ok {
		return s, nil
	}
	var bh models.BusinessHours
	if err := tx.Take(&bh, "id = ?", id).Error; err != nil {
		return nil, fmt.Errorf("load business hours %s: %w", id, err)
	}
	s, err := Compile(bh)
	if err != nil {
		// A stored schedule passed validation, so this is not the caller's
		// input error; %v keeps it from mapping to a 422.
		return nil, fmt.Errorf("compile business hours %s: %v", id, err)
	}
	c[id] = s
	return s, nil
}

func truncate(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC().Truncate(time.Microsecond)
	return &v
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// breachRow identifies a breached target, as the breach event carries it.
type breachRow struct {
	TicketID string
	Metric   models.Metric
	DueAt    time.Time
	PolicyID string
}

// warningRow identifies a target that reached its warning time.
type warningRow struct {
	TicketID string
	Metric   models.Metric
	DueAt    *time.Time
	WarnAt   time.Time
	PolicyID string
}

// BreachData is the data of a ticket.sla_breach event.
type BreachData struct {
	TicketID string        `json:"ticketId"`
	Metric   models.Metric `json:"metric"`
	DueAt    time.Time     `json:"dueAt"`
	PolicyID string        `json:"policyId"`
}

// WarningData is the data of a ticket.sla_warning event.
type WarningData struct {
	TicketID string        `json:"ticketId"`
	Metric   models.Metric `json:"metric"`
	DueAt    *time.Time    `json:"dueAt"`
	WarnAt   time.Time     `json:"warnAt"`
	PolicyID string        `json:"policyId"`
}

func appendBreach(tx *gorm.DB, now time.Time, r breachRow) (models.Event, error) {
	return outbox.Append(tx, now, outbox.TicketSLABreach, BreachData{
		TicketID: r.TicketID, Metric: r.Metric, DueAt: r.DueAt.UTC(), PolicyID: r.PolicyID,
	})
}

func appendWarning(tx *gorm.DB, now time.Time, r warningRow) (models.Event, error) {
	return outbox.Append(tx, now, outbox.TicketSLAWarning, WarningData{
		TicketID: r.TicketID, Metric: r.Metric, DueAt: truncate(r.DueAt), WarnAt: r.WarnAt.UTC(), PolicyID: r.PolicyID,
	})
}

// Backfill computes the SLA state of every open or pending ticket that has
// none, such as the tickets written before the SLA migration, in
// transactions of batch tickets. It returns the number of tickets computed.
func (e *Engine) Backfill(ctx context.Context, batch int) (int, error) {
	total := 0
	for {
		var ids []string
		err := e.commit(ctx, func(tx *gorm.DB) (outcome, error) {
			err := tx.Model(&models.Ticket{}).
				Where("status IN ? AND NOT EXISTS (SELECT 1 FROM ticket_sla s WHERE s.ticket_id = tickets.id)",
					[]models.Status{models.StatusOpen, models.StatusPending}).
				Order("id").Limit(batch).Pluck("id", &ids).Error
			if err != nil {
				return outcome{}, fmt.Errorf("list tickets without SLA state: %w", err)
			}
			return e.recomputeAll(tx, ids, e.now())
		})
		total += len(ids)
		if err != nil || len(ids) < batch {
			return total, err
		}
	}
}
