package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/models"
)

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
	cookie := http.Header{"Cookie": {api.SessionCookie + "=" + viewer.token}}
	resp, body = getURL(t, srv, "/monitoring/", cookie)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "GET /monitoring/ as a viewer; body: %s", body)

	admin := s.signIn(t, s.createAgentWithPassword(t, models.RoleAdmin))
	cookie = http.Header{"Cookie": {api.SessionCookie + "=" + admin.token}}
	resp, body = getURL(t, srv, "/monitoring/", cookie)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET /monitoring/ as an admin; body: %s", body)
	require.Equal(t, "queue UI /monitoring/", string(body))
}
