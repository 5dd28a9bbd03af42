package api_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2/humatest"
	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/models"
)

// ticketEvent is the part of a ticket event's body that the tests read.
type ticketEvent struct {
	Event string `json:"event"`
	Data  struct {
		ID      string                        `json:"id"`
		Status  models.Status                 `json:"status"`
		Changes map[string]models.FieldChange `json:"changes"`
	} `json:"data"`
}

func decodeEvent(t *testing.T, row eventRow) ticketEvent {
	t.Helper()
	var e ticketEvent
	require.NoError(t, json.Unmarshal([]byte(row.Body), &e), "event body: %s", row.Body)
	return e
}

func TestCreateTicketDefaults(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)
	rec := s.do(http.MethodPost, "/api/tickets", map[string]any{
		"title":     "Cannot export invoices",
		"source":    "email",
		"accountId": acc.ID,
		"tags":      []string{"billing", " billing ", "", "vip", "billing"},
		"requester": map[string]any{"name": "Ada Lovelace", "email": "ada@acme.example"},
	})
	created := decodeAs[models.Ticket](t, rec, http.StatusCreated)

	t.Run("defaults", func(t *testing.T) {
		require.True(t, models.ValidID(models.PrefixTicket, created.ID), "ID %q", created.ID)
		require.Equal(t, models.StatusOpen, created.Status)
		require.Equal(t, models.PriorityMedium, created.Priority)
		require.Equal(t, models.SourceEmail, created.Source)
		require.Equal(t, acc.ID, created.AccountID)
		require.Nil(t, created.AssigneeID)
		require.Empty(t, created.Description)
		require.Nil(t, created.ResolvedAt)
		require.Nil(t, created.ClosedAt)
		require.Equal(t, created.CreatedAt, created.UpdatedAt)
	})
	t.Run("tags deduplicated", func(t *testing.T) {
		require.Equal(t, []string{"billing", "vip"}, []string(created.Tags))
	})
	t.Run("requester stored", func(t *testing.T) {
		require.Equal(t, models.Requester{Name: "Ada Lovelace", Email: "ada@acme.example"}, created.Requester)
	})
	t.Run("stored as returned", func(t *testing.T) {
		require.Equal(t, created, s.getTicket(t, created.ID).Ticket)
	})
	t.Run("ticket.created event", func(t *testing.T) {
		rows := events(t, s.db, created.ID)
		require.Len(t, rows, 1)
		require.Equal(t, "ticket.created", rows[0].Type)
		require.NotNil(t, rows[0].DispatchedAt, "the event was not handed to the queue")
		require.Equal(t, models.StatusOpen, decodeEvent(t, rows[0]).Data.Status)
	})
	t.Run("history records creation", func(t *testing.T) {
		history := s.getTicket(t, created.ID).History
		require.Len(t, history, 1)
		require.Equal(t, s.key.ID, history[0].Actor)
		require.JSONEq(t, `{"status":{"from":null,"to":"open"}}`, string(history[0].Changes))
	})
}

func TestGetTicketDetail(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, map[string]any{"name": "Acme Corp"})
	agent := s.createAgent(t)
	created := s.createTicket(t, acc.ID, map[string]any{"assigneeId": agent.ID})
	rec := s.do(http.MethodPost, "/api/tickets/"+created.ID+"/messages",
		map[string]any{"authorType": "customer", "body": "It still fails."})
	msg := decodeAs[models.Message](t, rec, http.StatusCreated)
	s.patchTicket(t, created.ID, map[string]any{"priority": "high"})

	detail := s.getTicket(t, created.ID)

	t.Run("account", func(t *testing.T) {
		require.Equal(t, acc.ID, detail.Account.ID)
		require.Equal(t, "Acme Corp", detail.Account.Name)
	})
	t.Run("assignee", func(t *testing.T) {
		require.NotNil(t, detail.Assignee)
		require.Equal(t, agent.ID, detail.Assignee.ID)
		require.Equal(t, agent.Email, detail.Assignee.Email)
	})
	t.Run("messages", func(t *testing.T) {
		require.Len(t, detail.Messages, 1)
		require.Equal(t, msg.ID, detail.Messages[0].ID)
		require.Equal(t, "It still fails.", detail.Messages[0].Body)
	})
	t.Run("history oldest first", func(t *testing.T) {
		require.Len(t, detail.History, 2)
		require.JSONEq(t, `{"status":{"from":null,"to":"open"}}`, string(detail.History[0].Changes))
		require.JSONEq(t, `{"priority":{"from":"medium","to":"high"}}`, string(detail.History[1].Changes))
		require.Equal(t, s.key.ID, detail.History[1].Actor)
	})
	t.Run("unknown ticket", func(t *testing.T) {
		p := requireProblem(t, s.do(http.MethodGet, "/api/tickets/tkt_unknown"), http.StatusNotFound)
		require.Contains(t, p.Detail, "tkt_unknown")
	})
}

func TestUpdateTicketMergePatch(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)
	agent := s.createAgent(t)
	newTicket := func(t *testing.T) models.Ticket {
		return s.createTicket(t, acc.ID, map[string]any{
			"description": "Export fails since Monday.",
			"priority":    "high",
			"tags":        []string{"billing"},
			"assigneeId":  agent.ID,
			"requester":   map[string]any{"name": "Ada Lovelace"},
		})
	}

	t.Run("empty description stored", func(t *testing.T) {
		created := newTicket(t)
		patched := s.patchTicket(t, created.ID, map[string]any{"description": ""})
		require.Empty(t, patched.Description)
		require.Empty(t, s.getTicket(t, created.ID).Description)
	})
	t.Run("omitted fields keep values", func(t *testing.T) {
		created := newTicket(t)
		s.patchTicket(t, created.ID, map[string]any{"description": ""})
		stored := s.getTicket(t, created.ID)
		require.Equal(t, created.Title, stored.Title)
		require.Equal(t, models.PriorityHigh, stored.Priority)
		require.Equal(t, models.StatusOpen, stored.Status)
		require.Equal(t, []string{"billing"}, []string(stored.Tags))
		require.Equal(t, &agent.ID, stored.AssigneeID)
		require.Equal(t, created.Requester, stored.Requester)
		require.Equal(t, acc.ID, stored.AccountID)
	})
	t.Run("null assigneeId unassigns", func(t *testing.T) {
		created := newTicket(t)
		patched := s.patchTicket(t, created.ID, map[string]any{"assigneeId": nil})
		require.Nil(t, patched.AssigneeID)
		stored := s.getTicket(t, created.ID)
		require.Nil(t, stored.AssigneeID)
		require.Nil(t, stored.Assignee)
		require.JSONEq(t, `{"assigneeId":{"from":"`+agent.ID+`","to":null}}`, string(stored.History[1].Changes))
	})
	t.Run("assigneeId reassigns", func(t *testing.T) {
		created := newTicket(t)
		other := s.createAgent(t)
		patched := s.patchTicket(t, created.ID, map[string]any{"assigneeId": other.ID})
		require.Equal(t, &other.ID, patched.AssigneeID)
	})
	t.Run("empty tags stored", func(t *testing.T) {
		created := newTicket(t)
		patched := s.patchTicket(t, created.ID, map[string]any{"tags": []string{}})
		require.Empty(t, patched.Tags)
		require.Empty(t, s.getTicket(t, created.ID).Tags)
	})
	t.Run("tags normalized", func(t *testing.T) {
		created := newTicket(t)
		patched := s.patchTicket(t, created.ID, map[string]any{"tags": []string{"vip", " vip", "", "billing"}})
		require.Equal(t, []string{"vip", "billing"}, []string(patched.Tags))
	})
	t.Run("accountId moves ticket", func(t *testing.T) {
		created := newTicket(t)
		other := s.createAccount(t, nil)
		patched := s.patchTicket(t, created.ID, map[string]any{"accountId": other.ID})
		require.Equal(t, other.ID, patched.AccountID)
		require.Equal(t, other.ID, s.getTicket(t, created.ID).Account.ID)
	})
	t.Run("merge-patch content type", func(t *testing.T) {
		created := newTicket(t)
		rec := s.do(http.MethodPatch, "/api/tickets/"+created.ID,
			"Content-Type: application/merge-patch+json", strings.NewReader(`{"priority":"low"}`))
		patched := decodeAs[models.Ticket](t, rec, http.StatusOK)
		require.Equal(t, models.PriorityLow, patched.Priority)
	})
	t.Run("change advances updatedAt", func(t *testing.T) {
		created := newTicket(t)
		patched := s.patchTicket(t, created.ID, map[string]any{"title": "Renamed"})
		require.True(t, patched.UpdatedAt.After(created.UpdatedAt), "updatedAt %s, was %s", patched.UpdatedAt, created.UpdatedAt)
		require.Equal(t, created.CreatedAt, patched.CreatedAt)
	})
}

func TestTicketStatusTransitions(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)

	t.Run("resolve emits events", func(t *testing.T) {
		created := s.createTicket(t, acc.ID, nil)
		resolved := s.patchTicket(t, created.ID, map[string]any{"status": "resolved"})
		require.Equal(t, models.StatusResolved, resolved.Status)
		require.NotNil(t, resolved.ResolvedAt)
		require.Equal(t, resolved.UpdatedAt, *resolved.ResolvedAt)
		require.Nil(t, resolved.ClosedAt)

		rows := events(t, s.db, created.ID)
		require.Len(t, rows, 3)
		require.Equal(t, "ticket.created", rows[0].Type)
		require.ElementsMatch(t, []string{"ticket.updated", "ticket.resolved"}, []string{rows[1].Type, rows[2].Type})
		for _, row := range rows[1:] {
			require.Equal(t, models.StatusResolved, decodeEvent(t, row).Data.Status, "%s event", row.Type)
		}
	})
	t.Run("ticket.updated lists changes", func(t *testing.T) {
		created := s.createTicket(t, acc.ID, nil)
		s.patchTicket(t, created.ID, map[string]any{"status": "resolved", "priority": "low"})
		var updated *ticketEvent
		for _, row := range events(t, s.db, created.ID) {
			if row.Type == "ticket.updated" {
				e := decodeEvent(t, row)
				updated = &e
			}
		}
		require.NotNil(t, updated, "no ticket.updated event")
		require.Equal(t, models.FieldChange{From: "open", To: "resolved"}, updated.Data.Changes["status"])
		require.Equal(t, models.FieldChange{From: "medium", To: "low"}, updated.Data.Changes["priority"])
		require.Len(t, updated.Data.Changes, 2)
	})
	t.Run("reopen clears resolvedAt", func(t *testing.T) {
		created := s.createTicket(t, acc.ID, nil)
		s.patchTicket(t, created.ID, map[string]any{"status": "resolved"})
		reopened := s.patchTicket(t, created.ID, map[string]any{"status": "open"})
		require.Equal(t, models.StatusOpen, reopened.Status)
		require.Nil(t, reopened.ResolvedAt)
		require.Nil(t, s.getTicket(t, created.ID).ResolvedAt)
		types := eventTypes(t, s.db, created.ID)
		require.Len(t, types, 4)
		require.Equal(t, "ticket.updated", types[3], "reopening emits ticket.updated only")
	})
	t.Run("close keeps resolvedAt", func(t *testing.T) {
		created := s.createTicket(t, acc.ID, nil)
		resolved := s.patchTicket(t, created.ID, map[string]any{"status": "resolved"})
		closed := s.patchTicket(t, created.ID, map[string]any{"status": "closed"})
		require.Equal(t, resolved.ResolvedAt, closed.ResolvedAt)
		require.NotNil(t, closed.ClosedAt)
		require.Equal(t, closed.UpdatedAt, *closed.ClosedAt)
	})
	t.Run("reopen from closed", func(t *testing.T) {
		created := s.createTicket(t, acc.ID, nil)
		s.patchTicket(t, created.ID, map[string]any{"status": "closed"})
		pending := s.patchTicket(t, created.ID, map[string]any{"status": "pending"})
		require.Nil(t, pending.ResolvedAt)
		require.Nil(t, pending.ClosedAt)
	})
	t.Run("no-op patch writes nothing", func(t *testing.T) {
		created := s.createTicket(t, acc.ID, map[string]any{"tags": []string{"billing"}})
		for _, patch := range []map[string]any{
			{},
			{"title": created.Title, "status": "open", "priority": "medium", "tags": []string{"billing", " billing"}},
			{"assigneeId": nil},
		} {
			same := s.patchTicket(t, created.ID, patch)
			require.Equal(t, created, same, "patch %v", patch)
		}
		require.Equal(t, []string{"ticket.created"}, eventTypes(t, s.db, created.ID))
		require.Len(t, s.getTicket(t, created.ID).History, 1)
	})
}

func TestListTicketFilters(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)
	dana := s.createAgent(t)
	lee := s.createAgent(t)

	invoice := s.createTicket(t, acc.ID, map[string]any{
		"title": "Invoice export fails", "priority": "high", "source": "email",
		"tags": []string{"billing"}, "assigneeId": dana.ID,
	})
	login := s.createTicket(t, acc.ID, map[string]any{
		"title": "Login loop", "description": "Cannot sign in after the INVOICE change",
		"priority": "low", "source": "web", "tags": []string{"auth", "billing"},
	})
	cpu := s.createTicket(t, acc.ID, map[string]any{
		"title": "100% CPU on the worker", "priority": "urgent", "source": "discord",
	})
	percent := s.createTicket(t, acc.ID, map[string]any{
		"title": "100 percent sure it is DNS", "description": "Hosts use snake_case names",
		"priority": "medium", "source": "web",
	})
	snake := s.createTicket(t, acc.ID, map[string]any{
		"title": "snakeXcase in a path", "priority": "low", "source": "api",
		"tags": []string{"auth"}, "assigneeId": lee.ID,
	})
	s.patchTicket(t, login.ID, map[string]any{"status": "pending"})
	s.patchTicket(t, cpu.ID, map[string]any{"status": "resolved"})
	s.patchTicket(t, percent.ID, map[string]any{"status": "closed"})

	// A ticket of another account that matches every filter below.
	other := s.createAccount(t, nil)
	s.createTicket(t, other.ID, map[string]any{"title": "Invoice 100% snake_case", "tags": []string{"billing", "auth"}})

	cases := []struct {
		name  string
		query url.Values
		want  []models.Ticket
	}{
		{"account only", url.Values{}, []models.Ticket{invoice, login, cpu, percent, snake}},
		{"status several values", url.Values{"status": {"open,pending"}}, []models.Ticket{invoice, login, snake}},
		{"status one value", url.Values{"status": {"resolved"}}, []models.Ticket{cpu}},
		{"priority", url.Values{"priority": {"low"}}, []models.Ticket{login, snake}},
		{"priority several values", url.Values{"priority": {"high,urgent"}}, []models.Ticket{invoice, cpu}},
		{"source", url.Values{"source": {"web"}}, []models.Ticket{login, percent}},
		{"source several values", url.Values{"source": {"email,api"}}, []models.Ticket{invoice, snake}},
		{"assigneeId", url.Values{"assigneeId": {dana.ID}}, []models.Ticket{invoice}},
		{"tag", url.Values{"tag": {"billing"}}, []models.Ticket{invoice, login}},
		{"unused tag", url.Values{"tag": {"nothing"}}, nil},
		{"q in title or description ignoring case", url.Values{"q": {"invoice"}}, []models.Ticket{invoice, login}},
		{"q with percent sign", url.Values{"q": {"100%"}}, []models.Ticket{cpu}},
		{"q with underscore", url.Values{"q": {"e_c"}}, []models.Ticket{percent}},
		{"filters combine", url.Values{"status": {"open"}, "tag": {"auth"}}, []models.Ticket{snake}},
		{"createdAfter inclusive", url.Values{"createdAfter": {cpu.CreatedAt.Format(time.RFC3339Nano)}}, []models.Ticket{cpu, percent, snake}},
		{"createdBefore exclusive", url.Values{"createdBefore": {cpu.CreatedAt.Format(time.RFC3339Nano)}}, []models.Ticket{invoice, login}},
		{"created range", url.Values{
			"createdAfter":  {login.CreatedAt.Format(time.RFC3339Nano)},
			"createdBefore": {percent.CreatedAt.Format(time.RFC3339Nano)},
		}, []models.Ticket{login, cpu}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			query := maps.Clone(tc.query)
			query.Set("accountId", acc.ID)
			page := s.listTickets(t, query)
			require.ElementsMatch(t, ticketIDs(tc.want...), ticketIDs(page.Data...))
			require.Nil(t, page.NextCursor)
		})
	}
}

func TestListTicketSort(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)
	first := s.createTicket(t, acc.ID, nil)
	second := s.createTicket(t, acc.ID, nil)
	third := s.createTicket(t, acc.ID, nil)
	// Updating the oldest ticket makes it the most recently updated.
	s.patchTicket(t, first.ID, map[string]any{"priority": "high"})

	cases := []struct {
		sort string
		want []models.Ticket
	}{
		{"", []models.Ticket{third, second, first}},
		{"createdAt", []models.Ticket{first, second, third}},
		{"-createdAt", []models.Ticket{third, second, first}},
		{"updatedAt", []models.Ticket{second, third, first}},
		{"-updatedAt", []models.Ticket{first, third, second}},
	}
	for _, tc := range cases {
		t.Run("sort="+tc.sort, func(t *testing.T) {
			query := url.Values{"accountId": {acc.ID}}
			if tc.sort != "" {
				query.Set("sort", tc.sort)
			}
			require.Equal(t, ticketIDs(tc.want...), ticketIDs(s.listTickets(t, query).Data...))
		})
	}
}

func TestListTicketPagination(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)
	const total = 250
	// created is oldest first, so the default order returns it backwards.
	created := make([]string, 0, total)
	for i := range total {
		tk, err := s.deps.Helpdesk.CreateTicket(t.Context(), helpdesk.NewTicket{
			Title:     fmt.Sprintf("Paged ticket %03d", i),
			Priority:  models.PriorityMedium,
			Source:    models.SourceAPI,
			AccountID: acc.ID,
		}, s.key.ID)
		require.NoError(t, err)
		created = append(created, tk.ID)
	}

	t.Run("updates between pages", func(t *testing.T) {
		walked, sizes := s.walkTickets(t, url.Values{"accountId": {acc.ID}}, func(walked []models.Ticket, pages int) {
			// Update some tickets already returned and some that come
			// later, which are the oldest ones.
			for k := range 3 {
				s.patchTicket(t, walked[len(walked)-1-k*7].ID, map[string]any{"priority": "urgent"})
				s.patchTicket(t, created[pages*10+k], map[string]any{"status": "pending", "tags": []string{"moved"}})
			}
		})
		require.Equal(t, []int{100, 100, 50}, sizes)
		requireEachOnce(t, created, walked)
		for i := 1; i < len(walked); i++ {
			prev, cur := walked[i-1], walked[i]
			ordered := prev.CreatedAt.After(cur.CreatedAt) || (prev.CreatedAt.Equal(cur.CreatedAt) && prev.ID > cur.ID)
			require.True(t, ordered, "ticket %d (%s) is out of order", i, cur.ID)
		}
	})
	t.Run("ascending createdAt", func(t *testing.T) {
		walked, sizes := s.walkTickets(t, url.Values{"accountId": {acc.ID}, "sort": {"createdAt"}}, nil)
		require.Equal(t, []int{100, 100, 50}, sizes)
		require.Equal(t, created, ticketIDs(walked...))
	})
	t.Run("updatedAt", func(t *testing.T) {
		walked, sizes := s.walkTickets(t, url.Values{"accountId": {acc.ID}, "sort": {"updatedAt"}}, nil)
		require.Equal(t, []int{100, 100, 50}, sizes)
		requireEachOnce(t, created, walked)
		for i := 1; i < len(walked); i++ {
			require.False(t, walked[i].UpdatedAt.Before(walked[i-1].UpdatedAt), "ticket %d (%s) is out of order", i, walked[i].ID)
		}
	})
}

// walkTickets lists the tickets that match query, 100 per page, until the
// last page. After each page but the last, it calls between with the tickets
// so far and the number of pages. It returns the tickets and the page sizes.
func (s *server) walkTickets(t *testing.T, query url.Values, between func(walked []models.Ticket, pages int)) ([]models.Ticket, []int) {
	t.Helper()
	query = maps.Clone(query)
	query.Set("limit", "100")
	var walked []models.Ticket
	var sizes []int
	for {
		page := s.listTickets(t, query)
		sizes = append(sizes, len(page.Data))
		walked = append(walked, page.Data...)
		if page.NextCursor == nil {
			return walked, sizes
		}
		require.Less(t, len(sizes), 10, "the walk does not end")
		if between != nil {
			between(walked, len(sizes))
		}
		query.Set("cursor", *page.NextCursor)
	}
}

// requireEachOnce requires that walked contains every ID of want exactly
// once and nothing else.
func requireEachOnce(t *testing.T, want []string, walked []models.Ticket) {
	t.Helper()
	seen := map[string]int{}
	for _, tk := range walked {
		seen[tk.ID]++
	}
	for id, n := range seen {
		require.Equal(t, 1, n, "ticket %s appeared %d times", id, n)
	}
	require.ElementsMatch(t, want, slices.Collect(maps.Keys(seen)))
}

func TestListTicketsRejectsBadQuery(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)
	s.createTicket(t, acc.ID, nil)
	s.createTicket(t, acc.ID, nil)
	page := s.listTickets(t, url.Values{"accountId": {acc.ID}, "limit": {"1"}, "sort": {"-createdAt"}})
	require.NotNil(t, page.NextCursor)
	cursor := *page.NextCursor

	cases := []struct {
		name     string
		query    url.Values
		location string
		message  string
	}{
		{"malformed cursor", url.Values{"cursor": {"not-a-cursor"}}, "query.cursor", "malformed cursor"},
		{"cursor of another sort", url.Values{"cursor": {cursor}, "sort": {"createdAt"}}, "query.cursor", `"-createdAt"`},
		{"limit over 100", url.Values{"limit": {"101"}}, "query.limit", "100"},
		{"limit 0", url.Values{"limit": {"0"}}, "query.limit", "1"},
		{"unknown sort", url.Values{"sort": {"title"}}, "query.sort", "createdAt"},
		{"unknown status", url.Values{"status": {"open,archived"}}, "query.status[1]", "open, pending, resolved, closed"},
		{"unknown priority", url.Values{"priority": {"critical"}}, "query.priority[0]", "low, medium, high, urgent"},
		{"unknown source", url.Values{"source": {"fax"}}, "query.source[0]", "web, email"},
		{"createdAfter not a timestamp", url.Values{"createdAfter": {"yesterday"}}, "query.createdAfter", "date/time"},
		{"q too long", url.Values{"q": {strings.Repeat("q", 201)}}, "query.q", "200"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			query := maps.Clone(tc.query)
			query.Set("accountId", acc.ID)
			rec := s.do(http.MethodGet, "/api/tickets?"+query.Encode())
			detail := requireErrorAt(t, rec, http.StatusUnprocessableEntity, tc.location)
			require.Contains(t, detail.Message, tc.message)
		})
	}
}

func TestCreateTicketRejectsBadInput(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)
	inactive := s.createAgent(t)
	s.deactivateAgent(t, inactive.ID)

	// Each case changes a valid body. set overrides fields, and drop removes
	// one.
	cases := []struct {
		name     string
		set      map[string]any
		drop     string
		location string
		message  string
	}{
		{"unknown priority", map[string]any{"priority": "critical"}, "", "body.priority", "low, medium, high, urgent"},
		{"unknown source", map[string]any{"source": "fax"}, "", "body.source", "web, email, discord"},
		{"missing title", nil, "title", "body.title", "title"},
		{"missing source", nil, "source", "body.source", "source"},
		{"missing accountId", nil, "accountId", "body.accountId", "accountId"},
		{"empty title", map[string]any{"title": ""}, "", "body.title", "length"},
		{"title too long", map[string]any{"title": strings.Repeat("t", 301)}, "", "body.title", "300"},
		{"title of wrong type", map[string]any{"title": 42}, "", "body.title", "expected string"},
		{"tags of wrong type", map[string]any{"tags": "billing"}, "", "body.tags", "expected array"},
		{"too many tags", map[string]any{"tags": slices.Repeat([]string{"t"}, 21)}, "", "body.tags", "20"},
		{"invalid requester email", map[string]any{"requester": map[string]any{"email": "not an address"}}, "", "body.requester.email", "email"},
		{"unknown field", map[string]any{"owner": "dana"}, "", "body.owner", "unexpected property"},
		{"unknown accountId", map[string]any{"accountId": "acc_unknown"}, "", "body.accountId", "no account has this ID"},
		{"unknown assigneeId", map[string]any{"assigneeId": "agt_unknown"}, "", "body.assigneeId", "no agent has this ID"},
		{"inactive assignee", map[string]any{"assigneeId": inactive.ID}, "", "body.assigneeId", "inactive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			marker := unique("marker")
			body := map[string]any{"title": "Bad input", "source": "web", "accountId": acc.ID, "description": marker}
			maps.Copy(body, tc.set)
			delete(body, tc.drop)

			rec := s.do(http.MethodPost, "/api/tickets", body)
			detail := requireErrorAt(t, rec, http.StatusUnprocessableEntity, tc.location)
			require.Contains(t, detail.Message, tc.message)

			require.Zero(t, ticketCount(t, s.db, acc.ID))
			require.Zero(t, countRows(t, s.db, "SELECT count(*) FROM tickets WHERE description = ?", marker))
			require.Zero(t, countRows(t, s.db, "SELECT count(*) FROM events WHERE body LIKE ?", "%"+marker+"%"))
		})
	}

	t.Run("body over 1 MiB", func(t *testing.T) {
		marker := unique("marker")
		body := fmt.Sprintf(`{"title":"Too large","source":"web","accountId":%q,"description":"%s %s"}`,
			acc.ID, marker, strings.Repeat("x", 1<<20))
		quiet := humatest.Wrap(quietTB{t}, s.api)
		rec := quiet.Post("/api/tickets", s.auth, "Content-Type: application/json", strings.NewReader(body))
		p := requireProblem(t, rec, http.StatusRequestEntityTooLarge)
		require.Contains(t, p.Detail, "1048576")
		require.Zero(t, ticketCount(t, s.db, acc.ID))
		require.Zero(t, countRows(t, s.db, "SELECT count(*) FROM events WHERE body LIKE ?", "%"+marker+"%"))
	})
	t.Run("malformed JSON", func(t *testing.T) {
		rec := s.do(http.MethodPost, "/api/tickets", "Content-Type: application/json",
			strings.NewReader(`{"title":"Broken","source":"web","accountId":"`+acc.ID+`"`))
		detail := requireErrorAt(t, rec, http.StatusBadRequest, "body")
		require.Contains(t, detail.Message, "JSON")
		require.Zero(t, ticketCount(t, s.db, acc.ID))
	})
}

func TestUpdateTicketRejectsBadInput(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)
	agent := s.createAgent(t)
	inactive := s.createAgent(t)
	s.deactivateAgent(t, inactive.ID)
	newTicket := func(t *testing.T) models.Ticket {
		return s.createTicket(t, acc.ID, map[string]any{"description": "Keep me", "assigneeId": agent.ID})
	}

	// requireUnchanged checks that the ticket, its history and its events
	// are as they were after creation.
	requireUnchanged := func(t *testing.T, original models.Ticket) {
		t.Helper()
		stored := s.getTicket(t, original.ID)
		require.Equal(t, original, stored.Ticket)
		require.Len(t, stored.History, 1)
		require.Equal(t, []string{"ticket.created"}, eventTypes(t, s.db, original.ID))
	}

	cases := []struct {
		name     string
		patch    map[string]any
		location string
		message  string
	}{
		{"unknown status", map[string]any{"status": "archived"}, "body.status", "open, pending, resolved, closed"},
		{"unknown priority", map[string]any{"priority": "critical"}, "body.priority", "low, medium, high, urgent"},
		{"null title", map[string]any{"title": nil}, "body.title", "null"},
		{"null status", map[string]any{"status": nil}, "body.status", "null"},
		{"null priority", map[string]any{"priority": nil}, "body.priority", "null"},
		{"null accountId", map[string]any{"accountId": nil}, "body.accountId", "null"},
		{"empty title", map[string]any{"title": ""}, "body.title", "length"},
		{"title of wrong type", map[string]any{"title": 42}, "body.title", "expected string"},
		{"tags of wrong type", map[string]any{"tags": "billing"}, "body.tags", "expected array"},
		{"empty assigneeId", map[string]any{"assigneeId": ""}, "body.assigneeId", "length"},
		{"unknown assigneeId", map[string]any{"assigneeId": "agt_unknown"}, "body.assigneeId", "no agent has this ID"},
		{"inactive assignee", map[string]any{"assigneeId": inactive.ID}, "body.assigneeId", "inactive"},
		{"unknown accountId", map[string]any{"accountId": "acc_unknown"}, "body.accountId", "no account has this ID"},
		{"unknown field", map[string]any{"owner": "dana"}, "body.owner", "unexpected property"},
		{"valid field with invalid one", map[string]any{"title": "New title", "priority": "critical"}, "body.priority", "low, medium"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			original := newTicket(t)
			rec := s.do(http.MethodPatch, "/api/tickets/"+original.ID, tc.patch)
			detail := requireErrorAt(t, rec, http.StatusUnprocessableEntity, tc.location)
			require.Contains(t, detail.Message, tc.message)
			requireUnchanged(t, original)
		})
	}

	t.Run("body over 1 MiB", func(t *testing.T) {
		original := newTicket(t)
		body := `{"description":"` + strings.Repeat("x", 1<<20) + `"}`
		quiet := humatest.Wrap(quietTB{t}, s.api)
		rec := quiet.Patch("/api/tickets/"+original.ID, s.auth, "Content-Type: application/json", strings.NewReader(body))
		requireProblem(t, rec, http.StatusRequestEntityTooLarge)
		requireUnchanged(t, original)
	})
	t.Run("unknown ticket", func(t *testing.T) {
		rec := s.do(http.MethodPatch, "/api/tickets/tkt_unknown", map[string]any{"title": "x"})
		requireProblem(t, rec, http.StatusNotFound)
	})
}
