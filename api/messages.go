package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/paging"
)

// CreateMessageInput is the request of create-message.
type CreateMessageInput struct {
	ID   string `path:"id" doc:"Ticket ID."`
	Body struct {
		AuthorType models.AuthorType `json:"authorType" enum:"customer,agent,system,bot" doc:"Who wrote the message. Only a public agent message with an authorId counts as the first response of the SLA; customer, bot and system messages and internal notes never do."`
		AuthorID   string            `json:"authorId,omitempty" doc:"Agent who wrote the message; only with authorType agent. An agent signed in with a session writes as themselves: omit it, or send their own ID."`
		AuthorName string            `json:"authorName,omitempty" maxLength:"200" doc:"Display name; defaults to the agent's name."`
		Body       string            `json:"body" minLength:"1" maxLength:"50000"`
		Internal   bool              `json:"internal,omitempty" doc:"An internal note, visible to agents only."`
	}
}

// ListMessagesInput is the request of list-messages.
type ListMessagesInput struct {
	ID string `path:"id" doc:"Ticket ID."`
	ListParams
	Sort string `query:"sort" enum:"createdAt,-createdAt" default:"createdAt" doc:"Order; a leading - sorts descending."`
}

func registerMessages(api huma.API, h *handlers) {
	huma.Register(api, idempotent(secured(huma.Operation{
		OperationID:   "create-message",
		Method:        http.MethodPost,
		Path:          "/api/tickets/{id}/messages",
		Summary:       "Add a message to a ticket",
		Description:   "Appends a message or internal note and emits message.created.",
		Tags:          []string{"Messages"},
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusNotFound},
	})), h.createMessage)

	huma.Register(api, secured(huma.Operation{
		OperationID: "list-messages",
		Method:      http.MethodGet,
		Path:        "/api/tickets/{id}/messages",
		Summary:     "List a ticket's messages",
		Description: "Returns the conversation oldest first by default, internal notes included.",
		Tags:        []string{"Messages"},
		Errors:      []int{http.StatusNotFound},
	}), h.listMessages)
}

func (h *handlers) createMessage(ctx context.Context, in *CreateMessageInput) (*BodyOutput[models.Message], error) {
	b := in.Body
	if c, _ := callerFrom(ctx); c.Session != nil && b.AuthorType == models.AuthorAgent {
		// An agent's message counts for the SLA and in the agent
		// analytics, so a session may not write one for someone else.
		self := c.Session.Agent.ID
		if b.AuthorID != "" && b.AuthorID != self {
			return nil, huma.Error403Forbidden("signed-in agents write agent messages as themselves", &huma.ErrorDetail{
				Location: "body.authorId", Value: b.AuthorID,
				Message: "omit authorId, or send your own agent ID " + self,
			})
		}
		b.AuthorID = self
	}
	msg, err := h.deps.Helpdesk.AddMessage(ctx, in.ID, helpdesk.NewMessage{
		AuthorType: b.AuthorType,
		AuthorID:   b.AuthorID,
		AuthorName: b.AuthorName,
		Body:       b.Body,
		Internal:   b.Internal,
	})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.Message]{Body: msg}, nil
}

func (h *handlers) listMessages(ctx context.Context, in *ListMessagesInput) (*PageOutput[models.Message], error) {
	rows, next, err := h.deps.Helpdesk.ListMessages(ctx, in.ID, paging.Params{Limit: in.Limit, Cursor: in.Cursor, Sort: in.Sort})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return newPage(rows, next), nil
}
