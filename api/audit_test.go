package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/apikeys"
	"github.com/outposthq/outpost/models"
)

// auditOf returns every audit entry that actor apiKeyID made, newest first,
// reading the log in pages of two.
func (s *server) auditOf(t *testing.T, apiKeyID string) ([]models.AuditEntry, string) {
	t.Helper()
	var entries []models.AuditEntry
	var raw strings.Builder
	path := "/api/audit-log?limit=2"
	for {
		rec := s.do(http.MethodGet, path)
		raw.WriteString(rec.Body.String())
		page := decodeAs[api.Page[models.AuditEntry]](t, rec, http.StatusOK)
		for _, e := range page.Data {
			if e.ActorID == apiKeyID {
				entries = append(entries, e)
			}
		}
		if page.NextCursor == nil {
			return entries, raw.String()
		}
		path = "/api/audit-log?limit=2&cursor=" + *page.NextCursor
	}
}

func TestAuditRecordsChanges(t *testing.T) {
	t.Parallel()
	s := setup(t)
	admin, adminSecret, err := s.deps.Keys.Create(t.Context(), apiKeyNamed("auditor", models.RoleAdmin))
	require.NoError(t, err)
	auth := "Authorization: Bearer " + adminSecret

	agent := decodeAs[models.Agent](t, s.api.Post("/api/agents", auth,
		map[string]any{"name": "Ana", "email": unique("ana") + "@support.example"}), http.StatusCreated)
	decodeAs[models.Agent](t, s.api.Patch("/api/agents/"+agent.ID, auth, map[string]any{"active": false}), http.StatusOK)
	hook := decodeAs[api.CreatedWebhook](t, s.api.Post("/api/webhooks", auth,
		map[string]any{"url": hookURL(), "events": []string{"*"}}), http.StatusCreated)
	rotated := s.api.Post("/api/webhooks/"+hook.ID+"/rotate-secret", auth)
	require.Equal(t, http.StatusOK, rotated.Code, "body: %s", rotated.Body)
	key := decodeAs[createdKey](t, s.api.Post("/api/api-keys", auth, map[string]any{"name": "temp", "role": "viewer"}), http.StatusCreated)
	rec := s.api.Delete("/api/api-keys/"+key.ID, auth)
	require.Equal(t, http.StatusNoContent, rec.Code, "body: %s", rec.Body)
	// A rejected change is not recorded.
	requireProblem(t, s.api.Patch("/api/agents/agt_missing", auth, map[string]any{"active": true}), http.StatusNotFound)

	entries, raw := s.auditOf(t, admin.ID)
	type row struct{ action, resourceType, resourceID, fields string }
	var got []row
	for _, e := range entries {
		got = append(got, row{e.Action, e.ResourceType, e.ResourceID, strings.Join(e.Fields, ",")})
		require.False(t, e.CreatedAt.IsZero())
	}
	require.Equal(t, []row{
		{"revoke-api-key", "api_key", key.ID, ""},
		{"create-api-key", "api_key", key.ID, "name,role"},
		{"rotate-webhook-secret", "webhook_endpoint", hook.ID, ""},
		{"create-webhook", "webhook_endpoint", hook.ID, "events,url"},
		{"update-agent", "agent", agent.ID, "active"},
		{"create-agent", "agent", agent.ID, "email,name"},
	}, got)
	require.NotContains(t, raw, hook.Secret, "the audit log must not hold webhook secrets")
	require.NotContains(t, raw, key.Secret, "the audit log must not hold API keys")
}

func apiKeyNamed(name string, role models.Role) apikeys.NewKey {
	return apikeys.NewKey{Name: name, Role: role}
}

// TestAuditCoversAdminChanges requires an audit rule for every admin-only
// operation that is not a read, so that a new configuration change is
// recorded.
func TestAuditCoversAdminChanges(t *testing.T) {
	t.Parallel()
	s := setup(t)
	// These start deliveries and change no configuration.
	notChanges := []string{"test-webhook", "replay-webhook", "redeliver-webhook-delivery"}
	audited := api.AuditedOperations()
	roles := api.OperationRoles()
	var ids []string
	for _, op := range operations(s.api.OpenAPI()) {
		ids = append(ids, op.OperationID)
		adminOnly := slices.Equal(roles[op.OperationID], []models.Role{models.RoleAdmin})
		if op.Method == http.MethodGet || !adminOnly || slices.Contains(notChanges, op.OperationID) {
			continue
		}
		require.Contains(t, audited, op.OperationID, "%s %s changes configuration but is not audited", op.Method, op.Path)
	}
	for id := range audited {
		require.Contains(t, ids, id, "auditedOperations names an operation that does not exist")
	}
}
