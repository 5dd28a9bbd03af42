package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2/humatest"
	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/apikeys"
	"github.com/outposthq/outpost/models"
)

// testClock is a clock that moves only when the test advances it.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// createdKey is the response of create-api-key.
type createdKey struct {
	models.APIKey
	Secret string `json:"secret"`
}

func TestAPIKeyLifecycle(t *testing.T) {
	t.Parallel()
	s := setup(t)

	name := unique("sync")
	created := decodeAs[createdKey](t, s.do(http.MethodPost, "/api/api-keys", map[string]any{
		"name": name, "role": "agent",
	}), http.StatusCreated)
	require.True(t, strings.HasPrefix(created.ID, "key_"), "id %q", created.ID)
	require.Equal(t, models.RoleAgent, created.Role)
	require.Nil(t, created.ExpiresAt)
	require.True(t, strings.HasPrefix(created.Secret, created.Prefix), "the prefix starts the secret")
	require.Len(t, created.Prefix, len("opk_")+8)
	auth := "Authorization: Bearer " + created.Secret

	rec := s.api.Get("/api/tickets?limit=1", auth)
	require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
	rec = s.api.Get("/api/api-keys", auth)
	requireProblem(t, rec, http.StatusForbidden)

	page := decodeAs[api.Page[map[string]any]](t, s.do(http.MethodGet, "/api/api-keys?limit=100"), http.StatusOK)
	var listed map[string]any
	for _, k := range page.Data {
		if k["id"] == created.ID {
			listed = k
		}
	}
	require.NotNil(t, listed, "list must contain the new key")
	require.Equal(t, name, listed["name"])
	require.NotNil(t, listed["lastUsedAt"], "the key was used")
	require.NotContains(t, listed, "secret")
	require.NotContains(t, listed, "hash")

	rec = s.do(http.MethodDelete, "/api/api-keys/"+created.ID)
	require.Equal(t, http.StatusNoContent, rec.Code, "body: %s", rec.Body)
	rec = s.api.Get("/api/tickets?limit=1", auth)
	requireProblem(t, rec, http.StatusUnauthorized)

	requireProblem(t, s.do(http.MethodDelete, "/api/api-keys/key_missing"), http.StatusNotFound)
}

func TestAPIKeyListPages(t *testing.T) {
	t.Parallel()
	s := setup(t)
	for range 2 {
		s.roleAuth(t, models.RoleViewer)
	}
	first := decodeAs[api.Page[models.APIKey]](t, s.do(http.MethodGet, "/api/api-keys?limit=1"), http.StatusOK)
	require.Len(t, first.Data, 1)
	require.NotNil(t, first.NextCursor)
	second := decodeAs[api.Page[models.APIKey]](t, s.do(http.MethodGet, "/api/api-keys?limit=1&cursor="+*first.NextCursor), http.StatusOK)
	require.Len(t, second.Data, 1)
	require.NotEqual(t, first.Data[0].ID, second.Data[0].ID)
	require.False(t, second.Data[0].CreatedAt.After(first.Data[0].CreatedAt), "newest first")
}

func TestAPIKeyCreateValidation(t *testing.T) {
	t.Parallel()
	s := setup(t)
	requireErrorAt(t, s.do(http.MethodPost, "/api/api-keys", map[string]any{"name": "x", "role": "owner"}),
		http.StatusUnprocessableEntity, "body.role")
	requireErrorAt(t, s.do(http.MethodPost, "/api/api-keys", map[string]any{"name": "x"}),
		http.StatusUnprocessableEntity, "body.role")
	requireErrorAt(t, s.do(http.MethodPost, "/api/api-keys", map[string]any{
		"name": "x", "role": "viewer", "expiresAt": time.Now().Add(-time.Minute).Format(time.RFC3339),
	}), http.StatusUnprocessableEntity, "body.expiresAt")
	requireErrorAt(t, s.do(http.MethodPost, "/api/api-keys", map[string]any{"name": " ", "role": "viewer"}),
		http.StatusUnprocessableEntity, "body.name")
}

// TestAPIKeyExpiry runs the API on a pinned clock and moves it past a key's
// expiry time.
func TestAPIKeyExpiry(t *testing.T) {
	t.Parallel()
	s := setup(t)
	clock := &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	deps := s.deps
	deps.Keys = apikeys.New(s.db, clock.Now)
	_, tapi := humatest.New(t, api.Config())
	api.Register(tapi, deps)

	expiresAt := clock.Now().Add(time.Hour)
	created := decodeAs[createdKey](t, tapi.Post("/api/api-keys", s.auth, map[string]any{
		"name": "temporary", "role": "viewer", "expiresAt": expiresAt.Format(time.RFC3339),
	}), http.StatusCreated)
	require.NotNil(t, created.ExpiresAt)
	require.True(t, expiresAt.Equal(*created.ExpiresAt), "expiresAt %v", created.ExpiresAt)
	auth := "Authorization: Bearer " + created.Secret

	clock.Advance(time.Hour - time.Microsecond)
	rec := tapi.Get("/api/tickets?limit=1", auth)
	require.Equal(t, http.StatusOK, rec.Code, "a microsecond before expiry; body: %s", rec.Body)

	clock.Advance(time.Microsecond)
	p := requireProblem(t, tapi.Get("/api/tickets?limit=1", auth), http.StatusUnauthorized)
	require.Contains(t, p.Detail, "expired")
}
