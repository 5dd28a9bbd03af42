// Package outbox implements the transactional outbox: events are written in
// the same transaction as the change they describe, handed to the queue after
// the commit, and relayed later when the queue was unreachable.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/tasks"
)

// Event types.
const (
	TicketCreated  = "ticket.created"
	TicketUpdated  = "ticket.updated"
	TicketResolved = "ticket.resolved"
	MessageCreated = "message.created"
	AccountCreated = "account.created"

	// TicketSLAWarning and TicketSLABreach are emitted at most once per
	// ticket and SLA target.
	TicketSLAWarning = "ticket.sla_warning"
	TicketSLABreach  = "ticket.sla_breach"
)

// Types lists every event type a webhook endpoint can subscribe to.
var Types = []string{TicketCreated, TicketUpdated, TicketResolved, MessageCreated, AccountCreated, TicketSLAWarning, TicketSLABreach}

// Envelope is the JSON body of every event, and of every webhook delivery.
type Envelope struct {
	ID        string    `json:"id"`
	Event     string    `json:"event"`
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"`
}

// Append serializes an event of eventType carrying data and inserts it into
// the outbox within tx. The returned event must be passed to
// Dispatcher.Dispatch after tx commits.
func Append(tx *gorm.DB, now time.Time, eventType string, data any) (models.Event, error) {
	env := Envelope{
		ID:        models.NewID(models.PrefixEvent),
		Event:     eventType,
		Timestamp: now.UTC(),
		Data:      data,
	}
	body, err := json.Marshal(env)
	if err != nil {
		return models.Event{}, fmt.Errorf("encode %s event: %w", eventType, err)
	}

	evt := models.Event{ID: env.ID, Type: eventType, Body: string(body), CreatedAt: env.Timestamp}
	if err := tx.Create(&evt).Error; err != nil {
		return models.Event{}, fmt.Errorf("insert %s event: %w", eventType, err)
	}
	return evt, nil
}

// Enqueuer is the part of asynq.Client the dispatcher uses.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Dispatcher hands committed outbox events to the queue.
type Dispatcher struct {
	db      *gorm.DB
	queue   Enqueuer
	logger  *slog.Logger
	nowFunc func() time.Time

	// Timeout bounds one Dispatch call, so that an unreachable Redis delays
	// the API response by at most this long. The relay sends what it skips.
	Timeout time.Duration

	// RelayMinAge is the minimum age of an undispatched event that the relay
	// takes, which leaves the API's own dispatch time to finish first.
	RelayMinAge time.Duration

	// RelayBatch is the number of events the relay locks per transaction.
	RelayBatch int
}

// NewDispatcher returns a dispatcher that enqueues with queue and records
// dispatch times in db.
func NewDispatcher(db *gorm.DB, queue Enqueuer, logger *slog.Logger, nowFunc func() time.Time) *Dispatcher {
	if nowFunc == nil {
		nowFunc = time.Now
	}
	return &Dispatcher{
		db:          db,
		queue:       queue,
		logger:      logger,
		nowFunc:     nowFunc,
		Timeout:     2 * time.Second,
		RelayMinAge: time.Second,
		RelayBatch:  500,
	}
}

// Dispatch enqueues a fan-out task for each event and marks the ones the
// queue accepted as dispatched. It never fails: an event it could not hand
// over stays undispatched and the relay sends it later.
func (d *Dispatcher) Dispatch(ctx context.Context, events ...models.Event) {
	if len(events) == 0 {
		return
	}
	base := context.WithoutCancel(ctx)
	enqueueCtx, cancel := context.WithTimeout(base, d.Timeout)
	defer cancel()

	var sent []string
	for _, evt := range events {
		if err := d.enqueue(enqueueCtx, evt.ID); err != nil {
			d.logger.WarnContext(ctx, "event left for the outbox relay",
				slog.String("event_id", evt.ID),
				slog.String("err", err.Error()))
			break
		}
		sent = append(sent, evt.ID)
	}

	// The enqueue deadline may have run out, so marking what was sent gets a
	// deadline of its own. Otherwise the relay would send it again.
	markCtx, cancelMark := context.WithTimeout(base, d.Timeout)
	defer cancelMark()
	if err := d.markDispatched(d.db.WithContext(markCtx), sent); err != nil {
		d.logger.WarnContext(ctx, "mark events dispatched",
			slog.Int("count", len(sent)),
			slog.String("err", err.Error()))
	}
}

// Relay enqueues every event that has been undispatched for at least
// RelayMinAge and returns how many it handed over. Several relays may run at
// once: each locks its batch with SKIP LOCKED.
func (d *Dispatcher) Relay(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := d.relayBatch(ctx)
		total += n
		if err != nil {
			return total, err
		}
		if n < d.RelayBatch {
			return total, nil
		}
	}
}

func (d *Dispatcher) relayBatch(ctx context.Context) (int, error) {
	cutoff := d.nowFunc().Add(-d.RelayMinAge)
	sent := 0
	var enqueueErr error
	err := d.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var ids []string
		err := tx.Model(&models.Event{}).
			Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"}).
			Where("dispatched_at IS NULL AND created_at < ?", cutoff).
			Order("created_at").
			Limit(d.RelayBatch).
			Pluck("id", &ids).Error
		if err != nil {
			return fmt.Errorf("lock undispatched events: %w", err)
		}

		var done []string
		for _, id := range ids {
			if enqueueErr = d.enqueue(ctx, id); enqueueErr != nil {
				break
			}
			done = append(done, id)
		}
		if err := d.markDispatched(tx, done); err != nil {
			return err
		}
		sent = len(done)
		return nil
	})
	if err != nil {
		return 0, err
	}
	if enqueueErr != nil {
		// The events enqueued before the failure stay marked, because the
		// transaction committed them.
		return sent, fmt.Errorf("enqueue event fan-out: %w", enqueueErr)
	}
	return sent, nil
}

func (d *Dispatcher) enqueue(ctx context.Context, eventID string) error {
	_, err := d.queue.EnqueueContext(ctx, tasks.NewEventFanout(eventID))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return err
	}
	return nil
}

func (d *Dispatcher) markDispatched(tx *gorm.DB, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	err := tx.Model(&models.Event{}).
		Where("id IN ? AND dispatched_at IS NULL", ids).
		Update("dispatched_at", d.nowFunc().UTC()).Error
	if err != nil {
		return fmt.Errorf("mark events dispatched: %w", err)
	}
	return nil
}
