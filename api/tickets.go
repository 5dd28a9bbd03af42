package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/paging"
	"github.com/outposthq/outpost/sla"
)

// TicketDetailOutput is a ticket with its account, assignee, conversation,
// history and SLA state.
type TicketDetailOutput struct {
	helpdesk.TicketDetail
	SLA *sla.TicketSLA `json:"sla" doc:"SLA policy and targets, or null for a ticket without SLA state (written before the SLA engine existed)."`
}

// TicketListItem is a ticket in a list, with its SLA state.
type TicketListItem struct {
	models.Ticket
	SLA *sla.TicketSLA `json:"sla" doc:"SLA policy and targets, or null for a ticket without SLA state."`
}

// RequesterInput identifies the person who raised a ticket.
type RequesterInput struct {
	Name   string `json:"name,omitempty" maxLength:"200" doc:"Name of the person who raised the ticket."`
	Email  string `json:"email,omitempty" maxLength:"320" format:"email" doc:"Email address."`
	Handle string `json:"handle,omitempty" maxLength:"200" doc:"Handle on the source channel, such as a Discord or GitHub user name."`
}

// CreateTicketInput is the request of create-ticket.
type CreateTicketInput struct {
	Body struct {
		Title       string          `json:"title" minLength:"1" maxLength:"300" example:"Cannot export invoices"`
		Description string          `json:"description,omitempty" maxLength:"50000"`
		Source      models.Source   `json:"source" enum:"web,email,discord,slack,teams,github,api,phone,chat" doc:"Channel the ticket arrived through."`
		Priority    models.Priority `json:"priority,omitempty" enum:"low,medium,high,urgent" default:"medium"`
		AccountID   string          `json:"accountId" minLength:"1" example:"acc_01jd5v8zq3f6n9w2k4m7r8t0yb" doc:"Account of the requester; it must exist."`
		AssigneeID  string          `json:"assigneeId,omitempty" doc:"Active agent to assign the ticket to."`
		Tags        []string        `json:"tags,omitempty" maxItems:"20" maxLength:"100" doc:"Labels of up to 100 characters each; blanks and repeats are dropped." example:"[\"billing\"]"`
		Requester   *RequesterInput `json:"requester,omitempty"`
	}
}

// UpdateTicketInput is the request of update-ticket, a JSON merge patch.
type UpdateTicketInput struct {
	ID   string `path:"id" doc:"Ticket ID."`
	Body struct {
		Title       Optional[string]          `json:"title,omitempty" minLength:"1" maxLength:"300"`
		Description Optional[string]          `json:"description,omitempty" maxLength:"50000"`
		Status      Optional[models.Status]   `json:"status,omitempty" enum:"open,pending,resolved,closed" doc:"Moving to resolved, or to closed from open or pending, emits ticket.resolved; leaving resolved or closed reopens the ticket."`
		Priority    Optional[models.Priority] `json:"priority,omitempty" enum:"low,medium,high,urgent"`
		AccountID   Optional[string]          `json:"accountId,omitempty" minLength:"1"`
		AssigneeID  Nullable[string]          `json:"assigneeId,omitempty" nullable:"true" minLength:"1" doc:"Agent to assign, or null to unassign."`
		Tags        Optional[[]string]        `json:"tags,omitempty" maxItems:"20" maxLength:"100"`
	}
}

// ListTicketsInput is the request of list-tickets.
type ListTicketsInput struct {
	ListParams
	Sort          string            `query:"sort" enum:"createdAt,-createdAt,updatedAt,-updatedAt" default:"-createdAt" doc:"Order; a leading - sorts descending."`
	Status        []models.Status   `query:"status" enum:"open,pending,resolved,closed" doc:"Statuses to include, comma-separated."`
	Priority      []models.Priority `query:"priority" enum:"low,medium,high,urgent" doc:"Priorities to include, comma-separated."`
	Source        []models.Source   `query:"source" enum:"web,email,discord,slack,teams,github,api,phone,chat" doc:"Sources to include, comma-separated."`
	AccountID     string            `query:"accountId"`
	AssigneeID    string            `query:"assigneeId"`
	Tag           string            `query:"tag" doc:"Only tickets with this tag."`
	Q             string            `query:"q" maxLength:"200" doc:"Text that the title or description contains, ignoring case."`
	CreatedAfter  time.Time         `query:"createdAfter" doc:"Only tickets created at or after this time (RFC 3339)."`
	CreatedBefore time.Time         `query:"createdBefore" doc:"Only tickets created before this time (RFC 3339)."`
}

// IDInput addresses one record by its ID.
type IDInput struct {
	ID string `path:"id"`
}

func registerTickets(api huma.API, h *handlers) {
	huma.Register(api, idempotent(secured(huma.Operation{
		OperationID:   "create-ticket",
		Method:        http.MethodPost,
		Path:          "/api/tickets",
		Summary:       "Create a ticket",
		Description:   "Creates an open ticket and emits ticket.created.",
		Tags:          []string{"Tickets"},
		DefaultStatus: http.StatusCreated,
	})), h.createTicket)

	huma.Register(api, secured(huma.Operation{
		OperationID: "list-tickets",
		Method:      http.MethodGet,
		Path:        "/api/tickets",
		Summary:     "List tickets",
		Description: "Returns tickets newest first by default. Filters combine with AND; " +
			"values within one filter combine with OR.",
		Tags: []string{"Tickets"},
	}), h.listTickets)

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-ticket",
		Method:      http.MethodGet,
		Path:        "/api/tickets/{id}",
		Summary:     "Get a ticket with its account, assignee, messages and history",
		Tags:        []string{"Tickets"},
		Errors:      []int{http.StatusNotFound},
	}), h.getTicket)

	huma.Register(api, secured(huma.Operation{
		OperationID: "update-ticket",
		Method:      http.MethodPatch,
		Path:        "/api/tickets/{id}",
		Summary:     "Update a ticket",
		Description: "Applies a JSON merge patch. Fields that are sent are stored as sent, " +
			"including empty strings; assigneeId null unassigns. A change emits ticket.updated " +
			"with the changed fields; a move to resolved, or to closed from open or pending, also emits ticket.resolved.",
		Tags:   []string{"Tickets"},
		Errors: []int{http.StatusNotFound},
	}), h.updateTicket)
}

func (h *handlers) createTicket(ctx context.Context, in *CreateTicketInput) (*BodyOutput[models.Ticket], error) {
	b := in.Body
	nt := helpdesk.NewTicket{
		Title:       b.Title,
		Description: b.Description,
		Priority:    b.Priority,
		Source:      b.Source,
		AccountID:   b.AccountID,
		AssigneeID:  b.AssigneeID,
		Tags:        b.Tags,
	}
	if nt.Priority == "" {
		nt.Priority = models.PriorityMedium
	}
	if b.Requester != nil {
		nt.Requester = models.Requester{Name: b.Requester.Name, Email: b.Requester.Email, Handle: b.Requester.Handle}
	}
	t, err := h.deps.Helpdesk.CreateTicket(ctx, nt, actor(ctx))
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.Ticket]{Body: t}, nil
}

func (h *handlers) listTickets(ctx context.Context, in *ListTicketsInput) (*PageOutput[TicketListItem], error) {
	f := helpdesk.TicketFilter{
		Statuses:      in.Status,
		Priorities:    in.Priority,
		Sources:       in.Source,
		AccountID:     in.AccountID,
		AssigneeID:    in.AssigneeID,
		Tag:           in.Tag,
		Query:         in.Q,
		CreatedAfter:  in.CreatedAfter,
		CreatedBefore: in.CreatedBefore,
	}
	rows, next, err := h.deps.Helpdesk.ListTickets(ctx, f, paging.Params{Limit: in.Limit, Cursor: in.Cursor, Sort: in.Sort})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	ids := make([]string, len(rows))
	for i, t := range rows {
		ids[i] = t.ID
	}
	// One query for the whole page.
	states, err := h.ticketSLAs(ctx, ids...)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	items := make([]TicketListItem, len(rows))
	for i, t := range rows {
		items[i] = TicketListItem{Ticket: t, SLA: states[t.ID]}
	}
	return newPage(items, next), nil
}

func (h *handlers) getTicket(ctx context.Context, in *IDInput) (*BodyOutput[TicketDetailOutput], error) {
	d, err := h.deps.Helpdesk.GetTicket(ctx, in.ID)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	states, err := h.ticketSLAs(ctx, d.ID)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[TicketDetailOutput]{Body: TicketDetailOutput{TicketDetail: d, SLA: states[d.ID]}}, nil
}

// ticketSLAs returns the SLA state of tickets ids, or none when the API
// runs without the SLA engine.
func (h *handlers) ticketSLAs(ctx context.Context, ids ...string) (map[string]*sla.TicketSLA, error) {
	if h.deps.SLA == nil {
		return map[string]*sla.TicketSLA{}, nil
	}
	return h.deps.SLA.TicketSLAs(ctx, ids...)
}

func (h *handlers) updateTicket(ctx context.Context, in *UpdateTicketInput) (*BodyOutput[models.Ticket], error) {
	b := in.Body
	patch := helpdesk.TicketPatch{
		Title:       b.Title.Field(),
		Description: b.Description.Field(),
		Status:      b.Status.Field(),
		Priority:    b.Priority.Field(),
		AccountID:   b.AccountID.Field(),
		AssigneeID:  b.AssigneeID.Field(),
		Tags:        b.Tags.Field(),
	}
	t, err := h.deps.Helpdesk.UpdateTicket(ctx, in.ID, patch, actor(ctx))
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.Ticket]{Body: t}, nil
}
