package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/models"
)

func (s *server) getAccount(t *testing.T, id string) helpdesk.AccountDetail {
	t.Helper()
	return decodeAs[helpdesk.AccountDetail](t, s.do(http.MethodGet, "/api/accounts/"+id), http.StatusOK)
}

func (s *server) listAccounts(t *testing.T, query url.Values) api.Page[models.Account] {
	t.Helper()
	return decodeAs[api.Page[models.Account]](t, s.do(http.MethodGet, "/api/accounts?"+query.Encode()), http.StatusOK)
}

func TestCreateAccount(t *testing.T) {
	t.Parallel()
	s := setup(t)
	externalID := unique("crm")
	acc := s.createAccount(t, map[string]any{
		"name": "Acme Corp", "domain": "acme.example", "externalId": externalID, "notes": "Enterprise plan",
	})

	t.Run("returns fields", func(t *testing.T) {
		require.True(t, models.ValidID(models.PrefixAccount, acc.ID), "ID %q", acc.ID)
		require.Equal(t, "Acme Corp", acc.Name)
		require.Equal(t, "acme.example", acc.Domain)
		require.Equal(t, externalID, acc.ExternalID)
		require.Equal(t, "Enterprise plan", acc.Notes)
		require.Equal(t, acc.CreatedAt, acc.UpdatedAt)
	})
	t.Run("account.created event", func(t *testing.T) {
		require.Equal(t, []string{"account.created"}, eventTypes(t, s.db, acc.ID))
	})
	t.Run("missing name", func(t *testing.T) {
		domain := unique("nameless") + ".example"
		rec := s.do(http.MethodPost, "/api/accounts", map[string]any{"domain": domain})
		detail := requireErrorAt(t, rec, http.StatusUnprocessableEntity, "body.name")
		require.Contains(t, detail.Message, "name")
		require.Zero(t, countRows(t, s.db, "SELECT count(*) FROM accounts WHERE domain = ?", domain))
	})
}

func TestGetAccountDetail(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)
	var created []models.Ticket
	for range 12 {
		created = append(created, s.createTicket(t, acc.ID, nil))
	}
	s.patchTicket(t, created[0].ID, map[string]any{"status": "pending"})
	s.patchTicket(t, created[1].ID, map[string]any{"status": "closed"})
	s.patchTicket(t, created[2].ID, map[string]any{"status": "closed"})
	// A ticket of another account must not count.
	s.createTicket(t, s.createAccount(t, nil).ID, nil)

	rec := s.do(http.MethodGet, "/api/accounts/"+acc.ID)
	detail := decodeAs[helpdesk.AccountDetail](t, rec, http.StatusOK)

	t.Run("ticket counts by status", func(t *testing.T) {
		want := map[models.Status]int64{
			models.StatusOpen: 9, models.StatusPending: 1, models.StatusResolved: 0, models.StatusClosed: 2,
		}
		require.Equal(t, want, detail.TicketCounts)
	})
	t.Run("zero counts present", func(t *testing.T) {
		var raw struct {
			TicketCounts map[string]json.RawMessage `json:"ticketCounts"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
		require.Equal(t, "0", string(raw.TicketCounts["resolved"]))
	})
	t.Run("recent tickets newest first", func(t *testing.T) {
		var want []string
		for i := len(created) - 1; i >= 2; i-- {
			want = append(want, created[i].ID)
		}
		require.Equal(t, want, ticketIDs(detail.RecentTickets...))
	})
	t.Run("account without tickets", func(t *testing.T) {
		empty := s.createAccount(t, nil)
		rec := s.do(http.MethodGet, "/api/accounts/"+empty.ID)
		detail := decodeAs[helpdesk.AccountDetail](t, rec, http.StatusOK)
		require.Equal(t, map[models.Status]int64{"open": 0, "pending": 0, "resolved": 0, "closed": 0}, detail.TicketCounts)
		require.Contains(t, rec.Body.String(), `"recentTickets":[]`)
	})
	t.Run("unknown account", func(t *testing.T) {
		p := requireProblem(t, s.do(http.MethodGet, "/api/accounts/acc_unknown"), http.StatusNotFound)
		require.Contains(t, p.Detail, "acc_unknown")
	})
}

func TestUpdateAccount(t *testing.T) {
	t.Parallel()
	s := setup(t)
	newAccount := func(t *testing.T) models.Account {
		return s.createAccount(t, map[string]any{"domain": "acme.example", "externalId": unique("crm"), "notes": "VIP"})
	}

	t.Run("sent fields stored", func(t *testing.T) {
		acc := newAccount(t)
		patched := decodeAs[models.Account](t, s.do(http.MethodPatch, "/api/accounts/"+acc.ID,
			map[string]any{"name": "Acme Inc", "notes": ""}), http.StatusOK)
		require.Equal(t, "Acme Inc", patched.Name)
		require.Empty(t, patched.Notes)
		require.True(t, patched.UpdatedAt.After(acc.UpdatedAt), "updatedAt %s, was %s", patched.UpdatedAt, acc.UpdatedAt)
		stored := s.getAccount(t, acc.ID)
		require.Equal(t, "Acme Inc", stored.Name)
		require.Empty(t, stored.Notes)
	})
	t.Run("omitted fields keep values", func(t *testing.T) {
		acc := newAccount(t)
		rec := s.do(http.MethodPatch, "/api/accounts/"+acc.ID, map[string]any{"name": "Acme Inc"})
		require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
		stored := s.getAccount(t, acc.ID)
		require.Equal(t, "acme.example", stored.Domain)
		require.Equal(t, acc.ExternalID, stored.ExternalID)
		require.Equal(t, "VIP", stored.Notes)
	})
	t.Run("empty patch changes nothing", func(t *testing.T) {
		acc := newAccount(t)
		same := decodeAs[models.Account](t, s.do(http.MethodPatch, "/api/accounts/"+acc.ID, map[string]any{}), http.StatusOK)
		require.Equal(t, acc, same)
	})
	t.Run("null name", func(t *testing.T) {
		acc := newAccount(t)
		rec := s.do(http.MethodPatch, "/api/accounts/"+acc.ID, map[string]any{"name": nil})
		requireErrorAt(t, rec, http.StatusUnprocessableEntity, "body.name")
		require.Equal(t, acc, s.getAccount(t, acc.ID).Account)
	})
	t.Run("empty name", func(t *testing.T) {
		acc := newAccount(t)
		rec := s.do(http.MethodPatch, "/api/accounts/"+acc.ID, map[string]any{"name": ""})
		requireErrorAt(t, rec, http.StatusUnprocessableEntity, "body.name")
		require.Equal(t, acc, s.getAccount(t, acc.ID).Account)
	})
	t.Run("unknown account", func(t *testing.T) {
		rec := s.do(http.MethodPatch, "/api/accounts/acc_unknown", map[string]any{"name": "x"})
		requireProblem(t, rec, http.StatusNotFound)
	})
}

func TestAccountExternalIDUnique(t *testing.T) {
	t.Parallel()
	s := setup(t)
	externalID := unique("crm")
	acc := s.createAccount(t, map[string]any{"externalId": externalID})

	t.Run("create duplicate", func(t *testing.T) {
		rec := s.do(http.MethodPost, "/api/accounts", map[string]any{"name": "Copy", "externalId": externalID})
		detail := requireErrorAt(t, rec, http.StatusConflict, "body.externalId")
		require.Contains(t, detail.Message, "externalId")
		require.Equal(t, externalID, detail.Value)
		require.EqualValues(t, 1, countRows(t, s.db, "SELECT count(*) FROM accounts WHERE external_id = ?", externalID))
	})
	t.Run("patch to duplicate", func(t *testing.T) {
		other := s.createAccount(t, map[string]any{"externalId": unique("crm")})
		rec := s.do(http.MethodPatch, "/api/accounts/"+other.ID, map[string]any{"externalId": externalID, "name": "Renamed"})
		requireErrorAt(t, rec, http.StatusConflict, "body.externalId")
		require.Equal(t, other, s.getAccount(t, other.ID).Account)
	})
	t.Run("empty externalId repeats", func(t *testing.T) {
		first := s.createAccount(t, map[string]any{"externalId": ""})
		second := s.createAccount(t, map[string]any{"externalId": ""})
		require.NotEqual(t, first.ID, second.ID)
	})
	t.Run("list by externalId", func(t *testing.T) {
		page := s.listAccounts(t, url.Values{"externalId": {externalID}})
		require.Len(t, page.Data, 1)
		require.Equal(t, acc.ID, page.Data[0].ID)
		require.Nil(t, page.NextCursor)
	})
	t.Run("list by unused externalId", func(t *testing.T) {
		rec := s.do(http.MethodGet, "/api/accounts?externalId="+unique("unused"))
		require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
		require.Contains(t, rec.Body.String(), `"data":[]`)
	})
	t.Run("list by domain", func(t *testing.T) {
		domain := unique("list") + ".example"
		first := s.createAccount(t, map[string]any{"domain": domain})
		second := s.createAccount(t, map[string]any{"domain": domain})
		page := s.listAccounts(t, url.Values{"domain": {domain}, "sort": {"createdAt"}})
		require.Equal(t, []string{first.ID, second.ID}, accountIDs(page.Data))
	})
}

func accountIDs(accounts []models.Account) []string {
	ids := make([]string, 0, len(accounts))
	for _, a := range accounts {
		ids = append(ids, a.ID)
	}
	return ids
}

func TestAgents(t *testing.T) {
	t.Parallel()
	s := setup(t)

	t.Run("create", func(t *testing.T) {
		email := unique("lee") + "@support.example"
		agent := decodeAs[models.Agent](t, s.do(http.MethodPost, "/api/agents",
			map[string]any{"name": "Lee Park", "email": email}), http.StatusCreated)
		require.True(t, models.ValidID(models.PrefixAgent, agent.ID), "ID %q", agent.ID)
		require.Equal(t, "Lee Park", agent.Name)
		require.Equal(t, email, agent.Email)
		require.True(t, agent.Active)
		got := decodeAs[models.Agent](t, s.do(http.MethodGet, "/api/agents/"+agent.ID), http.StatusOK)
		require.Equal(t, agent, got)
	})
	t.Run("duplicate email in other case", func(t *testing.T) {
		agent := s.createAgent(t)
		rec := s.do(http.MethodPost, "/api/agents", map[string]any{"name": "Copy", "email": strings.ToUpper(agent.Email)})
		detail := requireErrorAt(t, rec, http.StatusConflict, "body.email")
		require.Contains(t, detail.Message, "email")
		require.EqualValues(t, 1, countRows(t, s.db, "SELECT count(*) FROM agents WHERE lower(email) = lower(?)", agent.Email))
	})
	t.Run("patch to duplicate email", func(t *testing.T) {
		agent := s.createAgent(t)
		other := s.createAgent(t)
		rec := s.do(http.MethodPatch, "/api/agents/"+other.ID, map[string]any{"email": strings.ToUpper(agent.Email)})
		requireErrorAt(t, rec, http.StatusConflict, "body.email")
	})
	t.Run("invalid email", func(t *testing.T) {
		rec := s.do(http.MethodPost, "/api/agents", map[string]any{"name": "Lee", "email": "not an address"})
		requireErrorAt(t, rec, http.StatusUnprocessableEntity, "body.email")
	})
	t.Run("null active", func(t *testing.T) {
		agent := s.createAgent(t)
		rec := s.do(http.MethodPatch, "/api/agents/"+agent.ID, map[string]any{"active": nil})
		requireErrorAt(t, rec, http.StatusUnprocessableEntity, "body.active")
		got := decodeAs[models.Agent](t, s.do(http.MethodGet, "/api/agents/"+agent.ID), http.StatusOK)
		require.True(t, got.Active)
	})
	t.Run("unknown agent", func(t *testing.T) {
		requireProblem(t, s.do(http.MethodGet, "/api/agents/agt_unknown"), http.StatusNotFound)
		requireProblem(t, s.do(http.MethodPatch, "/api/agents/agt_unknown", map[string]any{"name": "x"}), http.StatusNotFound)
	})
}

func TestInactiveAgent(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)
	agent := s.createAgent(t)
	assigned := s.createTicket(t, acc.ID, map[string]any{"assigneeId": agent.ID})
	unassigned := s.createTicket(t, acc.ID, nil)
	s.deactivateAgent(t, agent.ID)

	t.Run("stored inactive", func(t *testing.T) {
		got := decodeAs[models.Agent](t, s.do(http.MethodGet, "/api/agents/"+agent.ID), http.StatusOK)
		require.False(t, got.Active)
	})
	t.Run("keeps assignments", func(t *testing.T) {
		require.Equal(t, &agent.ID, s.getTicket(t, assigned.ID).AssigneeID)
	})
	t.Run("create ticket assigned", func(t *testing.T) {
		rec := s.do(http.MethodPost, "/api/tickets", map[string]any{
			"title": "New", "source": "web", "accountId": acc.ID, "assigneeId": agent.ID,
		})
		detail := requireErrorAt(t, rec, http.StatusUnprocessableEntity, "body.assigneeId")
		require.Contains(t, detail.Message, "inactive")
		require.Zero(t, countRows(t, s.db, "SELECT count(*) FROM tickets WHERE account_id = ? AND title = 'New'", acc.ID))
	})
	t.Run("assign existing ticket", func(t *testing.T) {
		rec := s.do(http.MethodPatch, "/api/tickets/"+unassigned.ID, map[string]any{"assigneeId": agent.ID})
		detail := requireErrorAt(t, rec, http.StatusUnprocessableEntity, "body.assigneeId")
		require.Contains(t, detail.Message, "inactive")
		require.Nil(t, s.getTicket(t, unassigned.ID).AssigneeID)
	})
	t.Run("excluded from active list", func(t *testing.T) {
		active := s.createAgent(t)
		var ids []string
		query := url.Values{"active": {"true"}, "limit": {"100"}}
		for pages := 0; ; pages++ {
			require.Less(t, pages, 50, "the walk does not end")
			page := decodeAs[api.Page[models.Agent]](t, s.do(http.MethodGet, "/api/agents?"+query.Encode()), http.StatusOK)
			for _, a := range page.Data {
				ids = append(ids, a.ID)
			}
			if page.NextCursor == nil {
				break
			}
			query.Set("cursor", *page.NextCursor)
		}
		require.Contains(t, ids, active.ID)
		require.NotContains(t, ids, agent.ID)
	})
	t.Run("reactivated agent assignable", func(t *testing.T) {
		other := s.createAgent(t)
		s.deactivateAgent(t, other.ID)
		rec := s.do(http.MethodPatch, "/api/agents/"+other.ID, map[string]any{"active": true})
		require.True(t, decodeAs[models.Agent](t, rec, http.StatusOK).Active)
		ticket := s.createTicket(t, acc.ID, nil)
		patched := s.patchTicket(t, ticket.ID, map[string]any{"assigneeId": other.ID})
		require.Equal(t, &other.ID, patched.AssigneeID)
	})
}
