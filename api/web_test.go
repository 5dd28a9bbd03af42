package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/models"
)

// monitoringServer serves s with the real queue UI over HTTP.
func (s *server) monitoringServer(t *testing.T) *httptest.Server {
	t.Helper()
	opt, err := asynq.ParseRedisURI(redisURL)
	require.NoError(t, err)
	monitor := asynqmon.New(asynqmon.Options{RootPath: api.MonitoringPath, RedisConnOpt: opt})
	t.Cleanup(func() { _ = monitor.Close() })
	deps := s.deps
	deps.Monitoring = monitor
	srv := httptest.NewServer(newHandler(t, deps))
	t.Cleanup(srv.Close)
	return srv
}

// fetch sends a request to srv and returns the response and its body.
func fetch(t *testing.T, srv *httptest.Server, method, path string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func TestMonitoringNeedsAdminSession(t *testing.T) {
	t.Parallel()
	s := setup(t)
	srv := s.monitoringServer(t)
	admin := s.signIn(t, s.createAgentWithPassword(t, models.RoleAdmin))
	agent := s.signIn(t, s.createAgentWithPassword(t, models.RoleAgent))
	viewer := s.signIn(t, s.createAgentWithPassword(t, models.RoleViewer))
	cookie := func(sess session) map[string]string {
		return map[string]string{"Cookie": api.SecureSessionCookie + "=" + sess.token}
	}
	paths := []string{"/monitoring/", "/monitoring/api/queues", "/monitoring/static/js/main.js"}

	for _, path := range paths {
		resp, body := fetch(t, srv, http.MethodGet, path, nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s signed out", path)
		require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		require.Contains(t, body, "sign in as an admin")

		resp, _ = fetch(t, srv, http.MethodGet, path, map[string]string{"Authorization": "Bearer " + s.secret})
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s with an admin API key: the queue UI takes sessions only", path)

		for _, sess := range []session{agent, viewer} {
			resp, body = fetch(t, srv, http.MethodGet, path, cookie(sess))
			require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s as %s", path, sess.info.Agent.Role)
			require.Contains(t, body, "for admins")
		}
	}

	resp, body := fetch(t, srv, http.MethodGet, "/monitoring/", map[string]string{"Accept": "text/html,application/xhtml+xml"})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	require.Contains(t, body, `href="/signin?next=%2Fmonitoring%2F"`, "a browser is offered the sign-in page")

	resp, body = fetch(t, srv, http.MethodGet, "/monitoring/queues?tab=1", map[string]string{"Accept": "text/html"})
	require.Contains(t, body, `href="/signin?next=%2Fmonitoring%2Fqueues%3Ftab%3D1"`, "the link keeps the query")

	resp, body = fetch(t, srv, http.MethodGet, "/monitoring/", map[string]string{"Authorization": "Bearer " + s.secret})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, body, "not an API key")

	resp, body = fetch(t, srv, http.MethodGet, "/monitoring/", cookie(admin))
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
	require.Contains(t, body, "<div id=\"root\">", "the queue UI's page")
	require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	require.Equal(t, "frame-ancestors 'none'", resp.Header.Get("Content-Security-Policy"))
	resp, body = fetch(t, srv, http.MethodGet, "/monitoring/api/queues", cookie(admin))
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
	var queues struct {
		Queues []any `json:"queues"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &queues), "the queue UI's JSON API responds: %s", body)

	resp, _ = fetch(t, srv, http.MethodGet, "/monitoring", nil)
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	require.Equal(t, "/monitoring/", resp.Header.Get("Location"))
}

func TestMonitoringChanges(t *testing.T) {
	t.Parallel()
	s := setup(t)
	srv := s.monitoringServer(t)
	admin := s.signIn(t, s.createAgentWithPassword(t, models.RoleAdmin))
	viewer := s.signIn(t, s.createAgentWithPassword(t, models.RoleViewer))
	// Deleting every archived task of a queue that does not exist changes
	// nothing, but reaches the queue UI's handler only when allowed.
	const path = "/monitoring/api/queues/outpost-test-empty/archived_tasks:delete_all"

	headers := func(sess session, extra map[string]string) map[string]string {
		h := map[string]string{"Cookie": api.SecureSessionCookie + "=" + sess.token}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	resp, body := fetch(t, srv, http.MethodDelete, path, headers(viewer, map[string]string{"Origin": srv.URL}))
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a viewer cannot delete tasks; body: %s", body)

	resp, body = fetch(t, srv, http.MethodDelete, path, headers(admin, nil))
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a change must come from a browser page; body: %s", body)
	require.Contains(t, body, "from its pages")

	resp, body = fetch(t, srv, http.MethodDelete, path, headers(admin, map[string]string{"Origin": "https://evil.example"}))
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "cross-origin; body: %s", body)
	require.Contains(t, body, "cross-origin")

	resp, body = fetch(t, srv, http.MethodDelete, path, headers(admin,
		map[string]string{"Origin": "https://evil.example", "Authorization": "Bearer anything"}))
	require.Equal(t, http.StatusForbidden, resp.StatusCode,
		"an Authorization header does not skip the queue UI's cross-origin check; body: %s", body)

	resp, body = fetch(t, srv, http.MethodDelete, path, headers(admin, map[string]string{"Origin": srv.URL}))
	require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, resp.StatusCode,
		"an admin's same-origin request reaches the queue UI; body: %s", body)
}

func TestSignInPage(t *testing.T) {
	t.Parallel()
	s := setup(t)
	srv := httptest.NewServer(newHandler(t, s.deps))
	t.Cleanup(srv.Close)

	resp, body := fetch(t, srv, http.MethodGet, "/signin", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	csp := resp.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "script-src 'self'")
	require.Contains(t, csp, "frame-ancestors 'none'")
	require.Contains(t, body, `<script src="/signin/signin.js"`)
	require.NotContains(t, body, "<script>", "no inline script, so the policy needs no 'unsafe-inline'")

	resp, body = fetch(t, srv, http.MethodGet, "/signin/signin.js", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "javascript")
	require.Contains(t, body, "/api/auth/login")

	resp, _ = fetch(t, srv, http.MethodGet, "/signin/signin.html.bak", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = fetch(t, srv, http.MethodGet, "/monitoring/", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "without a queue UI configured, nothing is served there")
	require.True(t, strings.HasPrefix(srv.URL, "http://127.0.0.1"))
}

// TestMonitoringFailuresAreProblems pauses a queue twice through the queue
// UI, which reports the second as a plain-text 500.
func TestMonitoringFailuresAreProblems(t *testing.T) {
	t.Parallel()
	s := setup(t)
	srv := s.monitoringServer(t)
	admin := s.signIn(t, s.createAgentWithPassword(t, models.RoleAdmin))
	opt, err := asynq.ParseRedisURI(redisURL)
	require.NoError(t, err)
	client := asynq.NewClient(opt)
	t.Cleanup(func() { _ = client.Close() })
	queue := "outpost-test-" + strings.ToLower(unique("pause"))
	_, err = client.Enqueue(asynq.NewTask("test:noop", nil), asynq.Queue(queue), asynq.ProcessIn(time.Hour))
	require.NoError(t, err)

	headers := map[string]string{"Cookie": api.SecureSessionCookie + "=" + admin.token, "Origin": srv.URL}
	resp, body := fetch(t, srv, http.MethodPost, "/monitoring/api/queues/"+queue+":pause", headers)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "body: %s", body)
	resp, body = fetch(t, srv, http.MethodPost, "/monitoring/api/queues/"+queue+":pause", headers)
	require.Equal(t, http.StatusConflict, resp.StatusCode, "body: %s", body)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	require.Contains(t, body, "already paused")

	resp, body = fetch(t, srv, http.MethodPost, "/monitoring/api/queues/"+queue+":resume", headers)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "body: %s", body)
	resp, body = fetch(t, srv, http.MethodPost, "/monitoring/api/queues/"+queue+":resume", headers)
	require.Equal(t, http.StatusConflict, resp.StatusCode, "resuming a running queue; body: %s", body)

	for _, c := range []struct{ method, path string }{
		{http.MethodDelete, "/monitoring/api/queues/" + queue + "/scheduled_tasks/no-such-task"},
		{http.MethodGet, "/monitoring/api/queues/" + queue + "/tasks/no-such-task"},
		{http.MethodGet, "/monitoring/api/queues/outpost-test-no-such-queue"},
	} {
		resp, body = fetch(t, srv, c.method, c.path, headers)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, "%s %s; body: %s", c.method, c.path, body)
		require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), "%s %s", c.method, c.path)
	}
}

func TestUnknownAPIRoutesAreProblems(t *testing.T) {
	t.Parallel()
	s := setup(t)
	srv := httptest.NewServer(newHandler(t, s.deps))
	t.Cleanup(srv.Close)

	resp, body := fetch(t, srv, http.MethodGet, "/api/no-such-thing", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	require.Contains(t, body, "no operation at GET /api/no-such-thing")

	resp, body = fetch(t, srv, http.MethodGet, "/api/auth/logout", nil)
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	require.Contains(t, body, "method GET is not allowed on /api/auth/logout; use POST")

	resp, _ = fetch(t, srv, http.MethodGet, "/api/tickets", map[string]string{"Authorization": "Bearer " + s.secret})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "API responses are never cached")
	resp, _ = fetch(t, srv, http.MethodGet, "/api/tickets?limit=1&limit=2", map[string]string{"Authorization": "Bearer " + s.secret})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "including the input checks' rejections")
}

// TestMonitoringManifestNeedsNoSession checks that the queue UI's web app
// manifest, which browsers fetch without cookies, is served without a
// session while the rest of the UI still needs an admin.
func TestMonitoringManifestNeedsNoSession(t *testing.T) {
	t.Parallel()
	s := setup(t)
	deps := s.deps
	deps.Monitoring = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("queue UI " + r.URL.Path))
	})
	srv := httptest.NewServer(newHandler(t, deps))
	t.Cleanup(srv.Close)
	html := http.Header{"Accept": {"text/html"}}

	resp, body := getURL(t, srv, "/monitoring/manifest.json", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
	require.Equal(t, "queue UI /monitoring/manifest.json", string(body))

	for _, path := range []string{"/monitoring/", "/monitoring/static/js/main.js", "/monitoring/api/queues"} {
		resp, body = getURL(t, srv, path, html)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "GET %s without a session; body: %s", path, body)
		require.NotContains(t, string(body), "queue UI", "GET %s reached the queue UI", path)
	}

	viewer := s.signIn(t, s.createAgentWithPassword(t, models.RoleViewer))
	cookie := http.Header{"Cookie": {api.SecureSessionCookie + "=" + viewer.token}}
	resp, body = getURL(t, srv, "/monitoring/", cookie)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "GET /monitoring/ as a viewer; body: %s", body)

	admin := s.signIn(t, s.createAgentWithPassword(t, models.RoleAdmin))
	cookie = http.Header{"Cookie": {api.SecureSessionCookie + "=" + admin.token}}
	resp, body = getURL(t, srv, "/monitoring/", cookie)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET /monitoring/ as an admin; body: %s", body)
	require.Equal(t, "queue UI /monitoring/", string(body))
}
