package api_test

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/apikeys"
	"github.com/outposthq/outpost/models"
)

// roleAuth creates a key with role and returns its Authorization header
// line.
func (s *server) roleAuth(t *testing.T, role models.Role) string {
	t.Helper()
	_, secret, err := s.deps.Keys.Create(t.Context(), apikeys.NewKey{Name: "role-" + string(role), Role: role})
	require.NoError(t, err)
	return "Authorization: Bearer " + secret
}

// TestRolesOnEveryOperation calls every secured operation of the OpenAPI
// document with a key of every role and as a signed-in agent of every
// role. An operation added without an access rule fails here.
func TestRolesOnEveryOperation(t *testing.T) {
	t.Parallel()
	s := setup(t)
	table := api.OperationRoles()
	keys := map[models.Role]string{}
	sessions := map[models.Role]session{}
	for _, role := range models.Roles {
		keys[role] = s.roleAuth(t, role)
		sessions[role] = s.signIn(t, s.createAgentWithPassword(t, role))
	}

	var walked []string
	for _, op := range operations(s.api.OpenAPI()) {
		if len(op.Security) == 0 {
			continue
		}
		walked = append(walked, op.OperationID)
		t.Run(op.OperationID, func(t *testing.T) {
			allowed, ok := table[op.OperationID]
			require.True(t, ok, "%s %s has no entry in the access table (api/access.go)", op.Method, op.Path)
			sessionOnly := strings.HasPrefix(op.Path, "/api/auth/")
			path := pathParam.ReplaceAllString(op.Path, "unknown")
			for _, role := range models.Roles {
				rec := s.api.Do(op.Method, path, keys[role])
				switch {
				case sessionOnly:
					p := requireProblem(t, rec, http.StatusForbidden)
					require.Contains(t, p.Detail, "API keys cannot call it", "role %s", role)
				case slices.Contains(allowed, role):
					require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, rec.Code,
						"API key of role %s; body: %s", role, rec.Body)
				default:
					p := requireProblem(t, rec, http.StatusForbidden)
					require.Contains(t, p.Detail, "needs role "+strings.Join(roleNames(allowed), " or "), "role %s", role)
					require.Contains(t, p.Detail, "this API key has role "+string(role))
				}

				sess := sessions[role]
				rec = s.api.Do(op.Method, path, sess.cookie, sess.csrf)
				if slices.Contains(allowed, role) {
					require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, rec.Code,
						"session of role %s; body: %s", role, rec.Body)
				} else {
					p := requireProblem(t, rec, http.StatusForbidden)
					require.Contains(t, p.Detail, "your agent account has role "+string(role))
				}
				if op.OperationID == "sign-out" {
					sessions[role] = s.signIn(t, sess.email)
				}
			}
		})
	}
	for id := range table {
		require.Contains(t, walked, id, "the access table names an operation that does not exist")
	}
}

func roleNames(roles []models.Role) []string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return names
}

func TestRoleRules(t *testing.T) {
	t.Parallel()
	s := setup(t)
	viewer := s.roleAuth(t, models.RoleViewer)
	agent := s.roleAuth(t, models.RoleAgent)

	rec := s.api.Get("/api/tickets", viewer)
	require.Equal(t, http.StatusOK, rec.Code, "viewer lists tickets; body: %s", rec.Body)

	account := s.createAccount(t, nil)
	rec = s.api.Post("/api/tickets", viewer, map[string]any{"title": "x", "source": "api", "accountId": account.ID})
	requireProblem(t, rec, http.StatusForbidden)
	require.EqualValues(t, 0, ticketCount(t, s.db, account.ID), "a denied create must write nothing")

	rec = s.api.Post("/api/tickets", agent, map[string]any{"title": "x", "source": "api", "accountId": account.ID})
	require.Equal(t, http.StatusCreated, rec.Code, "agent creates tickets; body: %s", rec.Body)

	rec = s.api.Post("/api/agents", agent, map[string]any{"name": "A", "email": unique("a") + "@example.com"})
	p := requireProblem(t, rec, http.StatusForbidden)
	require.Equal(t, "create-agent needs role admin; this API key has role agent", p.Detail)
}

func TestOperationWithoutRuleForbidden(t *testing.T) {
	t.Parallel()
	s := setup(t)
	huma.Register(s.api, huma.Operation{
		OperationID: "unruled-operation",
		Method:      http.MethodGet,
		Path:        "/api/unruled",
		Security:    []map[string][]string{{"apiKey": {}}},
	}, func(context.Context, *struct{}) (*struct{}, error) { return &struct{}{}, nil })

	p := requireProblem(t, s.do(http.MethodGet, "/api/unruled"), http.StatusForbidden)
	require.Equal(t, "operation unruled-operation has no access rule, so no role may call it", p.Detail)
}

// TestREADMEListsAccessTable requires a README row for every secured
// operation with the roles of the access table.
func TestREADMEListsAccessTable(t *testing.T) {
	t.Parallel()
	s := setup(t)
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	table := api.OperationRoles()
	var missing []string
	for _, op := range operations(s.api.OpenAPI()) {
		if len(op.Security) == 0 {
			continue
		}
		row := "| `" + op.Path + "` | `" + op.Method + "` | " + strings.Join(roleNames(table[op.OperationID]), ", ") + " |"
		if !strings.Contains(string(readme), row) {
			missing = append(missing, row)
		}
	}
	require.Empty(t, missing, "README.md lacks these rows of the access table")
}
