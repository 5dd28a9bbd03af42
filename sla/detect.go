package sla

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/tasks"
)

// armer returns a function that enqueues the detection tasks of timers, or
// nil when there are none. An enqueue that fails is logged and left to the
// sweep, which arms due times that come within ArmAhead and marks any that
// have passed.
func (e *Engine) armer(timers []timer) func(context.Context) {
	if len(timers) == 0 {
		return nil
	}
	return func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.ArmTimeout)
		defer cancel()
		for _, tm := range timers {
			if err := e.arm(ctx, tm); err != nil {
				e.logger.WarnContext(ctx, "SLA task left for the sweep",
					slog.String("ticket_id", tm.ticketID),
					slog.String("metric", string(tm.metric)),
					slog.Time("at", tm.at),
					slog.String("err", err.Error()))
				return
			}
		}
	}
}

func (e *Engine) arm(ctx context.Context, tm timer) error {
	task := tasks.NewSLABreach(tm.ticketID, string(tm.metric), tm.at)
	if tm.warning {
		task = tasks.NewSLAWarning(tm.ticketID, string(tm.metric), tm.at)
	}
	_, err := e.queue.EnqueueContext(ctx, task)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return err
	}
	return nil
}

// markBreachSQL marks given targets breached. Its WHERE clause is the
// exactly-once guard: a row is marked only while it runs, unmarked and due,
// and PostgreSQL re-checks the clause after waiting for a concurrent
// writer's lock, so two concurrent markers update it once between them.
const markBreachSQL = `
	UPDATE ticket_sla s SET state = 'breached', breached_at = s.due_at, updated_at = @now
	FROM due
	WHERE s.ticket_id = due.ticket_id AND s.metric = due.metric
		AND s.state = 'running' AND s.breached_at IS NULL AND s.due_at <= @now
	RETURNING s.ticket_id, s.metric, s.due_at, s.policy_id`

// markWarningSQL is markBreachSQL for warnings. A warning whose due time
// has also passed is not emitted, because the breach supersedes it.
const markWarningSQL = `
	UPDATE ticket_sla s SET warned_at = @now, updated_at = @now
	FROM due
	WHERE s.ticket_id = due.ticket_id AND s.metric = due.metric
		AND s.state = 'running' AND s.warned_at IS NULL AND s.warn_at <= @now AND s.due_at > @now
	RETURNING s.ticket_id, s.metric, s.due_at, s.warn_at, s.policy_id`

// CheckBreach marks the breach of ticketID's metric target if it still
// runs with due time due and that time has come, and emits
// ticket.sla_breach in the same transaction. It reports whether it marked
// the breach. A target that finished, moved its due time or was already
// marked is left alone, so running the task any number of times emits at
// most one event.
func (e *Engine) CheckBreach(ctx context.Context, ticketID string, metric models.Metric, due time.Time) (bool, error) {
	if err := e.waitFor(ctx, due); err != nil {
		return false, err
	}
	now := e.now()
	// SKIP LOCKED: a row locked by a ticket change is left to that change,
	// which marks a passed due time itself, so the task never holds a
	// worker waiting for a long recompute. NOTE: a change that locked the
	// row just before the due time leaves the breach to the next sweep, up
	// to one sweep interval late.
	query := `WITH due AS (
		SELECT ticket_id, metric FROM ticket_sla
		WHERE ticket_id = @ticket AND metric = @metric AND due_at = @at
		FOR UPDATE SKIP LOCKED
	)` + markBreachSQL
	n, err := e.markBreaches(ctx, query, map[string]any{"now": now, "ticket": ticketID, "metric": metric, "at": due.UTC()})
	return n > 0, err
}

// CheckWarning emits ticket.sla_warning for ticketID's metric target if it
// still runs with warning time warnAt, has not warned and is not yet due.
// It reports whether it emitted the warning.
func (e *Engine) CheckWarning(ctx context.Context, ticketID string, metric models.Metric, warnAt time.Time) (bool, error) {
	if err := e.waitFor(ctx, warnAt); err != nil {
		return false, err
	}
	now := e.now()
	query := `WITH due AS (
		SELECT ticket_id, metric FROM ticket_sla
		WHERE ticket_id = @ticket AND metric = @metric AND warn_at = @at
		FOR UPDATE SKIP LOCKED
	)` + markWarningSQL
	n, err := e.markWarnings(ctx, query, map[string]any{"now": now, "ticket": ticketID, "metric": metric, "at": warnAt.UTC()})
	return n > 0, err
}

// waitFor waits until the engine's clock reaches at, when at is at most
// MaxEarly ahead. It returns an error, so that asynq retries the task
// later, when at is further ahead.
func (e *Engine) waitFor(ctx context.Context, at time.Time) error {
	wait := at.Sub(e.now())
	if wait <= 0 {
		return nil
	}
	if wait > e.MaxEarly {
		return fmt.Errorf("task started %s before its time %s; check that the clocks of the API and worker hosts agree", wait, at.UTC().Format(time.RFC3339Nano))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// markBreaches runs a markBreachSQL query and appends one breach event per
// marked row in the same transaction, then dispatches the events. It
// returns the number of rows marked.
func (e *Engine) markBreaches(ctx context.Context, query string, args map[string]any) (int, error) {
	return markAndEmit(ctx, e, "breaches", query, args, appendBreach)
}

// markWarnings is markBreaches for markWarningSQL queries.
func (e *Engine) markWarnings(ctx context.Context, query string, args map[string]any) (int, error) {
	return markAndEmit(ctx, e, "warnings", query, args, appendWarning)
}

// markAndEmit runs query, which marks rows and returns them, and appends
// the event for each row with appendEvent, all in one transaction. It then
// dispatches the events.
func markAndEmit[R any](ctx context.Context, e *Engine, what, query string, args map[string]any,
	appendEvent func(*gorm.DB, time.Time, R) (models.Event, error)) (int, error) {
	now := args["now"].(time.Time)
	var events []models.Event
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []R
		if err := tx.Raw(query, args).Scan(&rows).Error; err != nil {
			return fmt.Errorf("mark SLA %s: %w", what, err)
		}
		for _, r := range rows {
			evt, err := appendEvent(tx, now, r)
			if err != nil {
				return err
			}
			events = append(events, evt)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	e.dispatcher.Dispatch(ctx, events...)
	return len(events), nil
}

// SweepResult counts what one sweep did.
type SweepResult struct {
	Breaches int // targets marked breached
	Warnings int // warnings emitted
	Armed    int // due and warning times within ArmAhead whose task was enqueued or already armed
}

// Sweep marks every running target whose due time has passed and emits
// every warning whose time has passed, in batches of SweepBatch rows that
// each commit with their events. Then it arms the tasks of due and warning
// times within ArmAhead. Several sweeps may run at once: each locks its
// batch with SKIP LOCKED, and the conditional update marks a row once.
func (e *Engine) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	now := e.now()
	args := map[string]any{"now": now, "batch": e.SweepBatch}

	breachQuery := `WITH due AS (
		SELECT ticket_id, metric FROM ticket_sla
		WHERE state = 'running' AND due_at <= @now
		ORDER BY due_at LIMIT @batch
		FOR UPDATE SKIP LOCKED
	)` + markBreachSQL
	for {
		n, err := e.markBreaches(ctx, breachQuery, args)
		res.Breaches += n
		if err != nil {
			return res, err
		}
		if n < e.SweepBatch {
			break
		}
	}

	warningQuery := `WITH due AS (
		SELECT ticket_id, metric FROM ticket_sla
		WHERE state = 'running' AND warned_at IS NULL AND warn_at <= @now AND due_at > @now
		ORDER BY warn_at LIMIT @batch
		FOR UPDATE SKIP LOCKED
	)` + markWarningSQL
	for {
		n, err := e.markWarnings(ctx, warningQuery, args)
		res.Warnings += n
		if err != nil {
			return res, err
		}
		if n < e.SweepBatch {
			break
		}
	}

	armed, err := e.armUpcoming(ctx, now)
	res.Armed = armed
	return res, err
}

// armUpcoming enqueues the tasks of the running targets whose due or
// warning time lies within ArmAhead, at most SweepBatch of each. Tasks that
// are already armed keep their TaskID and are not enqueued again.
func (e *Engine) armUpcoming(ctx context.Context, now time.Time) (int, error) {
	horizon := now.Add(e.ArmAhead)
	var due []models.TicketSLA
	err := e.db.WithContext(ctx).Select("ticket_id", "metric", "due_at").
		Where("state = 'running' AND due_at > ? AND due_at <= ?", now, horizon).
		Order("due_at").Limit(e.SweepBatch).Find(&due).Error
	if err != nil {
		return 0, fmt.Errorf("list upcoming SLA due times: %w", err)
	}
	var warn []models.TicketSLA
	err = e.db.WithContext(ctx).Select("ticket_id", "metric", "warn_at").
		Where("state = 'running' AND warned_at IS NULL AND warn_at > ? AND warn_at <= ?", now, horizon).
		Order("warn_at").Limit(e.SweepBatch).Find(&warn).Error
	if err != nil {
		return 0, fmt.Errorf("list upcoming SLA warning times: %w", err)
	}

	armed := 0
	for _, r := range due {
		if err := e.arm(ctx, timer{ticketID: r.TicketID, metric: r.Metric, at: *r.DueAt}); err != nil {
			return armed, fmt.Errorf("arm SLA breach task: %w", err)
		}
		armed++
	}
	for _, r := range warn {
		if err := e.arm(ctx, timer{ticketID: r.TicketID, metric: r.Metric, warning: true, at: *r.WarnAt}); err != nil {
			return armed, fmt.Errorf("arm SLA warning task: %w", err)
		}
		armed++
	}
	return armed, nil
}
