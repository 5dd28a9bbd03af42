package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/models"
)

// hookURL returns a URL that no other test uses.
func hookURL() string {
	return "https://hooks.example.com/" + unique("outpost")
}

func (s *server) createWebhook(t *testing.T, body map[string]any) api.CreatedWebhook {
	t.Helper()
	return decodeAs[api.CreatedWebhook](t, s.do(http.MethodPost, "/api/webhooks", body), http.StatusCreated)
}

// requireNoSecret requires that raw, a JSON response body, has no secret
// member at any depth and does not contain secret.
func requireNoSecret(t *testing.T, raw []byte, secret string) {
	t.Helper()
	require.NotContains(t, string(raw), secret)
	var v any
	require.NoError(t, json.Unmarshal(raw, &v))
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, member := range v {
				require.NotEqual(t, "secret", strings.ToLower(k), "response has a secret member: %s", raw)
				walk(member)
			}
		case []any:
			for _, item := range v {
				walk(item)
			}
		}
	}
	walk(v)
}

func TestCreateWebhook(t *testing.T) {
	t.Parallel()
	s := setup(t)
	target := hookURL()
	rec := s.do(http.MethodPost, "/api/webhooks", map[string]any{
		"url":         target,
		"events":      []string{"ticket.resolved", "ticket.created", "ticket.created"},
		"description": "CRM sync",
	})
	created := decodeAs[api.CreatedWebhook](t, rec, http.StatusCreated)

	t.Run("returns secret once", func(t *testing.T) {
		require.True(t, strings.HasPrefix(created.Secret, "whsec_"), "secret %q", created.Secret)
		require.Greater(t, len(created.Secret), len("whsec_")+20)
	})
	t.Run("fields", func(t *testing.T) {
		require.True(t, models.ValidID(models.PrefixEndpoint, created.ID), "ID %q", created.ID)
		require.Equal(t, target, created.URL)
		require.Equal(t, []string{"ticket.created", "ticket.resolved"}, []string(created.Events))
		require.Equal(t, "CRM sync", created.Description)
		require.True(t, created.Enabled)
	})
	t.Run("secrets differ", func(t *testing.T) {
		other := s.createWebhook(t, map[string]any{"url": hookURL(), "events": []string{"*"}})
		require.NotEqual(t, created.Secret, other.Secret)
	})
	t.Run("get hides secret", func(t *testing.T) {
		rec := s.do(http.MethodGet, "/api/webhooks/"+created.ID)
		got := decodeAs[models.WebhookEndpoint](t, rec, http.StatusOK)
		require.Equal(t, created.ID, got.ID)
		requireNoSecret(t, rec.Body.Bytes(), created.Secret)
	})
	t.Run("list hides secret", func(t *testing.T) {
		found := false
		query := url.Values{"limit": {"100"}}
		for pages := 0; ; pages++ {
			require.Less(t, pages, 50, "the walk does not end")
			rec := s.do(http.MethodGet, "/api/webhooks?"+query.Encode())
			page := decodeAs[api.Page[models.WebhookEndpoint]](t, rec, http.StatusOK)
			requireNoSecret(t, rec.Body.Bytes(), created.Secret)
			for _, ep := range page.Data {
				found = found || ep.ID == created.ID
			}
			if page.NextCursor == nil {
				break
			}
			query.Set("cursor", *page.NextCursor)
		}
		require.True(t, found, "endpoint %s is not listed", created.ID)
	})
	t.Run("patch hides secret", func(t *testing.T) {
		rec := s.do(http.MethodPatch, "/api/webhooks/"+created.ID, map[string]any{"description": "CRM sync v2"})
		require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
		requireNoSecret(t, rec.Body.Bytes(), created.Secret)
	})
}

func TestCreateWebhookRejectsBadInput(t *testing.T) {
	t.Parallel()
	s := setup(t)

	cases := []struct {
		name     string
		url      string
		events   []string
		location string
		message  string
	}{
		{"not a URL", "not a url", []string{"*"}, "body.url", "absolute http or https URL"},
		{"relative URL", "/outpost/hooks", []string{"*"}, "body.url", "absolute http or https URL"},
		{"unsupported scheme", "ftp://hooks.example.com/" + unique("outpost"), []string{"*"}, "body.url", "use http or https"},
		{"credentials in URL", "https://user:pass@hooks.example.com/" + unique("outpost"), []string{"*"}, "body.url", "credentials"},
		{"fragment in URL", hookURL() + "#part", []string{"*"}, "body.url", "fragment"},
		{"unknown event", hookURL(), []string{"ticket.created", "ticket.deleted"}, "body.events[1]", "ticket.created, ticket.updated, ticket.resolved"},
		{"no events", hookURL(), []string{}, "body.events", "1"},
		{"wildcard with others", hookURL(), []string{"*", "ticket.created"}, "body.events", "alone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := s.do(http.MethodPost, "/api/webhooks", map[string]any{"url": tc.url, "events": tc.events})
			detail := requireErrorAt(t, rec, http.StatusUnprocessableEntity, tc.location)
			require.Contains(t, detail.Message, tc.message)
			require.Zero(t, countRows(t, s.db, "SELECT count(*) FROM webhook_endpoints WHERE url = ?", tc.url))
		})
	}

	t.Run("missing url", func(t *testing.T) {
		rec := s.do(http.MethodPost, "/api/webhooks", map[string]any{"events": []string{"*"}})
		requireErrorAt(t, rec, http.StatusUnprocessableEntity, "body.url")
	})
	t.Run("missing events", func(t *testing.T) {
		target := hookURL()
		rec := s.do(http.MethodPost, "/api/webhooks", map[string]any{"url": target})
		requireErrorAt(t, rec, http.StatusUnprocessableEntity, "body.events")
		require.Zero(t, countRows(t, s.db, "SELECT count(*) FROM webhook_endpoints WHERE url = ?", target))
	})
}

func TestUpdateWebhook(t *testing.T) {
	t.Parallel()
	s := setup(t)
	newWebhook := func(t *testing.T) api.CreatedWebhook {
		return s.createWebhook(t, map[string]any{"url": hookURL(), "events": []string{"ticket.created"}, "description": "CRM sync"})
	}

	t.Run("sent fields stored", func(t *testing.T) {
		created := newWebhook(t)
		target := hookURL()
		rec := s.do(http.MethodPatch, "/api/webhooks/"+created.ID, map[string]any{
			"url": target, "events": []string{"*"}, "description": "", "enabled": false,
		})
		patched := decodeAs[models.WebhookEndpoint](t, rec, http.StatusOK)
		require.Equal(t, target, patched.URL)
		require.Equal(t, []string{"*"}, []string(patched.Events))
		require.Empty(t, patched.Description)
		require.False(t, patched.Enabled)
		stored := decodeAs[models.WebhookEndpoint](t, s.do(http.MethodGet, "/api/webhooks/"+created.ID), http.StatusOK)
		require.Equal(t, patched, stored)
	})
	t.Run("omitted fields keep values", func(t *testing.T) {
		created := newWebhook(t)
		rec := s.do(http.MethodPatch, "/api/webhooks/"+created.ID, map[string]any{"enabled": false})
		patched := decodeAs[models.WebhookEndpoint](t, rec, http.StatusOK)
		require.Equal(t, created.URL, patched.URL)
		require.Equal(t, []string{"ticket.created"}, []string(patched.Events))
		require.Equal(t, "CRM sync", patched.Description)
	})
	t.Run("secret unchanged", func(t *testing.T) {
		created := newWebhook(t)
		rec := s.do(http.MethodPatch, "/api/webhooks/"+created.ID, map[string]any{"url": hookURL()})
		require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
		n := countRows(t, s.db, "SELECT count(*) FROM webhook_endpoints WHERE id = ? AND secret = ?", created.ID, created.Secret)
		require.EqualValues(t, 1, n)
	})

	badPatches := []struct {
		name     string
		patch    map[string]any
		location string
		message  string
	}{
		{"invalid URL", map[string]any{"url": "not a url"}, "body.url", "absolute http or https URL"},
		{"unknown event", map[string]any{"events": []string{"ticket.created", "ticket.deleted"}}, "body.events[1]", "unknown event type"},
		{"null enabled", map[string]any{"enabled": nil}, "body.enabled", "null"},
		{"null url", map[string]any{"url": nil}, "body.url", "null"},
	}
	for _, tc := range badPatches {
		t.Run(tc.name, func(t *testing.T) {
			created := newWebhook(t)
			rec := s.do(http.MethodPatch, "/api/webhooks/"+created.ID, tc.patch)
			detail := requireErrorAt(t, rec, http.StatusUnprocessableEntity, tc.location)
			require.Contains(t, detail.Message, tc.message)
			stored := decodeAs[models.WebhookEndpoint](t, s.do(http.MethodGet, "/api/webhooks/"+created.ID), http.StatusOK)
			require.Equal(t, created.WebhookEndpoint.UpdatedAt, stored.UpdatedAt)
			require.True(t, stored.Enabled)
		})
	}

	t.Run("unknown endpoint", func(t *testing.T) {
		rec := s.do(http.MethodPatch, "/api/webhooks/whk_unknown", map[string]any{"enabled": false})
		requireProblem(t, rec, http.StatusNotFound)
	})
}

func TestDeleteWebhook(t *testing.T) {
	t.Parallel()
	s := setup(t)
	created := s.createWebhook(t, map[string]any{"url": hookURL(), "events": []string{"*"}})

	rec := s.do(http.MethodDelete, "/api/webhooks/"+created.ID)
	require.Equal(t, http.StatusNoContent, rec.Code, "body: %s", rec.Body)
	require.Empty(t, rec.Body.String())

	t.Run("get after delete", func(t *testing.T) {
		requireProblem(t, s.do(http.MethodGet, "/api/webhooks/"+created.ID), http.StatusNotFound)
	})
	t.Run("delete again", func(t *testing.T) {
		requireProblem(t, s.do(http.MethodDelete, "/api/webhooks/"+created.ID), http.StatusNotFound)
	})
	t.Run("deliveries after delete", func(t *testing.T) {
		requireProblem(t, s.do(http.MethodGet, "/api/webhooks/"+created.ID+"/deliveries"), http.StatusNotFound)
	})
	t.Run("row removed", func(t *testing.T) {
		require.Zero(t, countRows(t, s.db, "SELECT count(*) FROM webhook_endpoints WHERE id = ?", created.ID))
	})
}

func TestListWebhookDeliveries(t *testing.T) {
	t.Parallel()
	s := setup(t)
	created := s.createWebhook(t, map[string]any{"url": hookURL(), "events": []string{"*"}})

	t.Run("unknown endpoint", func(t *testing.T) {
		p := requireProblem(t, s.do(http.MethodGet, "/api/webhooks/whk_unknown/deliveries"), http.StatusNotFound)
		require.Contains(t, p.Detail, "whk_unknown")
	})
	t.Run("endpoint without deliveries", func(t *testing.T) {
		rec := s.do(http.MethodGet, "/api/webhooks/"+created.ID+"/deliveries")
		page := decodeAs[api.Page[models.WebhookDelivery]](t, rec, http.StatusOK)
		require.Empty(t, page.Data)
		require.Nil(t, page.NextCursor)
		require.Contains(t, rec.Body.String(), `"data":[]`)
	})
	t.Run("unknown status filter", func(t *testing.T) {
		rec := s.do(http.MethodGet, "/api/webhooks/"+created.ID+"/deliveries?status=lost")
		detail := requireErrorAt(t, rec, http.StatusUnprocessableEntity, "query.status")
		require.Contains(t, detail.Message, "pending, succeeded, failed")
	})
}
