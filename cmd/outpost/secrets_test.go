package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/auth"
	"github.com/outposthq/outpost/internal/testenv"
)

// lockedBuffer is a bytes.Buffer that several goroutines may write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLogsHoldNoSecrets runs a full flow through outpost dev at debug level
// and scans every log line for the API keys, webhook secrets, passwords,
// session tokens and CSRF tokens it handled.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := startDevLogging(t, "e2e_secrets", testenv.RedisURL(t, 13), logger, &logs)
	recv := newReceiver(t)
	secrets := map[string]string{"CLI API key": p.key}

	var hook idBody
	p.call(t, http.MethodPost, "/api/webhooks", map[string]any{"url": recv.URL + "/hook", "events": []string{"*"}}, http.StatusCreated, &hook)
	secrets["webhook secret"] = hook.Secret
	var rotated idBody
	p.call(t, http.MethodPost, "/api/webhooks/"+hook.ID+"/rotate-secret", nil, http.StatusOK, &rotated)
	secrets["rotated webhook secret"] = rotated.Secret

	var key idBody
	p.call(t, http.MethodPost, "/api/api-keys", map[string]any{"name": "leak-check", "role": "agent"}, http.StatusCreated, &key)
	secrets["API-created key"] = key.Secret
	agent := &outpostProcess{baseURL: p.baseURL, key: key.Secret}

	var account idBody
	agent.call(t, http.MethodPost, "/api/accounts", map[string]any{"name": "Acme"}, http.StatusCreated, &account)
	var ticket idBody
	agent.call(t, http.MethodPost, "/api/tickets", map[string]any{
		"title": "Cannot export invoices", "source": "api", "accountId": account.ID,
	}, http.StatusCreated, &ticket)
	// The worker signs this delivery with both secrets.
	recv.waitFor(t, "ticket.created", ticket.ID, 10*time.Second)
	agent.call(t, http.MethodPost, "/api/webhooks", map[string]any{"url": recv.URL, "events": []string{"*"}}, http.StatusForbidden, nil)

	p.call(t, http.MethodDelete, "/api/api-keys/"+key.ID, nil, http.StatusNoContent, nil)
	agent.call(t, http.MethodGet, "/api/tickets", nil, http.StatusUnauthorized, nil)
	// A key sent with the wrong scheme is rejected without being logged.
	req, err := http.NewRequest(http.MethodGet, p.baseURL+"/api/tickets", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Basic "+p.key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)

	// An agent signs in, fails once, changes the password and signs out.
	const password = "first dashboard passphrase"
	// The database outlives one run under -count, so the address differs.
	email := "lea-" + strings.ToLower(rand.Text()[:8]) + "@support.example"
	const newPassword = "second dashboard passphrase"
	secrets["password"] = "x_" + password
	secrets["new password"] = "x_" + newPassword
	var stdout bytes.Buffer
	err = run(context.Background(), []string{"agent", "create", "--email", email, "--role", "admin"},
		p.getenv, strings.NewReader(password+"\n"), &stdout, &logs)
	require.NoError(t, err)
	postJSON := func(path string, body any, header http.Header) *http.Response {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPost, p.baseURL+path, bytes.NewReader(raw))
		require.NoError(t, err)
		req.Header = header.Clone()
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res
	}
	res = postJSON("/api/auth/login", map[string]string{"email": email, "password": "wrong " + password}, http.Header{})
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	var me struct {
		CSRFToken string `json:"csrfToken"`
	}
	signIn := func(pw string) string {
		raw, err := json.Marshal(map[string]string{"email": email, "password": pw})
		require.NoError(t, err)
		res, err := http.Post(p.baseURL+"/api/auth/login", "application/json", bytes.NewReader(raw))
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.NoError(t, json.NewDecoder(res.Body).Decode(&me))
		for _, c := range res.Cookies() {
			if c.Name == api.SessionCookie {
				return c.Value
			}
		}
		t.Fatal("sign-in set no session cookie")
		return ""
	}
	token := signIn(password)
	secrets["session token"] = token
	secrets["CSRF token"] = "x_" + me.CSRFToken
	session := http.Header{"Cookie": {api.SessionCookie + "=" + token}, "X-Csrf-Token": {me.CSRFToken}}
	res = postJSON("/api/auth/password", map[string]string{"currentPassword": password, "newPassword": "short"}, session)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	res = postJSON("/api/auth/password", map[string]string{"currentPassword": password, "newPassword": newPassword}, session)
	require.Equal(t, http.StatusOK, res.StatusCode)
	// The change replaced the session; sign out with the new one.
	for _, c := range res.Cookies() {
		if c.Name == api.SessionCookie {
			secrets["rotated session token"] = c.Value
			session.Set("Cookie", api.SessionCookie+"="+c.Value)
			session.Set("X-Csrf-Token", auth.CSRFToken(c.Value))
		}
	}
	res = postJSON("/api/auth/logout", nil, session)
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	secrets["second session token"] = signIn(newPassword)

	out := logs.String()
	require.Contains(t, out, `"msg":"request"`, "the capture holds the request log")
	require.Contains(t, out, "signed in", "the capture holds the sign-in log")
	require.Contains(t, out, "API key created", "the capture holds the CLI log")
	for name, secret := range secrets {
		require.NotEmpty(t, secret, name)
		_, body, _ := strings.Cut(secret, "_")
		require.NotContains(t, out, body, "the logs contain the %s", name)
	}
}
