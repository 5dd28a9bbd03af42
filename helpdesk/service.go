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

// Service carries out helpdesk changes and queries.
type Service struct {
	db         *gorm.DB
	dispatcher Dispatcher
	nowFunc    func() time.Time
}

// NewService returns a Service that stores in db and dispatches events with
// dispatcher. nowFunc is the clock; nil means time.Now.
func NewService(db *gorm.DB, dispatcher Dispatcher, nowFunc func() time.Time) *Service {
	if nowFunc == nil {
		nowFunc = time.Now
	}
	return &Service{db: db, dispatcher: dispatcher, nowFunc: nowFunc}
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
	var events []models.Event
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		events, err = fn(tx)
		return err
	})
	if err != nil {
		return err
	}
	s.dispatcher.Dispatch(ctx, events...)
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, gorm.ErrRecordNotFound) }
