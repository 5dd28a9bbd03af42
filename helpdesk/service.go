// Package helpdesk holds the rules for accounts, agents, tickets and their
// messages. Every change commits together with its outbox events, and the
// events are handed to the queue after the commit.
package helpdesk

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/outposthq/outpost/models"
)

// Dispatcher hands committed outbox events to the queue. outbox.Dispatcher
// implements it.
type Dispatcher interface {
	Dispatch(ctx context.Context, events ...models.Event)
}

// TicketHook keeps state derived from tickets, such as SLA clocks, in step
// with ticket changes. sla.Engine implements it. Each method runs inside the
// transaction of the change, after the change is written, and returns the
// outbox events it appended and a function to run after the commit (or
// nil). An error rolls the change back.
type TicketHook interface {
	// TicketChanged runs when ticket ticketID was created or changed or got
	// a message.
	TicketChanged(tx *gorm.DB, ticketID string, now time.Time) ([]models.Event, func(context.Context), error)
	// AccountChanged runs when the tier of account accountID changed.
	AccountChanged(tx *gorm.DB, accountID string, now time.Time) ([]models.Event, func(context.Context), error)
}

// Service carries out helpdesk changes and queries.
type Service struct {
	db         *gorm.DB
	dispatcher Dispatcher
	nowFunc    func() time.Time
	hook       TicketHook
}

// Option configures a Service.
type Option func(*Service)

// WithTicketHook makes the service call h in the transaction of every
// ticket create, update and message add, and of every account tier change.
func WithTicketHook(h TicketHook) Option {
	return func(s *Service) { s.hook = h }
}

// NewService returns a Service that stores in db and dispatches events with
// dispatcher. nowFunc is the clock; nil means time.Now.
func NewService(db *gorm.DB, dispatcher Dispatcher, nowFunc func() time.Time, opts ...Option) *Service {
	if nowFunc == nil {
		nowFunc = time.Now
	}
	s := &Service{db: db, dispatcher: dispatcher, nowFunc: nowFunc}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// now returns the current time in UTC at the microsecond precision that
// PostgreSQL stores, so that a value returned at creation equals the value
// read back later.
func (s *Service) now() time.Time {
	return s.nowFunc().UTC().Truncate(time.Microsecond)
}

// commit runs fn in a transaction and dispatches the events it returns once
// the transaction has committed.
func (s *Service) commit(ctx context.Context, fn func(tx *gorm.DB) ([]models.Event, error)) error {
	return s.commitHooked(ctx, func(tx *gorm.DB) ([]models.Event, hookCall, error) {
		events, err := fn(tx)
		return events, nil, err
	})
}

// hookCall calls one method of the ticket hook inside a transaction.
type hookCall func(tx *gorm.DB, now time.Time) ([]models.Event, func(context.Context), error)

// commitHooked is commit for changes that the ticket hook follows: when fn
// returns a hook call, it runs in the same transaction after fn, its events
// are dispatched with fn's, and its after-commit function runs last.
func (s *Service) commitHooked(ctx context.Context, fn func(tx *gorm.DB) ([]models.Event, hookCall, error)) error {
	var events []models.Event
	var afterCommit func(context.Context)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var call hookCall
		var err error
		events, call, err = fn(tx)
		if err != nil || call == nil {
			return err
		}
		more, after, err := call(tx, s.now())
		if err != nil {
			return err
		}
		events = append(events, more...)
		afterCommit = after
		return nil
	})
	if err != nil {
		return err
	}
	s.dispatcher.Dispatch(ctx, events...)
	if afterCommit != nil {
		afterCommit(ctx)
	}
	return nil
}

// ticketChanged returns the hook call for a change to ticket id, or nil
// without a hook.
func (s *Service) ticketChanged(id string) hookCall {
	if s.hook == nil {
		return nil
	}
	return func(tx *gorm.DB, now time.Time) ([]models.Event, func(context.Context), error) {
		return s.hook.TicketChanged(tx, id, now)
	}
}

// accountChanged returns the hook call for a tier change of account id, or
// nil without a hook.
func (s *Service) accountChanged(id string) hookCall {
	if s.hook == nil {
		return nil
	}
	return func(tx *gorm.DB, now time.Time) ([]models.Event, func(context.Context), error) {
		return s.hook.AccountChanged(tx, id, now)
	}
}

func isNotFound(err error) bool { return errors.Is(err, gorm.ErrRecordNotFound) }
