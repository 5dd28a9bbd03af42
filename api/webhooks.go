package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/paging"
	"github.com/outposthq/outpost/webhooks"
)

const eventTypesDoc = "Event types: ticket.created, ticket.updated, ticket.resolved, " +
	"ticket.sla_warning, ticket.sla_breach, message.created, account.created, or [\"*\"] for all. URLs on loopback, private, link-local, " +
	"carrier-grade NAT, multicast or cloud metadata addresses are rejected."

// CreateWebhookInput is the request of create-webhook.
type CreateWebhookInput struct {
	Body struct {
		URL         string   `json:"url" minLength:"1" maxLength:"2048" example:"https://hooks.example.com/outpost" doc:"http or https URL that receives POST deliveries."`
		Events      []string `json:"events" minItems:"1" maxItems:"20" example:"[\"ticket.created\",\"ticket.resolved\"]" doc:"Event types to deliver; [\"*\"] means all."`
		Description string   `json:"description,omitempty" maxLength:"500"`
	}
}

// CreatedWebhook is an endpoint with its signing secret, which is returned
// only by create-webhook.
type CreatedWebhook struct {
	models.WebhookEndpoint
	Secret string `json:"secret" example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" doc:"Signing secret. Store it now: it is never shown again."`
}

// UpdateWebhookInput is the request of update-webhook, a JSON merge patch.
type UpdateWebhookInput struct {
	ID   string `path:"id" doc:"Webhook endpoint ID."`
	Body struct {
		URL         Optional[string]   `json:"url,omitempty" minLength:"1" maxLength:"2048"`
		Events      Optional[[]string] `json:"events,omitempty" minItems:"1" maxItems:"20"`
		Description Optional[string]   `json:"description,omitempty" maxLength:"500"`
		Enabled     Optional[bool]     `json:"enabled,omitempty" doc:"false pauses deliveries; events meanwhile are not delivered later."`
	}
}

// ListDeliveriesInput is the request of list-webhook-deliveries.
type ListDeliveriesInput struct {
	ID string `path:"id" doc:"Webhook endpoint ID."`
	ListParams
	Status    models.DeliveryStatus `query:"status" enum:"pending,succeeded,failed" doc:"Only deliveries in this status."`
	EventType string                `query:"eventType" doc:"Only deliveries of this event type."`
}

// NoContentOutput is an empty 204 response.
type NoContentOutput struct{}

func registerWebhooks(api huma.API, h *handlers) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "create-webhook",
		Method:      http.MethodPost,
		Path:        "/api/webhooks",
		Summary:     "Register a webhook endpoint",
		Description: "Returns the endpoint with its signing secret, once. " + eventTypesDoc +
			" Each delivery carries X-Outpost-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of " +
			"\"<t>.<body>\" keyed by the secret string>, and the Standard Webhooks headers.",
		Tags:          []string{"Webhooks"},
		DefaultStatus: http.StatusCreated,
	}), h.createWebhook)

	huma.Register(api, secured(huma.Operation{
		OperationID: "list-webhooks",
		Method:      http.MethodGet,
		Path:        "/api/webhooks",
		Summary:     "List webhook endpoints",
		Tags:        []string{"Webhooks"},
	}), h.listWebhooks)

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-webhook",
		Method:      http.MethodGet,
		Path:        "/api/webhooks/{id}",
		Summary:     "Get a webhook endpoint",
		Tags:        []string{"Webhooks"},
		Errors:      []int{http.StatusNotFound},
	}), h.getWebhook)

	huma.Register(api, secured(huma.Operation{
		OperationID: "update-webhook",
		Method:      http.MethodPatch,
		Path:        "/api/webhooks/{id}",
		Summary:     "Update a webhook endpoint",
		Description: "Applies a JSON merge patch. " + eventTypesDoc,
		Tags:        []string{"Webhooks"},
		Errors:      []int{http.StatusNotFound},
	}), h.updateWebhook)

	huma.Register(api, secured(huma.Operation{
		OperationID:   "delete-webhook",
		Method:        http.MethodDelete,
		Path:          "/api/webhooks/{id}",
		Summary:       "Delete a webhook endpoint and its delivery log",
		Tags:          []string{"Webhooks"},
		DefaultStatus: http.StatusNoContent,
		Errors:        []int{http.StatusNotFound},
	}), h.deleteWebhook)

	huma.Register(api, secured(huma.Operation{
		OperationID: "list-webhook-deliveries",
		Method:      http.MethodGet,
		Path:        "/api/webhooks/{id}/deliveries",
		Summary:     "List an endpoint's deliveries with their attempts",
		Description: "Returns deliveries newest first. A delivery is pending while attempts " +
			"remain, succeeded after a 2xx answer, and failed once its retries ran out.",
		Tags:   []string{"Webhooks"},
		Errors: []int{http.StatusNotFound},
	}), h.listDeliveries)
}

func (h *handlers) createWebhook(ctx context.Context, in *CreateWebhookInput) (*BodyOutput[CreatedWebhook], error) {
	ep, err := h.deps.Endpoints.Create(ctx, webhooks.NewEndpoint{
		URL: in.Body.URL, Events: in.Body.Events, Description: in.Body.Description,
	})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[CreatedWebhook]{Body: CreatedWebhook{WebhookEndpoint: ep, Secret: ep.Secret}}, nil
}

func (h *handlers) listWebhooks(ctx context.Context, in *ListParams) (*PageOutput[models.WebhookEndpoint], error) {
	rows, next, err := h.deps.Endpoints.List(ctx, paging.Params{Limit: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return newPage(rows, next), nil
}

func (h *handlers) getWebhook(ctx context.Context, in *IDInput) (*BodyOutput[models.WebhookEndpoint], error) {
	ep, err := h.deps.Endpoints.Get(ctx, in.ID)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.WebhookEndpoint]{Body: ep}, nil
}

func (h *handlers) updateWebhook(ctx context.Context, in *UpdateWebhookInput) (*BodyOutput[models.WebhookEndpoint], error) {
	b := in.Body
	ep, err := h.deps.Endpoints.Update(ctx, in.ID, webhooks.EndpointPatch{
		URL: b.URL.Field(), Events: b.Events.Field(), Description: b.Description.Field(), Enabled: b.Enabled.Field(),
	})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.WebhookEndpoint]{Body: ep}, nil
}

func (h *handlers) deleteWebhook(ctx context.Context, in *IDInput) (*NoContentOutput, error) {
	if err := h.deps.Endpoints.Delete(ctx, in.ID); err != nil {
		return nil, h.problem(ctx, err)
	}
	return &NoContentOutput{}, nil
}

func (h *handlers) listDeliveries(ctx context.Context, in *ListDeliveriesInput) (*PageOutput[models.WebhookDelivery], error) {
	f := webhooks.DeliveryFilter{Status: in.Status, EventType: in.EventType}
	rows, next, err := h.deps.Endpoints.ListDeliveries(ctx, in.ID, f, paging.Params{Limit: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return newPage(rows, next), nil
}

// RotateSecretInput is the request of rotate-webhook-secret.
type RotateSecretInput struct {
	ID   string `path:"id" doc:"Webhook endpoint ID."`
	Body *struct {
		GracePeriodMinutes *int `json:"gracePeriodMinutes,omitempty" minimum:"0" maximum:"43200" doc:"How long the replaced secret keeps signing beside the new one, in minutes. Default 1440 (24 hours); 0 retires it at once."`
	}
}

// ReplayInput is the request of replay-webhook.
type ReplayInput struct {
	ID   string `path:"id" doc:"Webhook endpoint ID."`
	Body struct {
		Since time.Time `json:"since" doc:"Redeliver failed deliveries created at or after this time (RFC 3339)."`
	}
}

// ReplayOutput is the response of replay-webhook.
type ReplayOutput struct {
	Body struct {
		Redelivered int `json:"redelivered" doc:"Number of failed deliveries queued again."`
	}
}

// defaultRotationGrace is the signing period of a replaced secret when the
// request sets none.
const defaultRotationGrace = 24 * time.Hour

func registerWebhookOperations(api huma.API, h *handlers) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "rotate-webhook-secret",
		Method:      http.MethodPost,
		Path:        "/api/webhooks/{id}/rotate-secret",
		Summary:     "Rotate an endpoint's signing secret",
		Description: "Returns the endpoint with a new secret, once. The replaced secret keeps signing " +
			"beside it for the grace period, so each delivery carries one v1 signature per secret in " +
			"X-Outpost-Signature and in webhook-signature until receivers switch.",
		Tags:   []string{"Webhooks"},
		Errors: []int{http.StatusNotFound},
	}), h.rotateSecret)

	huma.Register(api, secured(huma.Operation{
		OperationID:   "test-webhook",
		Method:        http.MethodPost,
		Path:          "/api/webhooks/{id}/test",
		Summary:       "Send a test delivery",
		Description:   "Delivers a webhook.test event to this endpoint only, and returns the delivery.",
		Tags:          []string{"Webhooks"},
		DefaultStatus: http.StatusAccepted,
		Errors:        []int{http.StatusNotFound},
	}), h.testWebhook)

	huma.Register(api, secured(huma.Operation{
		OperationID:   "replay-webhook",
		Method:        http.MethodPost,
		Path:          "/api/webhooks/{id}/replay",
		Summary:       "Redeliver an endpoint's failed deliveries",
		Description:   "Queues again every failed delivery created since the given time, each with the full retry schedule.",
		Tags:          []string{"Webhooks"},
		DefaultStatus: http.StatusAccepted,
		Errors:        []int{http.StatusNotFound, http.StatusConflict},
	}), h.replayWebhook)

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-webhook-delivery",
		Method:      http.MethodGet,
		Path:        "/api/webhook-deliveries/{id}",
		Summary:     "Get a delivery with its attempts",
		Description: "Each attempt lists the request headers, status code, duration, error class and the start of the response.",
		Tags:        []string{"Webhooks"},
		Errors:      []int{http.StatusNotFound},
	}), h.getDelivery)

	huma.Register(api, secured(huma.Operation{
		OperationID: "redeliver-webhook-delivery",
		Method:      http.MethodPost,
		Path:        "/api/webhook-deliveries/{id}/redeliver",
		Summary:     "Redeliver one delivery",
		Description: "Starts a new series of attempts with the full retry schedule, whatever the delivery's " +
			"status, including a delivery whose retries ran out. Answers 409 while an attempt is running.",
		Tags:          []string{"Webhooks"},
		DefaultStatus: http.StatusAccepted,
		Errors:        []int{http.StatusNotFound, http.StatusConflict},
	}), h.redeliver)
}

func (h *handlers) rotateSecret(ctx context.Context, in *RotateSecretInput) (*BodyOutput[CreatedWebhook], error) {
	grace := defaultRotationGrace
	if in.Body != nil && in.Body.GracePeriodMinutes != nil {
		grace = time.Duration(*in.Body.GracePeriodMinutes) * time.Minute
	}
	ep, err := h.deps.Endpoints.RotateSecret(ctx, in.ID, grace)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[CreatedWebhook]{Body: CreatedWebhook{WebhookEndpoint: ep, Secret: ep.Secret}}, nil
}

func (h *handlers) testWebhook(ctx context.Context, in *IDInput) (*BodyOutput[models.WebhookDelivery], error) {
	dlv, err := h.deps.Deliveries.SendTest(ctx, in.ID)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return deliveryOutput(dlv), nil
}

func (h *handlers) replayWebhook(ctx context.Context, in *ReplayInput) (*ReplayOutput, error) {
	n, err := h.deps.Deliveries.Replay(ctx, in.ID, in.Body.Since)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	out := &ReplayOutput{}
	out.Body.Redelivered = n
	return out, nil
}

func (h *handlers) getDelivery(ctx context.Context, in *IDInput) (*BodyOutput[models.WebhookDelivery], error) {
	dlv, err := h.deps.Endpoints.GetDelivery(ctx, in.ID)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return deliveryOutput(dlv), nil
}

func (h *handlers) redeliver(ctx context.Context, in *IDInput) (*BodyOutput[models.WebhookDelivery], error) {
	dlv, err := h.deps.Deliveries.Redeliver(ctx, in.ID)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return deliveryOutput(dlv), nil
}

// deliveryOutput returns dlv as a response, with an empty list of attempts
// rather than null for a delivery not yet attempted.
func deliveryOutput(dlv models.WebhookDelivery) *BodyOutput[models.WebhookDelivery] {
	if dlv.Attempts == nil {
		dlv.Attempts = []models.WebhookAttempt{}
	}
	return &BodyOutput[models.WebhookDelivery]{Body: dlv}
}
