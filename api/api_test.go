package api_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/humatest"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/outposthq/outpost/analytics"
	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/apikeys"
	"github.com/outposthq/outpost/audit"
	"github.com/outposthq/outpost/auth"
	"github.com/outposthq/outpost/database"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/idempotency"
	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/sla"
	"github.com/outposthq/outpost/webhooks"
)

var (
	redisOnce sync.Once
	redisURL  string
)

// server is the API under test, its dependencies and a valid API key.
type server struct {
	api  humatest.TestAPI
	db   *gorm.DB
	deps api.Deps
	key  models.APIKey
	// secret is the API key that auth sends.
	secret string
	// auth is the Authorization header line in humatest's "Name: value"
	// form.
	auth string
}

// setup builds the API on the package's PostgreSQL database and Redis
// database index 1, with real services and a new API key.
func setup(t *testing.T) *server {
	t.Helper()
	db := testenv.DB(t, "api")
	// RedisURL flushes the index, so only the first test may call it.
	redisOnce.Do(func() { redisURL = testenv.RedisURL(t, 1) })
	require.NotEmpty(t, redisURL, "preparing the Redis test database failed in an earlier test")
	opt, err := asynq.ParseRedisURI(redisURL)
	require.NoError(t, err)
	queue := asynq.NewClient(opt)
	t.Cleanup(func() { require.NoError(t, queue.Close()) })
	inspector := asynq.NewInspector(opt)
	t.Cleanup(func() { require.NoError(t, inspector.Close()) })

	logger := testenv.Logger(t)
	keys := apikeys.New(db, nil)
	dispatcher := outbox.NewDispatcher(db, queue, logger, nil)
	engine := sla.NewEngine(db, queue, dispatcher, logger, nil)
	deps := api.Deps{
		Helpdesk:    helpdesk.NewService(db, dispatcher, nil, helpdesk.WithTicketHook(engine)),
		SLA:         engine,
		Analytics:   analytics.NewReports(db),
		Endpoints:   webhooks.NewEndpoints(db, nil),
		Deliveries:  webhooks.NewDeliverer(webhooks.Deps{DB: db, Queue: queue, Tasks: inspector, Logger: logger}, webhooks.Config{}),
		Keys:        keys,
		Idempotency: idempotency.New(db, 0, nil),
		Audit:       audit.New(db, nil),
		Sessions:    auth.NewSessions(db, auth.Config{}, nil),
		Ready:       func(context.Context) error { return nil },
		Logger:      logger,
	}
	_, tapi := humatest.New(t, api.Config())
	api.Register(tapi, deps)

	key, secret, err := keys.Create(t.Context(), apikeys.NewKey{Name: "test", Role: models.RoleAdmin})
	require.NoError(t, err)
	return &server{
		api:    tapi,
		db:     db,
		deps:   deps,
		key:    key,
		secret: secret,
		auth:   "Authorization: Bearer " + secret,
	}
}

// newHandler returns api.NewHandler for deps.
func newHandler(t *testing.T, deps api.Deps) http.Handler {
	t.Helper()
	h, err := api.NewHandler(deps)
	require.NoError(t, err)
	return h
}

// do sends a request with the server's API key. args are humatest's header
// lines and body.
func (s *server) do(method, path string, args ...any) *httptest.ResponseRecorder {
	return s.api.Do(method, path, append([]any{s.auth}, args...)...)
}

// quietTB drops humatest's dumps of requests and responses, for bodies too
// large to log.
type quietTB struct{ testing.TB }

func (quietTB) Log(...any)          {}
func (quietTB) Logf(string, ...any) {}

// unique returns prefix with a random suffix, so that tests sharing the
// database do not collide on unique columns or filters.
func unique(prefix string) string {
	return prefix + "-" + strings.ToLower(rand.Text()[:12])
}

// decodeAs requires status and decodes the JSON body of rec.
func decodeAs[T any](t *testing.T, rec *httptest.ResponseRecorder, status int) T {
	t.Helper()
	require.Equal(t, status, rec.Code, "body: %s", rec.Body)
	var v T
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), "body: %s", rec.Body)
	return v
}

// requireProblem requires a problem-details response with status and
// returns its body.
func requireProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, reason ...string) huma.ErrorModel {
	t.Helper()
	require.Equal(t, status, rec.Code, "%s body: %s", strings.Join(reason, " "), rec.Body)
	require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	var p huma.ErrorModel
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p), "body: %s", rec.Body)
	require.Equal(t, status, p.Status)
	return p
}

// requireErrorAt requires a problem-details response with status that
// reports an error at location, and returns that error.
func requireErrorAt(t *testing.T, rec *httptest.ResponseRecorder, status int, location string) *huma.ErrorDetail {
	t.Helper()
	p := requireProblem(t, rec, status)
	var locations []string
	for _, d := range p.Errors {
		if d.Location == location {
			return d
		}
		locations = append(locations, d.Location)
	}
	require.Failf(t, "no error at the expected location", "want %s, got %v", location, locations)
	return nil
}

func (s *server) createAccount(t *testing.T, fields map[string]any) models.Account {
	t.Helper()
	body := map[string]any{"name": unique("account")}
	maps.Copy(body, fields)
	return decodeAs[models.Account](t, s.do(http.MethodPost, "/api/accounts", body), http.StatusCreated)
}

func (s *server) createAgent(t *testing.T) models.Agent {
	t.Helper()
	body := map[string]any{"name": "Dana Reyes", "email": unique("dana") + "@support.example"}
	return decodeAs[models.Agent](t, s.do(http.MethodPost, "/api/agents", body), http.StatusCreated)
}

func (s *server) deactivateAgent(t *testing.T, id string) {
	t.Helper()
	agent := decodeAs[models.Agent](t, s.do(http.MethodPatch, "/api/agents/"+id, map[string]any{"active": false}), http.StatusOK)
	require.False(t, agent.Active)
}

// createTicket creates a ticket in account accountID; fields override the
// defaults of a unique title and source web.
func (s *server) createTicket(t *testing.T, accountID string, fields map[string]any) models.Ticket {
	t.Helper()
	body := map[string]any{"title": unique("ticket"), "source": "web", "accountId": accountID}
	maps.Copy(body, fields)
	return decodeAs[models.Ticket](t, s.do(http.MethodPost, "/api/tickets", body), http.StatusCreated)
}

func (s *server) patchTicket(t *testing.T, id string, patch map[string]any) models.Ticket {
	t.Helper()
	return decodeAs[models.Ticket](t, s.do(http.MethodPatch, "/api/tickets/"+id, patch), http.StatusOK)
}

func (s *server) getTicket(t *testing.T, id string) helpdesk.TicketDetail {
	t.Helper()
	return decodeAs[helpdesk.TicketDetail](t, s.do(http.MethodGet, "/api/tickets/"+id), http.StatusOK)
}

// listTickets returns one page of list-tickets with query.
func (s *server) listTickets(t *testing.T, query url.Values) api.Page[models.Ticket] {
	t.Helper()
	return decodeAs[api.Page[models.Ticket]](t, s.do(http.MethodGet, "/api/tickets?"+query.Encode()), http.StatusOK)
}

func ticketIDs(tickets ...models.Ticket) []string {
	ids := make([]string, 0, len(tickets))
	for _, t := range tickets {
		ids = append(ids, t.ID)
	}
	return ids
}

// eventRow is an outbox event as stored.
type eventRow struct {
	Type         string
	Body         string
	DispatchedAt *time.Time
}

// events returns the outbox events whose data has the ID dataID, oldest
// first.
func events(t *testing.T, db *gorm.DB, dataID string) []eventRow {
	t.Helper()
	var rows []eventRow
	err := db.Raw(`SELECT type, body, dispatched_at FROM events
		WHERE (body::jsonb) -> 'data' ->> 'id' = ? ORDER BY created_at, id`, dataID).Scan(&rows).Error
	require.NoError(t, err)
	return rows
}

func eventTypes(t *testing.T, db *gorm.DB, dataID string) []string {
	t.Helper()
	types := []string{}
	for _, e := range events(t, db, dataID) {
		types = append(types, e.Type)
	}
	return types
}

// countRows runs a SELECT count(*) query and returns the count.
func countRows(t *testing.T, db *gorm.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.Raw(query, args...).Scan(&n).Error)
	return n
}

func ticketCount(t *testing.T, db *gorm.DB, accountID string) int64 {
	t.Helper()
	return countRows(t, db, "SELECT count(*) FROM tickets WHERE account_id = ?", accountID)
}

// publicRoutes are the only operations that need no API key or session.
var publicRoutes = []string{"POST /api/auth/login", "GET /healthz", "GET /readyz"}

// operations returns every operation of the OpenAPI document, sorted by
// path and method.
func operations(doc *huma.OpenAPI) []*huma.Operation {
	var ops []*huma.Operation
	for _, path := range slices.Sorted(maps.Keys(doc.Paths)) {
		item := doc.Paths[path]
		for _, op := range []*huma.Operation{item.Get, item.Put, item.Post, item.Delete, item.Options, item.Head, item.Patch, item.Trace} {
			if op != nil {
				ops = append(ops, op)
			}
		}
	}
	return ops
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

func TestOperationsRequireAPIKey(t *testing.T) {
	t.Parallel()
	s := setup(t)

	revoked, revokedSecret, err := s.deps.Keys.Create(t.Context(), apikeys.NewKey{Name: "revoked", Role: models.RoleAdmin})
	require.NoError(t, err)
	res := s.db.Exec("UPDATE api_keys SET revoked_at = now() WHERE id = ?", revoked.ID)
	require.NoError(t, res.Error)
	require.EqualValues(t, 1, res.RowsAffected)
	tampered := s.secret[:len(s.secret)-1] + "x"
	if tampered == s.secret {
		tampered = s.secret[:len(s.secret)-1] + "y"
	}

	credentials := []struct {
		name   string
		header string
	}{
		{"no header", ""},
		{"empty bearer token", "Authorization: Bearer"},
		{"basic scheme", "Authorization: Basic dXNlcjpwYXNzd29yZA=="},
		{"key without scheme", "Authorization: " + s.secret},
		{"unknown key", "Authorization: Bearer opk_" + strings.Repeat("A", 43)},
		{"tampered key", "Authorization: Bearer " + tampered},
		{"revoked key", "Authorization: Bearer " + revokedSecret},
	}

	ops := operations(s.api.OpenAPI())
	var public, secured []string
	for _, op := range ops {
		route := op.Method + " " + op.Path
		if len(op.Security) == 0 {
			public = append(public, route)
			continue
		}
		secured = append(secured, route)
		t.Run(op.OperationID, func(t *testing.T) {
			require.Equal(t, []map[string][]string{{"apiKey": {}}, {"session": {}}}, op.Security)
			path := pathParam.ReplaceAllString(op.Path, "unknown")
			for _, c := range credentials {
				t.Run(c.name, func(t *testing.T) {
					var args []any
					if c.header != "" {
						args = append(args, c.header)
					}
					rec := s.api.Do(op.Method, path, args...)
					p := requireProblem(t, rec, http.StatusUnauthorized)
					require.Equal(t, `Bearer realm="outpost"`, rec.Header().Get("WWW-Authenticate"))
					require.NotEmpty(t, p.Detail)
				})
			}
		})
	}
	require.ElementsMatch(t, publicRoutes, public, "operations without the apiKey security requirement")
	require.Contains(t, secured, "POST /api/tickets", "the walk found no ticket routes")
	require.Contains(t, secured, "DELETE /api/webhooks/{id}", "the walk found no webhook routes")
}

func TestHealthNeedsNoKey(t *testing.T) {
	t.Parallel()
	s := setup(t)
	for _, route := range []string{"GET /healthz", "GET /readyz"} {
		method, path, _ := strings.Cut(route, " ")
		t.Run(path, func(t *testing.T) {
			out := decodeAs[map[string]string](t, s.api.Do(method, path), http.StatusOK)
			require.Equal(t, "ok", out["status"])
		})
		t.Run(path+" with invalid key", func(t *testing.T) {
			rec := s.api.Do(method, path, "Authorization: Bearer opk_invalid")
			require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
		})
	}
}

func TestValidKeyAuthenticates(t *testing.T) {
	t.Parallel()
	s := setup(t)

	t.Run("bearer scheme", func(t *testing.T) {
		rec := s.api.Get("/api/agents?limit=1", "Authorization: Bearer "+s.secret)
		require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
	})
	t.Run("lower-case scheme", func(t *testing.T) {
		rec := s.api.Get("/api/agents?limit=1", "Authorization: bearer "+s.secret)
		require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
	})
	t.Run("records last use", func(t *testing.T) {
		n := countRows(t, s.db, "SELECT count(*) FROM api_keys WHERE id = ? AND last_used_at IS NOT NULL", s.key.ID)
		require.EqualValues(t, 1, n)
	})
}

// closedDB returns a connection pool to the package database that is
// already closed, so that every query fails.
func closedDB(t *testing.T) *gorm.DB {
	t.Helper()
	db, err := database.Open(t.Context(), testenv.DatabaseURL(t, "api"), testenv.Logger(t))
	require.NoError(t, err)
	require.NoError(t, database.Close(db))
	return db
}

func TestStoreFailureResponses(t *testing.T) {
	t.Parallel()
	s := setup(t)

	t.Run("key store unavailable", func(t *testing.T) {
		deps := s.deps
		deps.Keys = apikeys.New(closedDB(t), nil)
		_, tapi := humatest.New(t, api.Config())
		api.Register(tapi, deps)
		rec := tapi.Get("/api/tickets", s.auth)
		p := requireProblem(t, rec, http.StatusServiceUnavailable)
		require.Contains(t, p.Detail, "authentication is unavailable")
	})
	t.Run("internal error hides details", func(t *testing.T) {
		deps := s.deps
		deps.Helpdesk = helpdesk.NewService(closedDB(t), nil, nil)
		_, tapi := humatest.New(t, api.Config())
		api.Register(tapi, deps)
		rec := tapi.Get("/api/tickets", s.auth)
		p := requireProblem(t, rec, http.StatusInternalServerError)
		require.Contains(t, p.Detail, "the server log has the details")
		require.NotContains(t, rec.Body.String(), "closed")
	})
}

// getURL sends a GET request to srv and returns the response with its body
// read.
func getURL(t *testing.T, srv *httptest.Server, path string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	maps.Copy(req.Header, header)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func TestHandlerServesDocsAndHealth(t *testing.T) {
	t.Parallel()
	s := setup(t)
	srv := httptest.NewServer(newHandler(t, s.deps))
	t.Cleanup(srv.Close)

	t.Run("openapi.json", func(t *testing.T) {
		resp, body := getURL(t, srv, "/openapi.json", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var doc struct {
			OpenAPI string `json:"openapi"`
			Info    struct {
				Version string `json:"version"`
			} `json:"info"`
			Paths      map[string]any `json:"paths"`
			Components struct {
				SecuritySchemes map[string]struct {
					Type   string `json:"type"`
					Scheme string `json:"scheme"`
				} `json:"securitySchemes"`
			} `json:"components"`
		}
		require.NoError(t, json.Unmarshal(body, &doc))
		require.Equal(t, "3.1.0", doc.OpenAPI)
		require.Equal(t, api.Version, doc.Info.Version)
		require.Contains(t, doc.Paths, "/api/tickets/{id}")
		require.Equal(t, "http", doc.Components.SecuritySchemes["apiKey"].Type)
		require.Equal(t, "bearer", doc.Components.SecuritySchemes["apiKey"].Scheme)
	})
	t.Run("openapi.yaml", func(t *testing.T) {
		resp, body := getURL(t, srv, "/openapi.yaml", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, string(body), "openapi: 3.1.0")
		require.Contains(t, string(body), "/api/webhooks/{id}/deliveries:")
	})
	t.Run("docs", func(t *testing.T) {
		resp, body := getURL(t, srv, "/docs", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
		require.Contains(t, string(body), "/openapi.yaml")
	})
	t.Run("healthz", func(t *testing.T) {
		resp, body := getURL(t, srv, "/healthz", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.JSONEq(t, `{"$schema":"`+srv.URL+`/schemas/HealthOutputBody.json","status":"ok"}`, string(body))
	})
	t.Run("readyz", func(t *testing.T) {
		resp, body := getURL(t, srv, "/readyz", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
	})
	t.Run("api without key", func(t *testing.T) {
		resp, _ := getURL(t, srv, "/api/tickets", nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Equal(t, `Bearer realm="outpost"`, resp.Header.Get("WWW-Authenticate"))
	})
	t.Run("api with key", func(t *testing.T) {
		resp, body := getURL(t, srv, "/api/agents?limit=1", http.Header{"Authorization": {"Bearer " + s.secret}})
		require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
	})
}

func TestReadyzReportsFailure(t *testing.T) {
	t.Parallel()
	s := setup(t)
	deps := s.deps
	deps.Ready = func(context.Context) error { return errors.New("redis unreachable") }
	srv := httptest.NewServer(newHandler(t, deps))
	t.Cleanup(srv.Close)

	resp, body := getURL(t, srv, "/readyz", nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	var p huma.ErrorModel
	require.NoError(t, json.Unmarshal(body, &p))
	require.Contains(t, p.Detail, "redis unreachable")

	resp, _ = getURL(t, srv, "/healthz", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "healthz must not depend on the stores")
}

func TestHandlerSetsRequestID(t *testing.T) {
	t.Parallel()
	s := setup(t)
	srv := httptest.NewServer(newHandler(t, s.deps))
	t.Cleanup(srv.Close)
	generated := regexp.MustCompile(`^[0-9a-f]{16}$`)

	t.Run("generated when absent", func(t *testing.T) {
		first, _ := getURL(t, srv, "/healthz", nil)
		second, _ := getURL(t, srv, "/healthz", nil)
		require.Regexp(t, generated, first.Header.Get("X-Request-Id"))
		require.Regexp(t, generated, second.Header.Get("X-Request-Id"))
		require.NotEqual(t, first.Header.Get("X-Request-Id"), second.Header.Get("X-Request-Id"))
	})
	t.Run("kept when valid", func(t *testing.T) {
		resp, _ := getURL(t, srv, "/healthz", http.Header{"X-Request-Id": {"req-42.retry_1"}})
		require.Equal(t, "req-42.retry_1", resp.Header.Get("X-Request-Id"))
	})
	t.Run("replaced when invalid", func(t *testing.T) {
		for _, id := range []string{"has space", "a/b", strings.Repeat("a", 65)} {
			resp, _ := getURL(t, srv, "/healthz", http.Header{"X-Request-Id": {id}})
			require.Regexp(t, generated, resp.Header.Get("X-Request-Id"), "sent %q", id)
		}
	})
	t.Run("set on errors", func(t *testing.T) {
		resp, _ := getURL(t, srv, "/api/tickets", http.Header{"X-Request-Id": {"req-401"}})
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Equal(t, "req-401", resp.Header.Get("X-Request-Id"))
	})
}

func TestOpenAPIPatchSchemas(t *testing.T) {
	t.Parallel()
	s := setup(t)
	schema := s.api.OpenAPI().Components.Schemas.Map()["UpdateTicketInputBody"]
	require.NotNil(t, schema, "no schema UpdateTicketInputBody")

	t.Run("assigneeId is nullable", func(t *testing.T) {
		require.True(t, schema.Properties["assigneeId"].Nullable)
	})
	t.Run("title is not nullable", func(t *testing.T) {
		require.False(t, schema.Properties["title"].Nullable)
	})
	t.Run("status lists its values", func(t *testing.T) {
		require.ElementsMatch(t, []any{"open", "pending", "resolved", "closed"}, schema.Properties["status"].Enum)
	})
	t.Run("no field is required", func(t *testing.T) {
		require.Empty(t, schema.Required)
	})
}
