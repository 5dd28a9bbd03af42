package helpdesk

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/idempotency"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/paging"
)

// NewTicket is the input of CreateTicket. New tickets are open.
type NewTicket struct {
	Title       string
	Description string
	Priority    models.Priority
	Source      models.Source
	AccountID   string
	AssigneeID  string // empty leaves the ticket unassigned
	Tags        []string
	Requester   models.Requester
}

// TicketPatch is the input of UpdateTicket. Unset fields keep their value;
// AssigneeID set to null unassigns the ticket.
type TicketPatch struct {
	Title       outpost.Field[string]
	Description outpost.Field[string]
	Status      outpost.Field[models.Status]
	Priority    outpost.Field[models.Priority]
	AccountID   outpost.Field[string]
	AssigneeID  outpost.Field[string]
	Tags        outpost.Field[[]string]
}

// TicketDetail is a ticket with its account, assignee, conversation and
// change history.
type TicketDetail struct {
	models.Ticket
	Account  models.Account        `json:"account"`
	Assignee *models.Agent         `json:"assignee" doc:"The assigned agent, or null."`
	Messages []models.Message      `json:"messages" doc:"The conversation, oldest first."`
	History  []models.TicketChange `json:"history" doc:"Changes to the ticket, oldest first; the first entry records its creation."`
}

// TicketUpdate is the data of a ticket.updated event: the ticket after the
// change and the fields that changed.
type TicketUpdate struct {
	models.Ticket
	Changes map[string]models.FieldChange `json:"changes"`
}

// TicketFilter narrows ListTickets. Empty fields do not filter.
type TicketFilter struct {
	Statuses      []models.Status
	Priorities    []models.Priority
	Sources       []models.Source
	AccountID     string
	AssigneeID    string
	Tag           string
	Query         string
	CreatedAfter  time.Time
	CreatedBefore time.Time
}

var ticketSortKeys = map[string]string{"createdAt": "created_at", "updatedAt": "updated_at"}

// CreateTicket stores a new open ticket and emits ticket.created. actor
// names who made the request, for the change history.
func (s *Service) CreateTicket(ctx context.Context, in NewTicket, actor string) (models.Ticket, error) {
	now := s.now()
	t := models.Ticket{
		ID:          models.NewID(models.PrefixTicket),
		Title:       in.Title,
		Description: in.Description,
		Status:      models.StatusOpen,
		Priority:    in.Priority,
		Source:      in.Source,
		AccountID:   in.AccountID,
		Tags:        models.UniqueTrimmed(in.Tags),
		Requester:   in.Requester,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	if in.AssigneeID != "" {
		t.AssigneeID = &in.AssigneeID
	}

	err := s.commitHooked(ctx, func(tx *gorm.DB) ([]models.Event, hookCall, error) {
		if err := checkAccount(tx, t.AccountID); err != nil {
			return nil, nil, err
		}
		if err := checkAssignee(tx, in.AssigneeID); err != nil {
			return nil, nil, err
		}
		if err := tx.Create(&t).Error; err != nil {
			return nil, nil, fmt.Errorf("insert ticket: %w", err)
		}
		if err := idempotency.RecordCreated(ctx, tx, t.ID); err != nil {
			return nil, nil, err
		}
		created := map[string]models.FieldChange{"status": {From: nil, To: t.Status}}
		if err := insertChange(tx, t.ID, actor, created, now); err != nil {
			return nil, nil, err
		}
		evt, err := outbox.Append(tx, now, outbox.TicketCreated, t)
		if err != nil {
			return nil, nil, err
		}
		return []models.Event{evt}, s.ticketChanged(t.ID), nil
	})
	return t, err
}

// UpdateTicket applies patch to ticket id, records the change in the
// ticket's history and emits ticket.updated, plus ticket.resolved when the
// ticket moved to resolved, or to closed from open or pending. A patch that
// changes nothing emits nothing.
func (s *Service) UpdateTicket(ctx context.Context, id string, patch TicketPatch, actor string) (models.Ticket, error) {
	var t models.Ticket
	err := s.commitHooked(ctx, func(tx *gorm.DB) ([]models.Event, hookCall, error) {
		if err := lockByID(tx, &t, "ticket", id); err != nil {
			return nil, nil, err
		}
		now := s.now()
		changes, err := applyTicketPatch(tx, &t, patch, now)
		if err != nil || len(changes) == 0 {
			return nil, nil, err
		}

		t.UpdatedAt = now
		if err := tx.Save(&t).Error; err != nil {
			return nil, nil, fmt.Errorf("save ticket: %w", err)
		}
		if err := insertChange(tx, t.ID, actor, changes, now); err != nil {
			return nil, nil, err
		}

		evt, err := outbox.Append(tx, now, outbox.TicketUpdated, TicketUpdate{Ticket: t, Changes: changes})
		if err != nil {
			return nil, nil, err
		}
		events := []models.Event{evt}
		// A ticket closed without being resolved first is resolved by the
		// same change, so ticket.resolved subscribers hear of it too.
		if c, ok := changes["status"]; ok && (c.To == models.StatusResolved || c.From != models.StatusResolved && c.To == models.StatusClosed) {
			evt, err := outbox.Append(tx, now, outbox.TicketResolved, t)
			if err != nil {
				return nil, nil, err
			}
			events = append(events, evt)
		}
		return events, s.ticketChanged(t.ID), nil
	})
	return t, err
}

// applyTicketPatch changes t in place and returns the changed fields with
// their old and new values.
func applyTicketPatch(tx *gorm.DB, t *models.Ticket, p TicketPatch, now time.Time) (map[string]models.FieldChange, error) {
	changes := map[string]models.FieldChange{}
	record := func(field string, from, to any) { changes[field] = models.FieldChange{From: from, To: to} }

	if p.Title.Set && p.Title.Value != t.Title {
		record("title", t.Title, p.Title.Value)
		t.Title = p.Title.Value
	}
	if p.Description.Set && p.Description.Value != t.Description {
		record("description", t.Description, p.Description.Value)
		t.Description = p.Description.Value
	}
	if p.Priority.Set && p.Priority.Value != t.Priority {
		record("priority", t.Priority, p.Priority.Value)
		t.Priority = p.Priority.Value
	}
	if p.Tags.Set {
		tags := models.UniqueTrimmed(p.Tags.Value)
		if !slices.Equal(tags, t.Tags) {
			record("tags", t.Tags, tags)
			t.Tags = tags
		}
	}
	if p.AccountID.Set && p.AccountID.Value != t.AccountID {
		if err := checkAccount(tx, p.AccountID.Value); err != nil {
			return nil, err
		}
		record("accountId", t.AccountID, p.AccountID.Value)
		t.AccountID = p.AccountID.Value
	}
	if p.AssigneeID.Set {
		var next *string
		if !p.AssigneeID.Null {
			next = &p.AssigneeID.Value
		}
		if !equalPtr(t.AssigneeID, next) {
			if next != nil {
				if err := checkAssignee(tx, *next); err != nil {
					return nil, err
				}
			}
			record("assigneeId", t.AssigneeID, next)
			t.AssigneeID = next
		}
	}
	if p.Status.Set && p.Status.Value != t.Status {
		record("status", t.Status, p.Status.Value)
		setStatus(t, p.Status.Value, now)
	}
	return changes, nil
}

// setStatus moves t to status and keeps resolvedAt and closedAt in step: a
// ticket that leaves resolved or closed is reopened and loses the stamp.
func setStatus(t *models.Ticket, status models.Status, now time.Time) {
	t.Status = status
	switch status {
	case models.StatusResolved:
		t.ResolvedAt = &now
		t.ClosedAt = nil
	case models.StatusClosed:
		if t.ResolvedAt == nil {
			t.ResolvedAt = &now
		}
		t.ClosedAt = &now
	default:
		t.ResolvedAt = nil
		t.ClosedAt = nil
	}
}

// GetTicket returns ticket id with its account, assignee, messages and
// history.
func (s *Service) GetTicket(ctx context.Context, id string) (TicketDetail, error) {
	db := s.db.WithContext(ctx)
	var d TicketDetail
	if err := db.Take(&d.Ticket, "id = ?", id).Error; err != nil {
		if isNotFound(err) {
			return d, outpost.NotFound("ticket", id)
		}
		return d, fmt.Errorf("load ticket: %w", err)
	}
	if err := db.Take(&d.Account, "id = ?", d.AccountID).Error; err != nil {
		return d, fmt.Errorf("load ticket account: %w", err)
	}
	if d.AssigneeID != nil {
		d.Assignee = &models.Agent{}
		if err := db.Take(d.Assignee, "id = ?", *d.AssigneeID).Error; err != nil {
			return d, fmt.Errorf("load ticket assignee: %w", err)
		}
	}
	d.Messages = []models.Message{}
	if err := db.Where("ticket_id = ?", id).Order("created_at, id").Find(&d.Messages).Error; err != nil {
		return d, fmt.Errorf("load ticket messages: %w", err)
	}
	d.History = []models.TicketChange{}
	if err := db.Where("ticket_id = ?", id).Order("created_at, id").Find(&d.History).Error; err != nil {
		return d, fmt.Errorf("load ticket history: %w", err)
	}
	return d, nil
}

// ListTickets returns one page of tickets that match f and the next page's
// cursor. The default order is newest first.
func (s *Service) ListTickets(ctx context.Context, f TicketFilter, p paging.Params) ([]models.Ticket, *string, error) {
	q, err := paging.New(p, ticketSortKeys, "-createdAt")
	if err != nil {
		return nil, nil, err
	}
	db := filterTickets(s.db.WithContext(ctx).Model(&models.Ticket{}), f)
	var rows []models.Ticket
	if err := q.Apply(db, "tickets").Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list tickets: %w", err)
	}
	page, next := paging.Page(q, rows, func(t models.Ticket) (time.Time, string) {
		if q.SortColumn() == "updatedAt" {
			return t.UpdatedAt, t.ID
		}
		return t.CreatedAt, t.ID
	})
	return page, next, nil
}

// filterTickets adds f's conditions to db. Each condition has an index in
// the schema: the text search matches the trigram index on title and
// description, and the tag filter the GIN index on tags.
func filterTickets(db *gorm.DB, f TicketFilter) *gorm.DB {
	if len(f.Statuses) > 0 {
		db = db.Where("status IN ?", f.Statuses)
	}
	if len(f.Priorities) > 0 {
		db = db.Where("priority IN ?", f.Priorities)
	}
	if len(f.Sources) > 0 {
		db = db.Where("source IN ?", f.Sources)
	}
	if f.AccountID != "" {
		db = db.Where("account_id = ?", f.AccountID)
	}
	if f.AssigneeID != "" {
		db = db.Where("assignee_id = ?", f.AssigneeID)
	}
	if f.Tag != "" {
		db = db.Where("tags @> ARRAY[?]::text[]", f.Tag)
	}
	if f.Query != "" {
		db = db.Where("(title || ' ' || description) ILIKE ?", "%"+escapeLike(f.Query)+"%")
	}
	if !f.CreatedAfter.IsZero() {
		db = db.Where("created_at >= ?", f.CreatedAfter)
	}
	if !f.CreatedBefore.IsZero() {
		db = db.Where("created_at < ?", f.CreatedBefore)
	}
	return db
}

func checkAccount(tx *gorm.DB, id string) error {
	var n int64
	if err := tx.Model(&models.Account{}).Where("id = ?", id).Count(&n).Error; err != nil {
		return fmt.Errorf("check account: %w", err)
	}
	if n == 0 {
		return outpost.Invalid("body.accountId", id, "no account has this ID; create the account with POST /api/accounts first")
	}
	return nil
}

func checkAssignee(tx *gorm.DB, id string) error {
	if id == "" {
		return nil
	}
	var agent models.Agent
	err := tx.Select("id", "active").Take(&agent, "id = ?", id).Error
	if isNotFound(err) {
		return outpost.Invalid("body.assigneeId", id, "no agent has this ID; list agents with GET /api/agents")
	}
	if err != nil {
		return fmt.Errorf("check assignee: %w", err)
	}
	if !agent.Active {
		return outpost.Invalid("body.assigneeId", id, "agent is inactive; reactivate the agent or choose an active one")
	}
	return nil
}

func insertChange(tx *gorm.DB, ticketID, actor string, changes map[string]models.FieldChange, now time.Time) error {
	raw, err := json.Marshal(changes)
	if err != nil {
		return fmt.Errorf("encode ticket change: %w", err)
	}
	c := models.TicketChange{
		ID:        models.NewID(models.PrefixChange),
		TicketID:  ticketID,
		Actor:     actor,
		Changes:   raw,
		CreatedAt: now,
	}
	if err := tx.Create(&c).Error; err != nil {
		return fmt.Errorf("insert ticket change: %w", err)
	}
	return nil
}

func equalPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// escapeLike escapes the LIKE wildcards in s so that it matches literally.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
