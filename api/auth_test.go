package api_test

import (
	"crypto/sha256"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2/humatest"
	"github.com/go-redis/redis_rate/v10"
	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/auth"
	"github.com/outposthq/outpost/models"
)

// testPassword is the password of the agents these tests create.
const testPassword = "correct horse battery staple"

// session is a signed-in agent, as header lines for humatest.
type session struct {
	email  string
	cookie string // "Cookie: outpost_session=…"
	csrf   string // "X-CSRF-Token: …"
	token  string
	info   api.SessionInfo
}

// createAgentWithPassword stores an agent with role and testPassword and
// returns its email address.
func (s *server) createAgentWithPassword(t *testing.T, role models.Role) string {
	t.Helper()
	email := unique(string(role)) + "@support.example"
	rec := s.do(http.MethodPost, "/api/agents", map[string]any{
		"name": "Agent " + string(role), "email": email, "role": role, "password": testPassword,
	})
	agent := decodeAs[models.Agent](t, rec, http.StatusCreated)
	require.Equal(t, role, agent.Role)
	require.True(t, agent.CanSignIn)
	return email
}

// signIn signs in as email with testPassword on s.
func (s *server) signIn(t *testing.T, email string) session {
	t.Helper()
	return signInOn(t, s.api, email, testPassword)
}

func signInOn(t *testing.T, tapi humatest.TestAPI, email, password string, headers ...any) session {
	t.Helper()
	args := append(headers, map[string]any{"email": email, "password": password})
	rec := tapi.Post("/api/auth/login", args...)
	info := decodeAs[api.SessionInfo](t, rec, http.StatusOK)
	var token string
	for _, c := range rec.Result().Cookies() {
		if c.Name == api.SecureSessionCookie {
			token = c.Value
		}
	}
	require.NotEmpty(t, token, "sign-in set no session cookie")
	return session{
		email:  email,
		cookie: "Cookie: " + api.SecureSessionCookie + "=" + token,
		csrf:   "X-CSRF-Token: " + info.CSRFToken,
		token:  token,
		info:   info,
	}
}

func TestSignInSetsSessionCookie(t *testing.T) {
	t.Parallel()
	s := setup(t)
	email := s.createAgentWithPassword(t, models.RoleAgent)

	rec := s.api.Post("/api/auth/login", map[string]any{"email": strings.ToUpper(email), "password": testPassword})
	require.Equal(t, http.StatusOK, rec.Code, "email is matched without case; body: %s", rec.Body)
	cookies := rec.Result().Cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	require.Equal(t, api.SecureSessionCookie, c.Name)
	require.True(t, c.HttpOnly, "HttpOnly")
	require.True(t, c.Secure, "Secure unless configured off")
	require.Equal(t, http.SameSiteLaxMode, c.SameSite)
	require.Equal(t, "/", c.Path)
	require.InDelta(t, auth.DefaultAbsoluteTimeout.Seconds(), float64(c.MaxAge), 5)

	info := decodeAs[api.SessionInfo](t, rec, http.StatusOK)
	require.Equal(t, strings.ToLower(email), strings.ToLower(info.Agent.Email))
	require.NotEmpty(t, info.CSRFToken)
	require.NotContains(t, rec.Body.String(), "argon2", "the password hash never leaves the server")
	require.WithinDuration(t, time.Now().Add(auth.DefaultIdleTimeout), info.IdleExpiresAt, time.Minute)

	// Only a hash of the cookie value is stored.
	var stored models.Session
	require.NoError(t, s.db.Take(&stored, "agent_id = ?", info.Agent.ID).Error)
	sum := sha256.Sum256([]byte(c.Value))
	require.Equal(t, sum[:], stored.TokenHash)
	var leaks int64
	require.NoError(t, s.db.Raw(`SELECT count(*) FROM sessions WHERE position(? in encode(token_hash, 'escape')) > 0`, c.Value).Scan(&leaks).Error)
	require.Zero(t, leaks)

	me := s.api.Get("/api/auth/me", "Cookie: "+api.SecureSessionCookie+"="+c.Value)
	got := decodeAs[api.SessionInfo](t, me, http.StatusOK)
	require.Equal(t, info.Agent.ID, got.Agent.ID)
	require.Equal(t, info.CSRFToken, got.CSRFToken, "the CSRF token is stable for the session")
}

func TestSignInRefusals(t *testing.T) {
	t.Parallel()
	s := setup(t)
	active := s.createAgentWithPassword(t, models.RoleAgent)
	inactive := s.createAgentWithPassword(t, models.RoleAgent)
	var agent models.Agent
	require.NoError(t, s.db.Take(&agent, "email = ?", inactive).Error)
	deactivated := decodeAs[models.Agent](t, s.do(http.MethodPatch, "/api/agents/"+agent.ID, map[string]any{"active": false}), http.StatusOK)
	require.False(t, deactivated.CanSignIn, "an inactive agent cannot sign in, password or not")
	noPassword := decodeAs[models.Agent](t, s.do(http.MethodPost, "/api/agents",
		map[string]any{"name": "No Password", "email": unique("nopw") + "@support.example"}), http.StatusCreated)
	require.False(t, noPassword.CanSignIn)

	cases := []struct{ name, email, password string }{
		{"wrong password", active, testPassword + "!"},
		{"unknown email", "nobody@support.example", testPassword},
		{"inactive agent", inactive, testPassword},
		{"agent without password", noPassword.Email, testPassword},
	}
	var details []string
	for _, c := range cases {
		rec := s.api.Post("/api/auth/login", map[string]any{"email": c.email, "password": c.password})
		p := requireProblem(t, rec, http.StatusUnauthorized)
		require.Empty(t, rec.Result().Cookies(), c.name)
		require.NotContains(t, rec.Body.String(), c.password, c.name)
		details = append(details, p.Detail)
	}
	for _, d := range details {
		require.Equal(t, details[0], d, "every refusal reads the same, so none reveals which emails exist")
	}

	p := requireProblem(t, s.api.Post("/api/auth/login", map[string]any{"email": active}), http.StatusUnprocessableEntity)
	require.Equal(t, "body.password", p.Errors[0].Location)

	// A body that is not valid JSON is not echoed, because it may hold
	// the password.
	rec := s.api.Post("/api/auth/login", "Content-Type: application/json",
		strings.NewReader(`{"email":"`+active+`","password":"`+testPassword+`"`))
	requireProblem(t, rec, http.StatusBadRequest)
	require.NotContains(t, rec.Body.String(), testPassword)
}

func TestSignInNormalizesEmail(t *testing.T) {
	t.Parallel()
	s := setup(t)
	// "ü" precomposed when stored, decomposed when signing in.
	local := unique("j\u00fcrgen")
	decodeAs[models.Agent](t, s.do(http.MethodPost, "/api/agents", map[string]any{
		"name": "Jürgen", "email": local + "@support.example", "password": testPassword,
	}), http.StatusCreated)
	decomposed := strings.Replace(local, "\u00fc", "u\u0308", 1) + "@support.example"
	require.NotEqual(t, local+"@support.example", decomposed)
	signInOn(t, s.api, " "+decomposed+" ", testPassword)
}

func TestSignOutEndsSession(t *testing.T) {
	t.Parallel()
	s := setup(t)
	sess := s.signIn(t, s.createAgentWithPassword(t, models.RoleViewer))

	rec := s.api.Post("/api/auth/logout", sess.cookie)
	requireProblem(t, rec, http.StatusForbidden) // no CSRF token

	rec = s.api.Post("/api/auth/logout", sess.cookie, sess.csrf)
	require.Equal(t, http.StatusNoContent, rec.Code, "body: %s", rec.Body)
	cleared := rec.Result().Cookies()
	require.Len(t, cleared, 1)
	require.Equal(t, api.SecureSessionCookie, cleared[0].Name)
	require.Negative(t, cleared[0].MaxAge, "the response tells the browser to drop the cookie")

	rec = s.api.Get("/api/auth/me", sess.cookie)
	p := requireProblem(t, rec, http.StatusUnauthorized)
	require.Contains(t, p.Detail, "sign in again")
	rec = s.api.Get("/api/tickets", sess.cookie)
	requireProblem(t, rec, http.StatusUnauthorized)
}

func TestSessionCSRF(t *testing.T) {
	t.Parallel()
	s := setup(t)
	sess := s.signIn(t, s.createAgentWithPassword(t, models.RoleAgent))
	account := s.createAccount(t, nil)
	ticket := map[string]any{"title": "Printer on fire", "source": "web", "accountId": account.ID}

	rec := s.api.Post("/api/tickets", sess.cookie, ticket)
	p := requireProblem(t, rec, http.StatusForbidden)
	require.Contains(t, p.Detail, "X-CSRF-Token")
	rec = s.api.Post("/api/tickets", sess.cookie, "X-CSRF-Token: "+auth.CSRFToken("ops_someone-else"), ticket)
	requireProblem(t, rec, http.StatusForbidden)
	other := s.signIn(t, s.createAgentWithPassword(t, models.RoleAgent))
	rec = s.api.Post("/api/tickets", sess.cookie, other.csrf, ticket)
	requireProblem(t, rec, http.StatusForbidden, "another session's token does not fit this cookie")
	require.EqualValues(t, 0, ticketCount(t, s.db, account.ID), "a refused request writes nothing")

	rec = s.api.Get("/api/tickets?limit=1", sess.cookie)
	require.Equal(t, http.StatusOK, rec.Code, "reads need no token; body: %s", rec.Body)

	created := decodeAs[models.Ticket](t, s.api.Post("/api/tickets", sess.cookie, sess.csrf, ticket), http.StatusCreated)
	require.EqualValues(t, 1, ticketCount(t, s.db, account.ID))
	var change models.TicketChange
	require.NoError(t, s.db.Take(&change, "ticket_id = ?", created.ID).Error)
	require.Equal(t, sess.info.Agent.ID, change.Actor, "the history names the signed-in agent")

	rec = s.do(http.MethodPost, "/api/tickets", ticket)
	require.Equal(t, http.StatusCreated, rec.Code, "API-key requests need no CSRF token; body: %s", rec.Body)
}

// TestCrossOriginRequestsRefused sends requests over real HTTP with the
// headers a browser adds to a request from another site's page.
func TestCrossOriginRequestsRefused(t *testing.T) {
	t.Parallel()
	s := setup(t)
	sess := s.signIn(t, s.createAgentWithPassword(t, models.RoleAgent))
	deps := s.deps
	deps.TrustedOrigins = []string{"https://support.example"}
	srv := httptest.NewServer(newHandler(t, deps))
	t.Cleanup(srv.Close)
	account := s.createAccount(t, nil)
	body := fmt.Sprintf(`{"title":"From elsewhere","source":"web","accountId":%q}`, account.ID)

	send := func(headers map[string]string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/tickets", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Cookie", api.SecureSessionCookie+"="+sess.token)
		req.Header.Set("X-CSRF-Token", sess.info.CSRFToken)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}

	require.Equal(t, http.StatusForbidden, send(map[string]string{"Sec-Fetch-Site": "cross-site"}).StatusCode)
	require.Equal(t, http.StatusForbidden, send(map[string]string{"Origin": "https://evil.example"}).StatusCode)
	require.EqualValues(t, 0, ticketCount(t, s.db, account.ID))

	require.Equal(t, http.StatusCreated, send(map[string]string{"Sec-Fetch-Site": "same-origin"}).StatusCode)
	require.Equal(t, http.StatusCreated, send(map[string]string{"Origin": srv.URL}).StatusCode)
	require.Equal(t, http.StatusCreated, send(map[string]string{"Origin": "https://support.example"}).StatusCode,
		"a trusted origin may send requests")

	// A sign-in from another site is refused too, so that a page cannot
	// sign a visitor in to an account of its choosing.
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/auth/login",
		strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, sess.email, testPassword)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	s := setup(t)
	email := s.createAgentWithPassword(t, models.RoleViewer)
	clk := &testClock{now: time.Now()}
	deps := s.deps
	deps.Sessions = auth.NewSessions(s.db, auth.Config{IdleTimeout: time.Hour, AbsoluteTimeout: 3 * time.Hour}, clk.Now)
	_, tapi := humatest.New(t, api.Config())
	api.Register(tapi, deps)

	t.Run("idle", func(t *testing.T) {
		sess := signInOn(t, tapi, email, testPassword)
		clk.Advance(59 * time.Minute)
		require.Equal(t, http.StatusOK, tapi.Get("/api/auth/me", sess.cookie).Code, "59 min idle")
		clk.Advance(59 * time.Minute)
		require.Equal(t, http.StatusOK, tapi.Get("/api/auth/me", sess.cookie).Code, "each request restarts the idle time")
		clk.Advance(61 * time.Minute)
		rec := tapi.Get("/api/auth/me", sess.cookie)
		requireProblem(t, rec, http.StatusUnauthorized)
		require.Empty(t, rec.Result().Cookies(), "a rejected cookie is left alone, since a newer one may share its name")
		clk.Advance(-61 * time.Minute)
		requireProblem(t, tapi.Get("/api/auth/me", sess.cookie), http.StatusUnauthorized)
	})

	t.Run("absolute", func(t *testing.T) {
		sess := signInOn(t, tapi, email, testPassword)
		require.Equal(t, sess.info.ExpiresAt, clk.Now().UTC().Add(3*time.Hour).Truncate(time.Microsecond))
		for range 5 {
			clk.Advance(35 * time.Minute)
			require.Equal(t, http.StatusOK, tapi.Get("/api/auth/me", sess.cookie).Code)
		}
		clk.Advance(25 * time.Minute)
		requireProblem(t, tapi.Get("/api/auth/me", sess.cookie), http.StatusUnauthorized)
	})

	t.Run("cleanup deletes expired rows", func(t *testing.T) {
		signInOn(t, tapi, email, testPassword)
		clk.Advance(4 * time.Hour)
		n, err := deps.Sessions.DeleteExpired(t.Context(), 1000)
		require.NoError(t, err)
		require.Positive(t, n)
		var left int64
		require.NoError(t, s.db.Model(&models.Session{}).
			Where("agent_id = (SELECT id FROM agents WHERE email = ?)", email).Count(&left).Error)
		require.Zero(t, left)
	})
}

func TestRoleAndStatusChangesApplyToSessions(t *testing.T) {
	t.Parallel()
	s := setup(t)
	email := s.createAgentWithPassword(t, models.RoleAdmin)
	sess := s.signIn(t, email)
	id := sess.info.Agent.ID
	require.Equal(t, http.StatusOK, s.api.Get("/api/audit-log", sess.cookie).Code)

	decodeAs[models.Agent](t, s.do(http.MethodPatch, "/api/agents/"+id, map[string]any{"role": "viewer"}), http.StatusOK)
	p := requireProblem(t, s.api.Get("/api/audit-log", sess.cookie), http.StatusForbidden)
	require.Equal(t, "list-audit-log needs role admin; your agent account has role viewer", p.Detail)

	decodeAs[models.Agent](t, s.do(http.MethodPatch, "/api/agents/"+id, map[string]any{"active": false}), http.StatusOK)
	requireProblem(t, s.api.Get("/api/auth/me", sess.cookie), http.StatusUnauthorized)
	decodeAs[models.Agent](t, s.do(http.MethodPatch, "/api/agents/"+id, map[string]any{"active": true}), http.StatusOK)
	requireProblem(t, s.api.Get("/api/auth/me", sess.cookie), http.StatusUnauthorized,
		"reactivating an agent does not revive the sessions that deactivation ended")

	p = requireProblem(t, s.do(http.MethodPatch, "/api/agents/"+id, map[string]any{"role": "owner"}), http.StatusUnprocessableEntity)
	require.Equal(t, "body.role", p.Errors[0].Location)
}

func TestPasswords(t *testing.T) {
	t.Parallel()
	s := setup(t)
	email := s.createAgentWithPassword(t, models.RoleAgent)
	first := s.signIn(t, email)
	second := s.signIn(t, email)
	const newPassword = "a much longer passphrase now"

	t.Run("short password refused without echo", func(t *testing.T) {
		rec := s.do(http.MethodPost, "/api/agents", map[string]any{
			"name": "Short", "email": unique("short") + "@support.example", "password": "hunter2-xyz"})
		p := requireProblem(t, rec, http.StatusUnprocessableEntity)
		require.Equal(t, "body.password", p.Errors[0].Location)
		require.Contains(t, p.Errors[0].Message, "at least 12 characters")
		require.NotContains(t, rec.Body.String(), "hunter2-xyz")

		rec = s.do(http.MethodPost, "/api/agents", map[string]any{
			"name": "Long", "email": unique("long") + "@support.example", "password": strings.Repeat("x", 1025)})
		requireProblem(t, rec, http.StatusUnprocessableEntity)
		require.NotContains(t, rec.Body.String(), strings.Repeat("x", 50), "a schema error does not echo the password")
	})

	t.Run("change own password", func(t *testing.T) {
		rec := s.api.Post("/api/auth/password", first.cookie, first.csrf,
			map[string]any{"currentPassword": "wrong password here", "newPassword": newPassword})
		p := requireProblem(t, rec, http.StatusUnprocessableEntity)
		require.Equal(t, "body.currentPassword", p.Errors[0].Location)

		rec = s.api.Post("/api/auth/password", first.cookie, first.csrf,
			map[string]any{"currentPassword": testPassword, "newPassword": newPassword})
		info := decodeAs[api.SessionInfo](t, rec, http.StatusOK)
		require.NotEqual(t, first.info.CSRFToken, info.CSRFToken)
		require.Equal(t, first.info.ExpiresAt, info.ExpiresAt, "the new session ends when the old one would have")
		cookies := rec.Result().Cookies()
		require.Len(t, cookies, 1)
		require.NotEqual(t, first.token, cookies[0].Value, "the session token is replaced")
		rotated := "Cookie: " + api.SecureSessionCookie + "=" + cookies[0].Value
		require.Equal(t, http.StatusOK, s.api.Get("/api/auth/me", rotated).Code)
		requireProblem(t, s.api.Get("/api/auth/me", first.cookie), http.StatusUnauthorized, "the old token stops working")
		requireProblem(t, s.api.Get("/api/auth/me", second.cookie), http.StatusUnauthorized)
		first.cookie, first.csrf = rotated, "X-CSRF-Token: "+info.CSRFToken

		requireProblem(t, s.api.Post("/api/auth/login", map[string]any{"email": email, "password": testPassword}), http.StatusUnauthorized)
		signInOn(t, s.api, email, newPassword)

		var entry models.AuditEntry
		require.NoError(t, s.db.Take(&entry, "action = ? AND resource_id = ?", "change-own-password", first.info.Agent.ID).Error)
		require.Equal(t, models.ActorAgent, entry.ActorType)
		require.Equal(t, first.info.Agent.ID, entry.ActorID)
		require.Equal(t, []string{"currentPassword", "newPassword"}, []string(entry.Fields))
	})

	t.Run("admin sets a password", func(t *testing.T) {
		rec := s.do(http.MethodPut, "/api/agents/"+first.info.Agent.ID+"/password", map[string]any{"password": testPassword})
		agent := decodeAs[models.Agent](t, rec, http.StatusOK)
		require.True(t, agent.CanSignIn)
		requireProblem(t, s.api.Get("/api/auth/me", first.cookie), http.StatusUnauthorized, "setting a password ends sessions")
		s.signIn(t, email)

		rec = s.do(http.MethodPut, "/api/agents/agt_missing/password", map[string]any{"password": testPassword})
		requireProblem(t, rec, http.StatusNotFound)
	})
}

func TestSignInThrottle(t *testing.T) {
	t.Parallel()
	s := setup(t)
	email := s.createAgentWithPassword(t, models.RoleAgent)
	deps := s.deps
	deps.Throttle = auth.NewThrottle(redis_rate.NewLimiter(rateRedis(t)))
	// humatest sends every request from 127.0.0.1; as a trusted proxy,
	// its X-Forwarded-For names the client.
	deps.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("192.0.2.0/24")}
	_, tapi := humatest.New(t, api.Config())
	api.Register(tapi, deps)
	// Each client is its own IPv6 /64, under a prefix random per run,
	// because the counters in Redis outlive one run under -count.
	run := mrand.IntN(1 << 16)
	from := func(n int) string { return fmt.Sprintf("X-Forwarded-For: 2001:db8:%x:%x::1, 192.0.2.1", run, n) }
	attempt := func(client int, password string) *http.Response {
		return tapi.Post("/api/auth/login", from(client), map[string]any{"email": email, "password": password}).Result()
	}

	// Ten wrong passwords from ten addresses reach the account's limit.
	for i := range 10 {
		require.Equal(t, http.StatusUnauthorized, attempt(i, "not the password").StatusCode, "attempt %d", i)
	}
	resp := attempt(20, testPassword)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "even the right password waits")
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.Positive(t, retry)
	require.LessOrEqual(t, retry, 90)

	// Another account from a fresh address is not affected, and a
	// success clears that account's count.
	other := s.createAgentWithPassword(t, models.RoleAgent)
	for range 9 {
		rec := tapi.Post("/api/auth/login", from(30), map[string]any{"email": other, "password": "not the password"})
		requireProblem(t, rec, http.StatusUnauthorized)
	}
	signInOn(t, tapi, other, testPassword, from(31))
	rec := tapi.Post("/api/auth/login", from(32), map[string]any{"email": other, "password": "not the password"})
	requireProblem(t, rec, http.StatusUnauthorized, "the count restarted after the success")

	// One address is limited across accounts.
	for i := range 30 {
		rec := tapi.Post("/api/auth/login", from(40), map[string]any{"email": fmt.Sprintf("ghost%d@support.example", i), "password": "x"})
		require.Equal(t, http.StatusUnauthorized, rec.Code, "attempt %d", i)
	}
	rec = tapi.Post("/api/auth/login", from(40), map[string]any{"email": "ghost@support.example", "password": "x"})
	requireProblem(t, rec, http.StatusTooManyRequests)

	// Guessing the current password in a password change counts against
	// the account like a sign-in.
	third := s.createAgentWithPassword(t, models.RoleAgent)
	sess := signInOn(t, tapi, third, testPassword, from(50))
	for range 10 {
		rec = tapi.Post("/api/auth/password", sess.cookie, sess.csrf,
			map[string]any{"currentPassword": "a wrong guess here", "newPassword": "a brand new passphrase"})
		requireProblem(t, rec, http.StatusUnprocessableEntity)
	}
	rec = tapi.Post("/api/auth/password", sess.cookie, sess.csrf,
		map[string]any{"currentPassword": testPassword, "newPassword": "a brand new passphrase"})
	requireProblem(t, rec, http.StatusTooManyRequests)
	require.NotEmpty(t, rec.Header().Get("Retry-After"))
}

func TestSessionRateLimit(t *testing.T) {
	t.Parallel()
	s := setup(t)
	email := s.createAgentWithPassword(t, models.RoleViewer)
	tapi := s.replica(t, 2, 2)
	sess := signInOn(t, tapi, email, testPassword)
	key := s.roleAuth(t, models.RoleViewer)

	for range 2 {
		require.Equal(t, http.StatusOK, tapi.Get("/api/tickets?limit=1", sess.cookie).Code)
	}
	rec := tapi.Get("/api/tickets?limit=1", sess.cookie)
	p := requireProblem(t, rec, http.StatusTooManyRequests)
	require.Contains(t, p.Detail, "this session may send 2 requests per minute")
	require.NotEmpty(t, rec.Header().Get("Retry-After"))

	second := signInOn(t, tapi, email, testPassword)
	require.Equal(t, http.StatusOK, tapi.Get("/api/tickets?limit=1", second.cookie).Code, "each session has its own budget")
	require.Equal(t, http.StatusOK, tapi.Get("/api/tickets?limit=1", key).Code, "API keys count apart from sessions")
}

func TestSessionOnlyOperations(t *testing.T) {
	t.Parallel()
	s := setup(t)
	p := requireProblem(t, s.do(http.MethodGet, "/api/auth/me"), http.StatusForbidden)
	require.Equal(t, "get-current-session is for agents signed in with a session (POST /api/auth/login); API keys cannot call it", p.Detail)
}

// TestSignInReadsEveryForwardedLine sends X-Forwarded-For on two header
// lines, as a proxy that adds its own line rather than extending the
// client's does. The client's line, which it can forge, comes first.
func TestSignInReadsEveryForwardedLine(t *testing.T) {
	t.Parallel()
	s := setup(t)
	email := s.createAgentWithPassword(t, models.RoleViewer)
	deps := s.deps
	deps.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	srv := httptest.NewServer(newHandler(t, deps))
	t.Cleanup(srv.Close)

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/auth/login",
		strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, email, testPassword)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("X-Forwarded-For", "198.51.100.77")
	req.Header.Add("X-Forwarded-For", "203.0.113.9")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	var stored models.Session
	require.NoError(t, s.db.Order("created_at DESC").Take(&stored,
		"agent_id = (SELECT id FROM agents WHERE email = ?)", email).Error)
	require.Equal(t, "203.0.113.9", stored.Address, "the address the proxy saw, not the forged one")
}

func TestClientAddress(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct{ name, remote, forwarded, want string }{
		{"direct client", "203.0.113.7:5000", "", "203.0.113.7"},
		{"direct client ignores the header", "203.0.113.7:5000", "198.51.100.1", "203.0.113.7"},
		{"one proxy", "10.0.0.2:5000", "198.51.100.1", "198.51.100.1"},
		{"two proxies", "10.0.0.2:5000", "198.51.100.1, 10.0.0.3", "198.51.100.1"},
		{"spoofed first hop", "10.0.0.2:5000", "1.2.3.4, 198.51.100.1", "198.51.100.1"},
		{"malformed hop stops the walk", "10.0.0.2:5000", "198.51.100.1, garbage, 10.0.0.3", "10.0.0.3"},
		{"proxy without header", "10.0.0.2:5000", "", "10.0.0.2"},
		{"IPv6 proxy", "[::1]:5000", "2001:db8::5", "2001:db8::5"},
		{"mapped IPv4 peer", "[::ffff:203.0.113.7]:5000", "", "203.0.113.7"},
		{"hop with a port", "10.0.0.2:5000", "198.51.100.1:4711", "198.51.100.1"},
		{"IPv6 hop with a port", "10.0.0.2:5000", "[2001:db8::5]:4711", "2001:db8::5"},
	} {
		require.Equal(t, tc.want, api.ClientAddress(tc.remote, tc.forwarded, proxies), tc.name)
	}
}

func TestSessionWritesMessagesAsItself(t *testing.T) {
	t.Parallel()
	s := setup(t)
	sess := s.signIn(t, s.createAgentWithPassword(t, models.RoleAgent))
	other := s.signIn(t, s.createAgentWithPassword(t, models.RoleAgent))
	account := s.createAccount(t, nil)
	ticket := decodeAs[models.Ticket](t, s.do(http.MethodPost, "/api/tickets",
		map[string]any{"title": "Who wrote this", "source": "web", "accountId": account.ID}), http.StatusCreated)
	path := "/api/tickets/" + ticket.ID + "/messages"

	rec := s.api.Post(path, sess.cookie, sess.csrf,
		map[string]any{"body": "Posing as someone else", "authorType": "agent", "authorId": other.info.Agent.ID})
	p := requireProblem(t, rec, http.StatusForbidden)
	require.Equal(t, "body.authorId", p.Errors[0].Location)

	msg := decodeAs[models.Message](t, s.api.Post(path, sess.cookie, sess.csrf,
		map[string]any{"body": "On it", "authorType": "agent"}), http.StatusCreated)
	require.NotNil(t, msg.AuthorID)
	require.Equal(t, sess.info.Agent.ID, *msg.AuthorID, "the author is the signed-in agent")

	customer := decodeAs[models.Message](t, s.api.Post(path, sess.cookie, sess.csrf,
		map[string]any{"body": "Relayed from a phone call", "authorType": "customer", "authorName": "Caller"}), http.StatusCreated)
	require.Equal(t, models.AuthorCustomer, customer.AuthorType, "agents may still relay customer messages")

	rec = s.do(http.MethodPost, path, map[string]any{"body": "From the integration", "authorType": "agent", "authorId": other.info.Agent.ID})
	require.Equal(t, http.StatusCreated, rec.Code, "an API key names the author; body: %s", rec.Body)
}
