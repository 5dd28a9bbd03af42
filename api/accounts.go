package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/paging"
)

// CreateAccountInput is the request of create-account.
type CreateAccountInput struct {
	Body struct {
		Name       string `json:"name" minLength:"1" maxLength:"200" example:"Acme Corp"`
		Domain     string `json:"domain,omitempty" maxLength:"253" example:"acme.example"`
		ExternalID string `json:"externalId,omitempty" maxLength:"200" doc:"ID in your own system; unique across accounts."`
		Notes      string `json:"notes,omitempty" maxLength:"10000"`
		Tier       string `json:"tier,omitempty" maxLength:"100" example:"enterprise" doc:"Support tier; SLA policies can apply to a tier."`
	}
}

// UpdateAccountInput is the request of update-account, a JSON merge patch.
type UpdateAccountInput struct {
	ID   string `path:"id" doc:"Account ID."`
	Body struct {
		Name       Optional[string] `json:"name,omitempty" minLength:"1" maxLength:"200"`
		Domain     Optional[string] `json:"domain,omitempty" maxLength:"253"`
		ExternalID Optional[string] `json:"externalId,omitempty" maxLength:"200"`
		Notes      Optional[string] `json:"notes,omitempty" maxLength:"10000"`
		Tier       Optional[string] `json:"tier,omitempty" maxLength:"100" doc:"Changing the tier recomputes the SLA of the account's unfinished tickets."`
	}
}

// ListAccountsInput is the request of list-accounts.
type ListAccountsInput struct {
	ListParams
	Sort       string `query:"sort" enum:"createdAt,-createdAt,updatedAt,-updatedAt" default:"-createdAt" doc:"Order; a leading - sorts descending."`
	ExternalID string `query:"externalId" doc:"Only the account with this externalId."`
	Domain     string `query:"domain" doc:"Only accounts with this domain."`
	Tier       string `query:"tier" doc:"Only accounts with this tier."`
}

func registerAccounts(api huma.API, h *handlers) {
	huma.Register(api, idempotent(secured(huma.Operation{
		OperationID:   "create-account",
		Method:        http.MethodPost,
		Path:          "/api/accounts",
		Summary:       "Create an account",
		Description:   "Creates an account and emits account.created.",
		Tags:          []string{"Accounts"},
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusConflict},
	})), h.createAccount)

	huma.Register(api, secured(huma.Operation{
		OperationID: "list-accounts",
		Method:      http.MethodGet,
		Path:        "/api/accounts",
		Summary:     "List accounts",
		Tags:        []string{"Accounts"},
	}), h.listAccounts)

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-account",
		Method:      http.MethodGet,
		Path:        "/api/accounts/{id}",
		Summary:     "Get an account with its support history",
		Description: "Includes ticket counts by status and the 10 most recent tickets.",
		Tags:        []string{"Accounts"},
		Errors:      []int{http.StatusNotFound},
	}), h.getAccount)

	huma.Register(api, secured(huma.Operation{
		OperationID: "update-account",
		Method:      http.MethodPatch,
		Path:        "/api/accounts/{id}",
		Summary:     "Update an account",
		Description: "Applies a JSON merge patch; fields that are sent are stored as sent.",
		Tags:        []string{"Accounts"},
		Errors:      []int{http.StatusNotFound, http.StatusConflict},
	}), h.updateAccount)
}

func (h *handlers) createAccount(ctx context.Context, in *CreateAccountInput) (*BodyOutput[models.Account], error) {
	b := in.Body
	acc, err := h.deps.Helpdesk.CreateAccount(ctx, helpdesk.NewAccount{
		Name: b.Name, Domain: b.Domain, ExternalID: b.ExternalID, Notes: b.Notes, Tier: b.Tier,
	})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.Account]{Body: acc}, nil
}

func (h *handlers) listAccounts(ctx context.Context, in *ListAccountsInput) (*PageOutput[models.Account], error) {
	f := helpdesk.AccountFilter{ExternalID: in.ExternalID, Domain: in.Domain, Tier: in.Tier}
	rows, next, err := h.deps.Helpdesk.ListAccounts(ctx, f, paging.Params{Limit: in.Limit, Cursor: in.Cursor, Sort: in.Sort})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return newPage(rows, next), nil
}

func (h *handlers) getAccount(ctx context.Context, in *IDInput) (*BodyOutput[helpdesk.AccountDetail], error) {
	d, err := h.deps.Helpdesk.GetAccount(ctx, in.ID)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[helpdesk.AccountDetail]{Body: d}, nil
}

func (h *handlers) updateAccount(ctx context.Context, in *UpdateAccountInput) (*BodyOutput[models.Account], error) {
	b := in.Body
	acc, err := h.deps.Helpdesk.UpdateAccount(ctx, in.ID, helpdesk.AccountPatch{
		Name:       b.Name.Field(),
		Domain:     b.Domain.Field(),
		ExternalID: b.ExternalID.Field(),
		Notes:      b.Notes.Field(),
		Tier:       b.Tier.Field(),
	})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.Account]{Body: acc}, nil
}
