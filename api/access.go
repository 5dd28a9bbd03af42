package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost/models"
)

// Role sets of the access table. Each role includes the rights of the roles
// below it.
var (
	anyRole   = []models.Role{models.RoleViewer, models.RoleAgent, models.RoleAdmin}
	agentRole = []models.Role{models.RoleAgent, models.RoleAdmin}
	adminRole = []models.Role{models.RoleAdmin}
)

// operationRoles is the access table: the roles allowed to call each
// secured operation, keyed by operation ID. authorize rejects a secured
// operation that has no entry, so a new operation is unreachable until it
// gets one. README.md has the same table.
//
// Webhook endpoints and their deliveries are admin only, reads included,
// because deliveries store event bodies and request headers.
var operationRoles = map[string][]models.Role{
	"list-tickets":  anyRole,
	"get-ticket":    anyRole,
	"create-ticket": agentRole,
	"update-ticket": agentRole,

	"list-messages":  anyRole,
	"create-message": agentRole,

	"list-accounts":  anyRole,
	"get-account":    anyRole,
	"create-account": agentRole,
	"update-account": agentRole,

	"list-agents":  anyRole,
	"get-agent":    anyRole,
	"create-agent": adminRole,
	"update-agent": adminRole,

	"analytics-overview": anyRole,
	"analytics-sla":      anyRole,
	"analytics-volume":   anyRole,
	"analytics-agents":   anyRole,

	"list-sla-policies": anyRole,
	"get-sla-policy":    anyRole,
	"create-sla-policy": adminRole,
	"update-sla-policy": adminRole,
	"delete-sla-policy": adminRole,

	"list-business-hours":   anyRole,
	"get-business-hours":    anyRole,
	"create-business-hours": adminRole,
	"update-business-hours": adminRole,
	"delete-business-hours": adminRole,

	"list-webhooks":              adminRole,
	"get-webhook":                adminRole,
	"create-webhook":             adminRole,
	"update-webhook":             adminRole,
	"delete-webhook":             adminRole,
	"rotate-webhook-secret":      adminRole,
	"test-webhook":               adminRole,
	"replay-webhook":             adminRole,
	"list-webhook-deliveries":    adminRole,
	"get-webhook-delivery":       adminRole,
	"redeliver-webhook-delivery": adminRole,

	"list-api-keys":  adminRole,
	"create-api-key": adminRole,
	"revoke-api-key": adminRole,

	"list-audit-log": adminRole,

	"get-current-session": anyRole,
	"sign-out":            anyRole,
	"change-own-password": anyRole,
	"set-agent-password":  adminRole,
}

// sessionOnlyMetadata marks an operation in huma.Operation.Metadata that
// only agents signed in with a session may call, because it acts on the
// session or on the agent's own account.
const sessionOnlyMetadata = "outpost.sessionOnly"

// authorize returns middleware that lets a request through only when the
// caller's role is in operationRoles for the operation. It runs after
// authenticate, and rejects with 403 any secured operation without a rule.
func authorize(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		if len(op.Security) == 0 {
			next(ctx)
			return
		}
		c, ok := callerFrom(ctx.Context())
		if !ok {
			// authenticate stores the caller before it calls next, so
			// this is a wiring error; fail closed.
			_ = huma.WriteErr(api, ctx, http.StatusForbidden, "the request is not authenticated")
			return
		}
		if op.Metadata[sessionOnlyMetadata] == true && c.Session == nil {
			_ = huma.WriteErr(api, ctx, http.StatusForbidden,
				fmt.Sprintf("%s is for agents signed in with a session (POST /api/auth/login); API keys cannot call it", op.OperationID))
			return
		}
		allowed, ok := operationRoles[op.OperationID]
		if !ok {
			_ = huma.WriteErr(api, ctx, http.StatusForbidden,
				fmt.Sprintf("operation %s has no access rule, so no role may call it", op.OperationID))
			return
		}
		if slices.Contains(allowed, c.Role) {
			next(ctx)
			return
		}
		_ = huma.WriteErr(api, ctx, http.StatusForbidden,
			fmt.Sprintf("%s needs role %s; %s has role %s", op.OperationID, joinRoles(allowed), c.describe(), c.Role))
	}
}

// joinRoles returns roles as "agent or admin".
func joinRoles(roles []models.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return strings.Join(names, " or ")
}
