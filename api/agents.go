package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost/auth"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/paging"
)

// CreateAgentInput is the request of create-agent.
type CreateAgentInput struct {
	Body struct {
		Name     string      `json:"name" minLength:"1" maxLength:"200" example:"Dana Reyes"`
		Email    string      `json:"email" format:"email" maxLength:"320" example:"dana@support.example" doc:"Unique across agents, ignoring case."`
		Role     models.Role `json:"role,omitempty" enum:"admin,agent,viewer" default:"agent" doc:"What the agent may do when signed in."`
		Password string      `json:"password,omitempty" maxLength:"1024" writeOnly:"true" doc:"Password with which the agent signs in, at least 12 characters; omit to create an agent who cannot sign in until a password is set."`
	}
}

// UpdateAgentInput is the request of update-agent, a JSON merge patch.
type UpdateAgentInput struct {
	ID   string `path:"id" doc:"Agent ID."`
	Body struct {
		Name   Optional[string]      `json:"name,omitempty" minLength:"1" maxLength:"200"`
		Email  Optional[string]      `json:"email,omitempty" format:"email" maxLength:"320"`
		Active Optional[bool]        `json:"active,omitempty" doc:"false deactivates the agent and ends their sessions; their tickets stay assigned."`
		Role   Optional[models.Role] `json:"role,omitempty" enum:"admin,agent,viewer" doc:"Applies from the agent's next request."`
	}
}

// ListAgentsInput is the request of list-agents.
type ListAgentsInput struct {
	ListParams
	Sort   string `query:"sort" enum:"createdAt,-createdAt,updatedAt,-updatedAt" default:"createdAt" doc:"Order; a leading - sorts descending."`
	Active bool   `query:"active" doc:"true lists active agents only."`
}

func registerAgents(api huma.API, h *handlers) {
	huma.Register(api, secured(huma.Operation{
		OperationID:   "create-agent",
		Method:        http.MethodPost,
		Path:          "/api/agents",
		Summary:       "Create an agent",
		Tags:          []string{"Agents"},
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusConflict},
	}), h.createAgent)

	huma.Register(api, secured(huma.Operation{
		OperationID: "list-agents",
		Method:      http.MethodGet,
		Path:        "/api/agents",
		Summary:     "List agents",
		Tags:        []string{"Agents"},
	}), h.listAgents)

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-agent",
		Method:      http.MethodGet,
		Path:        "/api/agents/{id}",
		Summary:     "Get an agent",
		Tags:        []string{"Agents"},
		Errors:      []int{http.StatusNotFound},
	}), h.getAgent)

	huma.Register(api, secured(huma.Operation{
		OperationID: "update-agent",
		Method:      http.MethodPatch,
		Path:        "/api/agents/{id}",
		Summary:     "Update an agent",
		Description: "Applies a JSON merge patch; fields that are sent are stored as sent.",
		Tags:        []string{"Agents"},
		Errors:      []int{http.StatusNotFound, http.StatusConflict},
	}), h.updateAgent)
}

func (h *handlers) createAgent(ctx context.Context, in *CreateAgentInput) (*BodyOutput[models.Agent], error) {
	spec := helpdesk.NewAgent{Name: in.Body.Name, Email: in.Body.Email, Role: in.Body.Role}
	if in.Body.Password != "" {
		if err := auth.ValidatePassword("body.password", in.Body.Password); err != nil {
			return nil, h.problem(ctx, err)
		}
		hash := auth.HashPassword(in.Body.Password)
		spec.PasswordHash = &hash
	}
	agent, err := h.deps.Helpdesk.CreateAgent(ctx, spec)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.Agent]{Body: agent}, nil
}

func (h *handlers) listAgents(ctx context.Context, in *ListAgentsInput) (*PageOutput[models.Agent], error) {
	rows, next, err := h.deps.Helpdesk.ListAgents(ctx, in.Active, paging.Params{Limit: in.Limit, Cursor: in.Cursor, Sort: in.Sort})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return newPage(rows, next), nil
}

func (h *handlers) getAgent(ctx context.Context, in *IDInput) (*BodyOutput[models.Agent], error) {
	agent, err := h.deps.Helpdesk.GetAgent(ctx, in.ID)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.Agent]{Body: agent}, nil
}

func (h *handlers) updateAgent(ctx context.Context, in *UpdateAgentInput) (*BodyOutput[models.Agent], error) {
	b := in.Body
	agent, err := h.deps.Helpdesk.UpdateAgent(ctx, in.ID, helpdesk.AgentPatch{
		Name: b.Name.Field(), Email: b.Email.Field(), Active: b.Active.Field(), Role: b.Role.Field(),
	})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.Agent]{Body: agent}, nil
}
