package helpdesk

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/idempotency"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/paging"
)

// NewMessage is the input of AddMessage.
type NewMessage struct {
	AuthorType models.AuthorType
	AuthorID   string // an agent ID; only for agent messages
	AuthorName string // defaults to the agent's name for agent messages
	Body       string
	Internal   bool
}

var messageSortKeys = map[string]string{"createdAt": "created_at"}

// AddMessage appends a message to ticket ticketID, bumps the ticket's
// updatedAt and emits message.created.
func (s *Service) AddMessage(ctx context.Context, ticketID string, in NewMessage) (models.Message, error) {
	msg := models.Message{
		ID:         models.NewID(models.PrefixMessage),
		TicketID:   ticketID,
		AuthorType: in.AuthorType,
		AuthorName: in.AuthorName,
		Body:       in.Body,
		Internal:   in.Internal,
	}

	err := s.commitHooked(ctx, func(tx *gorm.DB) ([]models.Event, hookCall, error) {
		var t models.Ticket
		if err := lockByID(tx, &t, "ticket", ticketID); err != nil {
			return nil, nil, err
		}
		// The time is read after the ticket lock is held, so that a reply
		// is never stamped before a change that committed ahead of it.
		now := s.now()
		msg.CreatedAt = now
		if err := resolveAuthor(tx, &msg, in); err != nil {
			return nil, nil, err
		}
		if err := tx.Create(&msg).Error; err != nil {
			return nil, nil, fmt.Errorf("insert message: %w", err)
		}
		if err := idempotency.RecordCreated(ctx, tx, msg.ID); err != nil {
			return nil, nil, err
		}
		err := tx.Model(&models.Ticket{}).Where("id = ?", ticketID).Update("updated_at", now).Error
		if err != nil {
			return nil, nil, fmt.Errorf("touch ticket: %w", err)
		}
		evt, err := outbox.Append(tx, now, outbox.MessageCreated, msg)
		if err != nil {
			return nil, nil, err
		}
		return []models.Event{evt}, s.ticketChanged(ticketID), nil
	})
	return msg, err
}

// resolveAuthor checks the author fields of in and fills msg's author ID and
// name.
func resolveAuthor(tx *gorm.DB, msg *models.Message, in NewMessage) error {
	if in.AuthorID == "" {
		if in.Internal && in.AuthorType == models.AuthorCustomer {
			return outpost.Invalid("body.internal", true, "customers cannot write internal notes; set internal to false or authorType to agent")
		}
		return nil
	}
	if in.AuthorType != models.AuthorAgent {
		return outpost.Invalid("body.authorId", in.AuthorID, "authorId names an agent, so authorType must be agent; omit authorId for %s messages", in.AuthorType)
	}
	var agent models.Agent
	err := tx.Take(&agent, "id = ?", in.AuthorID).Error
	if isNotFound(err) {
		return outpost.Invalid("body.authorId", in.AuthorID, "no agent has this ID; list agents with GET /api/agents")
	}
	if err != nil {
		return fmt.Errorf("load message author: %w", err)
	}
	msg.AuthorID = &agent.ID
	if msg.AuthorName == "" {
		msg.AuthorName = agent.Name
	}
	return nil
}

// ListMessages returns one page of ticket ticketID's messages, oldest first
// by default.
func (s *Service) ListMessages(ctx context.Context, ticketID string, p paging.Params) ([]models.Message, *string, error) {
	q, err := paging.New(p, messageSortKeys, "createdAt")
	if err != nil {
		return nil, nil, err
	}
	db := s.db.WithContext(ctx)
	var n int64
	if err := db.Model(&models.Ticket{}).Where("id = ?", ticketID).Count(&n).Error; err != nil {
		return nil, nil, fmt.Errorf("check ticket: %w", err)
	}
	if n == 0 {
		return nil, nil, outpost.NotFound("ticket", ticketID)
	}

	var rows []models.Message
	if err := q.Apply(db.Where("ticket_id = ?", ticketID), "messages").Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list messages: %w", err)
	}
	page, next := paging.Page(q, rows, func(m models.Message) (time.Time, string) { return m.CreatedAt, m.ID })
	return page, next, nil
}
