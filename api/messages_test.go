package api_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/models"
)

func (s *server) postMessage(t *testing.T, ticketID string, body map[string]any) models.Message {
	t.Helper()
	rec := s.do(http.MethodPost, "/api/tickets/"+ticketID+"/messages", body)
	return decodeAs[models.Message](t, rec, http.StatusCreated)
}

func (s *server) listMessages(t *testing.T, ticketID string, query url.Values) api.Page[models.Message] {
	t.Helper()
	rec := s.do(http.MethodGet, "/api/tickets/"+ticketID+"/messages?"+query.Encode())
	return decodeAs[api.Page[models.Message]](t, rec, http.StatusOK)
}

func messageIDs(messages ...models.Message) []string {
	ids := make([]string, 0, len(messages))
	for _, m := range messages {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestCreateMessage(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)
	agent := s.createAgent(t)
	ticket := s.createTicket(t, acc.ID, nil)

	t.Run("customer message", func(t *testing.T) {
		msg := s.postMessage(t, ticket.ID, map[string]any{
			"authorType": "customer", "authorName": "Ada Lovelace", "body": "Export still fails.",
		})
		require.True(t, models.ValidID(models.PrefixMessage, msg.ID), "ID %q", msg.ID)
		require.Equal(t, ticket.ID, msg.TicketID)
		require.Equal(t, models.AuthorCustomer, msg.AuthorType)
		require.Nil(t, msg.AuthorID)
		require.Equal(t, "Ada Lovelace", msg.AuthorName)
		require.Equal(t, "Export still fails.", msg.Body)
		require.False(t, msg.Internal)
	})
	t.Run("agent message defaults name", func(t *testing.T) {
		msg := s.postMessage(t, ticket.ID, map[string]any{
			"authorType": "agent", "authorId": agent.ID, "body": "Looking into it.",
		})
		require.Equal(t, &agent.ID, msg.AuthorID)
		require.Equal(t, agent.Name, msg.AuthorName)
	})
	t.Run("agent message keeps name", func(t *testing.T) {
		msg := s.postMessage(t, ticket.ID, map[string]any{
			"authorType": "agent", "authorId": agent.ID, "authorName": "Support", "body": "Fixed.",
		})
		require.Equal(t, "Support", msg.AuthorName)
	})
	t.Run("system message", func(t *testing.T) {
		msg := s.postMessage(t, ticket.ID, map[string]any{"authorType": "system", "body": "Ticket escalated."})
		require.Equal(t, models.AuthorSystem, msg.AuthorType)
		require.Nil(t, msg.AuthorID)
	})
	t.Run("internal note", func(t *testing.T) {
		msg := s.postMessage(t, ticket.ID, map[string]any{
			"authorType": "agent", "authorId": agent.ID, "body": "Customer is on the old plan.", "internal": true,
		})
		require.True(t, msg.Internal)
		stored := s.getTicket(t, ticket.ID).Messages
		require.Contains(t, messageIDs(stored...), msg.ID)
	})
	t.Run("message.created event", func(t *testing.T) {
		msg := s.postMessage(t, ticket.ID, map[string]any{"authorType": "customer", "body": "Any news?"})
		rows := events(t, s.db, msg.ID)
		require.Len(t, rows, 1)
		require.Equal(t, "message.created", rows[0].Type)
		require.Contains(t, rows[0].Body, `"ticketId":"`+ticket.ID+`"`)
	})
	t.Run("bumps ticket updatedAt", func(t *testing.T) {
		msg := s.postMessage(t, ticket.ID, map[string]any{"authorType": "customer", "body": "Hello?"})
		require.Equal(t, msg.CreatedAt, s.getTicket(t, ticket.ID).UpdatedAt)
	})
}

func TestCreateMessageRejectsBadInput(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)
	agent := s.createAgent(t)
	ticket := s.createTicket(t, acc.ID, nil)
	messageCount := func(t *testing.T) int64 {
		return countRows(t, s.db, "SELECT count(*) FROM messages WHERE ticket_id = ?", ticket.ID)
	}

	cases := []struct {
		name     string
		body     map[string]any
		location string
		message  string
	}{
		{"authorId with customer", map[string]any{"authorType": "customer", "authorId": agent.ID, "body": "x"}, "body.authorId", "authorType must be agent"},
		{"authorId with system", map[string]any{"authorType": "system", "authorId": agent.ID, "body": "x"}, "body.authorId", "authorType must be agent"},
		{"unknown authorId", map[string]any{"authorType": "agent", "authorId": "agt_unknown", "body": "x"}, "body.authorId", "no agent has this ID"},
		{"internal customer note", map[string]any{"authorType": "customer", "body": "x", "internal": true}, "body.internal", "customers cannot write internal notes"},
		{"unknown authorType", map[string]any{"authorType": "robot", "body": "x"}, "body.authorType", "customer, agent, system, bot"},
		{"missing authorType", map[string]any{"body": "x"}, "body.authorType", "authorType"},
		{"empty body", map[string]any{"authorType": "customer", "body": ""}, "body.body", "length"},
		{"internal of wrong type", map[string]any{"authorType": "agent", "body": "x", "internal": "yes"}, "body.internal", "expected boolean"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := s.do(http.MethodPost, "/api/tickets/"+ticket.ID+"/messages", tc.body)
			detail := requireErrorAt(t, rec, http.StatusUnprocessableEntity, tc.location)
			require.Contains(t, detail.Message, tc.message)
			require.Zero(t, messageCount(t))
			require.Equal(t, []string{"ticket.created"}, eventTypes(t, s.db, ticket.ID))
		})
	}

	t.Run("unknown ticket", func(t *testing.T) {
		rec := s.do(http.MethodPost, "/api/tickets/tkt_unknown/messages", map[string]any{"authorType": "customer", "body": "x"})
		p := requireProblem(t, rec, http.StatusNotFound)
		require.Contains(t, p.Detail, "tkt_unknown")
		require.Zero(t, countRows(t, s.db, "SELECT count(*) FROM messages WHERE ticket_id = ?", "tkt_unknown"))
	})
}

func TestListMessages(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)
	agent := s.createAgent(t)
	ticket := s.createTicket(t, acc.ID, nil)
	var posted []models.Message
	for _, body := range []map[string]any{
		{"authorType": "customer", "body": "First"},
		{"authorType": "agent", "authorId": agent.ID, "body": "Second"},
		{"authorType": "agent", "authorId": agent.ID, "body": "Third, internal", "internal": true},
		{"authorType": "system", "body": "Fourth"},
		{"authorType": "customer", "body": "Fifth"},
	} {
		posted = append(posted, s.postMessage(t, ticket.ID, body))
	}
	// Another ticket's message must not appear.
	other := s.createTicket(t, acc.ID, nil)
	s.postMessage(t, other.ID, map[string]any{"authorType": "customer", "body": "Elsewhere"})

	t.Run("oldest first with internal notes", func(t *testing.T) {
		page := s.listMessages(t, ticket.ID, nil)
		require.Equal(t, messageIDs(posted...), messageIDs(page.Data...))
		require.Nil(t, page.NextCursor)
	})
	t.Run("newest first", func(t *testing.T) {
		page := s.listMessages(t, ticket.ID, url.Values{"sort": {"-createdAt"}})
		want := messageIDs(posted...)
		for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
			want[i], want[j] = want[j], want[i]
		}
		require.Equal(t, want, messageIDs(page.Data...))
	})
	t.Run("paginates", func(t *testing.T) {
		var walked []models.Message
		var sizes []int
		query := url.Values{"limit": {"2"}}
		for {
			page := s.listMessages(t, ticket.ID, query)
			sizes = append(sizes, len(page.Data))
			walked = append(walked, page.Data...)
			if page.NextCursor == nil {
				break
			}
			require.Less(t, len(sizes), 10, "the walk does not end")
			query.Set("cursor", *page.NextCursor)
		}
		require.Equal(t, []int{2, 2, 1}, sizes)
		require.Equal(t, messageIDs(posted...), messageIDs(walked...))
	})
	t.Run("ticket without messages", func(t *testing.T) {
		empty := s.createTicket(t, acc.ID, nil)
		rec := s.do(http.MethodGet, "/api/tickets/"+empty.ID+"/messages")
		require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
		require.Contains(t, rec.Body.String(), `"data":[]`)
	})
	t.Run("unknown ticket", func(t *testing.T) {
		requireProblem(t, s.do(http.MethodGet, "/api/tickets/tkt_unknown/messages"), http.StatusNotFound)
	})
	t.Run("unknown sort", func(t *testing.T) {
		rec := s.do(http.MethodGet, "/api/tickets/"+ticket.ID+"/messages?sort=updatedAt")
		detail := requireErrorAt(t, rec, http.StatusUnprocessableEntity, "query.sort")
		require.Contains(t, detail.Message, "createdAt")
	})
}
