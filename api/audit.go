package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost/audit"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/paging"
)

// auditedOperations are the operations that change the configuration,
// mapped to the type of resource they change. withAudit records each of
// their successful requests.
var auditedOperations = map[string]string{
	"create-agent":        "agent",
	"update-agent":        "agent",
	"set-agent-password":  "agent",
	"change-own-password": "agent",

	"create-api-key": "api_key",
	"revoke-api-key": "api_key",

	"create-sla-policy": "sla_policy",
	"update-sla-policy": "sla_policy",
	"delete-sla-policy": "sla_policy",

	"create-business-hours": "business_hours",
	"update-business-hours": "business_hours",
	"delete-business-hours": "business_hours",

	"create-webhook":        "webhook_endpoint",
	"update-webhook":        "webhook_endpoint",
	"delete-webhook":        "webhook_endpoint",
	"rotate-webhook-secret": "webhook_endpoint",
}

// withAudit returns middleware that puts the audit entry of a request to
// an operation in auditedOperations in the request context: the caller,
// the operation, the resource type, the path's id and the names of the
// fields sent. The service writes it with audit.RecordChange in the
// transaction of the change, so that neither commits without the other. A
// request that changes nothing, such as a PATCH with the current values,
// writes no entry. It runs after authorize.
func withAudit(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		resourceType, ok := auditedOperations[op.OperationID]
		if !ok {
			next(ctx)
			return
		}
		c, _ := callerFrom(ctx.Context())
		body, err := readBody(ctx)
		if err != nil {
			_ = huma.WriteErr(api, ctx, http.StatusBadRequest, "cannot read request body")
			return
		}
		entry := models.AuditEntry{
			ActorType:    c.actorType(),
			ActorID:      c.id(),
			Action:       op.OperationID,
			ResourceType: resourceType,
			ResourceID:   ctx.Param("id"),
			Fields:       fieldNames(body),
		}
		changeCtx := audit.WithChange(ctx.Context(), entry)
		next(&recordingContext{innerContext: huma.WithContext(ctx, changeCtx), body: body})
	}
}

// fieldNames returns the sorted top-level keys of a JSON object body, or
// none when the body is empty or not an object.
func fieldNames(body []byte) []string {
	var object map[string]json.RawMessage
	if json.Unmarshal(body, &object) != nil {
		return []string{}
	}
	names := make([]string, 0, len(object))
	for name := range object {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func registerAudit(api huma.API, h *handlers) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "list-audit-log",
		Method:      http.MethodGet,
		Path:        "/api/audit-log",
		Summary:     "List the audit log",
		Description: "Changes to agents, API keys, SLA policies, business hours and webhook endpoints, newest first.",
		Tags:        []string{"Audit log"},
	}), h.listAuditLog)
}

// ListAuditLogInput is the request of list-audit-log.
type ListAuditLogInput struct {
	ListParams
	Sort string `query:"sort" enum:"createdAt,-createdAt" default:"-createdAt" doc:"Order; a leading - sorts descending."`
}

func (h *handlers) listAuditLog(ctx context.Context, in *ListAuditLogInput) (*PageOutput[models.AuditEntry], error) {
	rows, next, err := h.deps.Audit.List(ctx, paging.Params{Limit: in.Limit, Cursor: in.Cursor, Sort: in.Sort})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return newPage(rows, next), nil
}
