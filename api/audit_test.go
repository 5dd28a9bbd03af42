package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/apikeys"
	"github.com/outposthq/outpost/audit"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/sla"
	"github.com/outposthq/outpost/webhooks"
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

// TestAuditedChangesRollBackWithEntry makes every audited service write an
// audit entry that the database rejects, and requires the change itself
// to roll back: a change and its entry commit together or not at all.
func TestAuditedChangesRollBackWithEntry(t *testing.T) {
	t.Parallel()
	s := setup(t)
	email := s.createAgentWithPassword(t, models.RoleAgent)
	sess := s.signIn(t, email)
	agentID := sess.info.Agent.ID
	key, _, err := s.deps.Keys.Create(t.Context(), apiKeyNamed("rollback", models.RoleViewer))
	require.NoError(t, err)
	hook := decodeAs[api.CreatedWebhook](t, s.do(http.MethodPost, "/api/webhooks",
		map[string]any{"url": hookURL(), "events": []string{"*"}}), http.StatusCreated)
	hours := []models.OpeningHours{{Weekday: "monday", Start: "09:00", End: "17:00"}}
	bh, err := s.deps.SLA.CreateSchedule(t.Context(), sla.NewSchedule{Name: "Rollback", TimeZone: "UTC", Hours: hours})
	require.NoError(t, err)
	targets := models.SLATargets{Clock: models.ClockCalendar, Urgent: 30, High: 60, Medium: 120, Low: 240}
	tier := "rollback-" + unique("tier")
	policy, err := s.deps.SLA.CreatePolicy(t.Context(), sla.NewPolicy{Name: "Rollback", Tier: tier, FirstResponse: targets, Resolution: targets})
	require.NoError(t, err)
	spare, err := s.deps.SLA.CreateSchedule(t.Context(), sla.NewSchedule{Name: "Spare", TimeZone: "UTC", Hours: hours})
	require.NoError(t, err)

	// actor_type is checked by the database, so this entry cannot be
	// inserted.
	bad := audit.WithChange(t.Context(), models.AuditEntry{
		ActorType: "nobody", ActorID: "x", Action: "test", ResourceType: "agent",
	})
	count := func(table, where string, args ...any) int64 {
		var n int64
		require.NoError(t, s.db.Table(table).Where(where, args...).Count(&n).Error)
		return n
	}
	renamed := func(v string) outpost.Field[string] { return outpost.Field[string]{Set: true, Value: v} }

	cases := []struct {
		name   string
		change func() error
		kept   func() bool
	}{
		{"create agent", func() error {
			_, err := s.deps.Helpdesk.CreateAgent(bad, helpdesk.NewAgent{Name: "Ghost", Email: "ghost-rollback@support.example"})
			return err
		}, func() bool { return count("agents", "email = ?", "ghost-rollback@support.example") == 0 }},
		{"update agent", func() error {
			_, err := s.deps.Helpdesk.UpdateAgent(bad, agentID, helpdesk.AgentPatch{Name: renamed("Renamed")})
			return err
		}, func() bool { return count("agents", "id = ? AND name = ?", agentID, "Renamed") == 0 }},
		{"set password", func() error {
			_, err := s.deps.Sessions.SetPassword(bad, agentID, "another passphrase", "body.password", "")
			return err
		}, func() bool { return count("sessions", "agent_id = ?", agentID) == 1 }},
		{"change password", func() error {
			cur, err := s.deps.Sessions.Authenticate(t.Context(), sess.token)
			require.NoError(t, err)
			_, _, err = s.deps.Sessions.ChangePassword(bad, cur, testPassword, "another passphrase")
			return err
		}, func() bool { return count("sessions", "agent_id = ?", agentID) == 1 }},
		{"create API key", func() error {
			_, _, err := s.deps.Keys.Create(bad, apiKeyNamed("ghost-rollback", models.RoleViewer))
			return err
		}, func() bool { return count("api_keys", "name = ?", "ghost-rollback") == 0 }},
		{"revoke API key", func() error {
			_, _, err := s.deps.Keys.Revoke(bad, key.ID)
			return err
		}, func() bool { return count("api_keys", "id = ? AND revoked_at IS NULL", key.ID) == 1 }},
		{"create webhook", func() error {
			_, err := s.deps.Endpoints.Create(bad, webhooks.NewEndpoint{URL: hookURL() + "/ghost-rollback", Events: []string{"*"}})
			return err
		}, func() bool { return count("webhook_endpoints", "url = ?", hookURL()+"/ghost-rollback") == 0 }},
		{"update webhook", func() error {
			_, err := s.deps.Endpoints.Update(bad, hook.ID, webhooks.EndpointPatch{Description: renamed("Renamed")})
			return err
		}, func() bool { return count("webhook_endpoints", "id = ? AND description = ?", hook.ID, "Renamed") == 0 }},
		{"rotate webhook secret", func() error {
			_, err := s.deps.Endpoints.RotateSecret(bad, hook.ID, 0)
			return err
		}, func() bool { return count("webhook_endpoints", "id = ? AND secret = ?", hook.ID, hook.Secret) == 1 }},
		{"delete webhook", func() error { return s.deps.Endpoints.Delete(bad, hook.ID) },
			func() bool { return count("webhook_endpoints", "id = ?", hook.ID) == 1 }},
		{"create business hours", func() error {
			_, err := s.deps.SLA.CreateSchedule(bad, sla.NewSchedule{Name: "Ghost rollback", TimeZone: "UTC", Hours: hours})
			return err
		}, func() bool { return count("business_hours", "name = ?", "Ghost rollback") == 0 }},
		{"update business hours", func() error {
			_, err := s.deps.SLA.UpdateSchedule(bad, bh.ID, sla.SchedulePatch{Name: renamed("Renamed")})
			return err
		}, func() bool { return count("business_hours", "id = ? AND name = ?", bh.ID, "Renamed") == 0 }},
		{"delete business hours", func() error { return s.deps.SLA.DeleteSchedule(bad, spare.ID) },
			func() bool { return count("business_hours", "id = ?", spare.ID) == 1 }},
		{"create SLA policy", func() error {
			_, err := s.deps.SLA.CreatePolicy(bad, sla.NewPolicy{Name: "Ghost rollback", Tier: tier + "-2", FirstResponse: targets, Resolution: targets})
			return err
		}, func() bool { return count("sla_policies", "name = ?", "Ghost rollback") == 0 }},
		{"update SLA policy", func() error {
			_, err := s.deps.SLA.UpdatePolicy(bad, policy.ID, sla.PolicyPatch{Name: renamed("Renamed")})
			return err
		}, func() bool { return count("sla_policies", "id = ? AND name = ?", policy.ID, "Renamed") == 0 }},
		{"delete SLA policy", func() error { return s.deps.SLA.DeletePolicy(bad, policy.ID) },
			func() bool { return count("sla_policies", "id = ? AND deleted_at IS NULL", policy.ID) == 1 }},
	}
	for _, c := range cases {
		require.Error(t, c.change(), "%s: the rejected audit entry fails the change", c.name)
		require.True(t, c.kept(), "%s: the change rolled back with its entry", c.name)
	}
	require.Zero(t, count("audit_log", "action = ?", "test"))
}
