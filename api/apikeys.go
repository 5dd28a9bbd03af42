package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost/apikeys"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/paging"
)

// CreateAPIKeyInput is the request of create-api-key.
type CreateAPIKeyInput struct {
	Body struct {
		Name      string      `json:"name" minLength:"1" maxLength:"200" example:"zendesk-sync" doc:"Name of the integration that uses the key."`
		Role      models.Role `json:"role" enum:"admin,agent,viewer" doc:"viewer reads, agent also works tickets, messages and accounts, admin also manages agents, API keys, SLA policies, business hours and webhooks."`
		ExpiresAt *time.Time  `json:"expiresAt,omitempty" doc:"When the key stops working, in the future; omit for a key that does not expire."`
	}
}

// CreatedAPIKey is a new key with its secret.
type CreatedAPIKey struct {
	models.APIKey
	Secret string `json:"secret" example:"opk_3q2-7wEEtZmT0m4cYH1Kr8o9yRpDaM1sXkzvN6LbQfU" doc:"The API key. Store it now: only its hash is kept, and it is never shown again."`
}

// ListAPIKeysInput is the request of list-api-keys.
type ListAPIKeysInput struct {
	ListParams
	Sort string `query:"sort" enum:"createdAt,-createdAt" default:"-createdAt" doc:"Order; a leading - sorts descending."`
}

func registerAPIKeys(api huma.API, h *handlers) {
	huma.Register(api, secured(huma.Operation{
		OperationID:   "create-api-key",
		Method:        http.MethodPost,
		Path:          "/api/api-keys",
		Summary:       "Create an API key",
		Description:   "Returns the key once, in secret; only its hash is stored.",
		Tags:          []string{"API keys"},
		DefaultStatus: http.StatusCreated,
	}), h.createAPIKey)

	huma.Register(api, secured(huma.Operation{
		OperationID: "list-api-keys",
		Method:      http.MethodGet,
		Path:        "/api/api-keys",
		Summary:     "List API keys",
		Description: "Lists every key, revoked and expired ones included, without secrets.",
		Tags:        []string{"API keys"},
	}), h.listAPIKeys)

	huma.Register(api, secured(huma.Operation{
		OperationID:   "revoke-api-key",
		Method:        http.MethodDelete,
		Path:          "/api/api-keys/{id}",
		Summary:       "Revoke an API key",
		Description:   "Requests with the key get 401 from now on. The record stays, with revokedAt set.",
		Tags:          []string{"API keys"},
		DefaultStatus: http.StatusNoContent,
		Errors:        []int{http.StatusNotFound},
	}), h.revokeAPIKey)
}

func (h *handlers) createAPIKey(ctx context.Context, in *CreateAPIKeyInput) (*BodyOutput[CreatedAPIKey], error) {
	key, secret, err := h.deps.Keys.Create(ctx, apikeys.NewKey{
		Name: in.Body.Name, Role: in.Body.Role, ExpiresAt: in.Body.ExpiresAt,
	})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[CreatedAPIKey]{Body: CreatedAPIKey{APIKey: key, Secret: secret}}, nil
}

func (h *handlers) listAPIKeys(ctx context.Context, in *ListAPIKeysInput) (*PageOutput[models.APIKey], error) {
	rows, next, err := h.deps.Keys.ListPage(ctx, paging.Params{Limit: in.Limit, Cursor: in.Cursor, Sort: in.Sort})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return newPage(rows, next), nil
}

func (h *handlers) revokeAPIKey(ctx context.Context, in *IDInput) (*NoContentOutput, error) {
	if _, _, err := h.deps.Keys.Revoke(ctx, in.ID); err != nil {
		return nil, h.problem(ctx, err)
	}
	return &NoContentOutput{}, nil
}
