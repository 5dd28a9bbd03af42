package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/stretchr/testify/require"
)

// rawRequest sends body with the given content to srv with the server's
// key, and returns the status and the decoded problem, if any.
func (s *server) rawRequest(t *testing.T, srv *httptest.Server, method, target string, body []byte) (int, huma.ErrorModel) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+target, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var p huma.ErrorModel
	if resp.StatusCode >= 400 {
		require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), "body: %s", raw)
		require.NoError(t, json.Unmarshal(raw, &p), "body: %s", raw)
	}
	return resp.StatusCode, p
}

func TestInputChecksRejectUnstorableText(t *testing.T) {
	t.Parallel()
	s := setup(t)
	srv := httptest.NewServer(newHandler(t, s.deps))
	t.Cleanup(srv.Close)
	acc := s.createAccount(t, nil)

	cases := []struct {
		name     string
		method   string
		target   string
		body     string
		location string
	}{
		{"NUL in body string", http.MethodPost, "/api/tickets", `{"title":"a\u0000b","source":"api","accountId":"` + acc.ID + `"}`, "body.title"},
		{"NUL in nested array", http.MethodPost, "/api/tickets", `{"title":"a","source":"api","accountId":"` + acc.ID + `","tags":["ok","x\u0000"]}`, "body.tags[1]"},
		{"invalid UTF-8 body", http.MethodPost, "/api/accounts", "{\"name\":\"\xff\xfe\"}", "body"},
		{"NUL in query", http.MethodGet, "/api/tickets?q=a%00b", "", "query.q"},
		{"invalid UTF-8 query", http.MethodGet, "/api/tickets?q=%ff%fe", "", "query.q"},
		{"repeated query parameter", http.MethodGet, "/api/tickets?status=open&status=pending", "", "query.status"},
		{"NUL in path", http.MethodGet, "/api/tickets/tkt_%00", "", "path"},
		{"malformed query string", http.MethodGet, "/api/tickets?q=%00;", "", "query"},
		{"bad percent escape", http.MethodGet, "/api/tickets?q=%ff&x=%zz", "", "query"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := ticketCount(t, s.db, acc.ID)
			status, p := s.rawRequest(t, srv, tc.method, tc.target, []byte(tc.body))
			require.Equal(t, http.StatusUnprocessableEntity, status)
			require.Len(t, p.Errors, 1)
			require.Equal(t, tc.location, p.Errors[0].Location)
			require.Equal(t, before, ticketCount(t, s.db, acc.ID), "a rejected request wrote a ticket")
		})
	}

	t.Run("repeated parameter message names the fix", func(t *testing.T) {
		_, p := s.rawRequest(t, srv, http.MethodGet, "/api/tickets?status=open&status=pending", nil)
		require.Contains(t, p.Errors[0].Message, "comma-separated")
	})
	t.Run("escaped backslash before u0000 is plain text", func(t *testing.T) {
		status, _ := s.rawRequest(t, srv, http.MethodPost, "/api/accounts", []byte(`{"name":"C:\\u0000dir"}`))
		require.Equal(t, http.StatusCreated, status)
	})
}

func TestTagLengthLimited(t *testing.T) {
	t.Parallel()
	s := setup(t)
	acc := s.createAccount(t, nil)
	rec := s.do(http.MethodPost, "/api/tickets", map[string]any{
		"title": "t", "source": "api", "accountId": acc.ID, "tags": []string{strings.Repeat("x", 101)},
	})
	requireErrorAt(t, rec, http.StatusUnprocessableEntity, "body.tags[0]")
	require.Zero(t, ticketCount(t, s.db, acc.ID))
}

func TestBasicSchemeNamesBearer(t *testing.T) {
	t.Parallel()
	s := setup(t)
	rec := s.api.Get("/api/tickets", "Authorization: Basic "+s.secret)
	p := requireProblem(t, rec, http.StatusUnauthorized)
	require.Contains(t, p.Detail, "Bearer scheme")
}

func TestOpenAPIArraysNotNullable(t *testing.T) {
	t.Parallel()
	s := setup(t)
	schemas := s.api.OpenAPI().Components.Schemas.Map()
	for _, name := range []string{"CreateTicketInputBody", "CreateWebhookInputBody"} {
		schema := schemas[name]
		require.NotNil(t, schema, "no schema %s", name)
		for prop, ps := range schema.Properties {
			if ps.Type == huma.TypeArray {
				require.False(t, ps.Nullable, "%s.%s is a nullable array", name, prop)
			}
		}
	}
}

func TestMalformedKeyIsUnauthorized(t *testing.T) {
	t.Parallel()
	s := setup(t)
	srv := httptest.NewServer(newHandler(t, s.deps))
	t.Cleanup(srv.Close)
	for _, token := range []string{"opk_\xff\xfe" + strings.Repeat("a", 41), "opk_short", s.secret + "x"} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/tickets", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "token %q", token)
	}
}
