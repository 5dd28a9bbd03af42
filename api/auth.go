package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost/auth"
	"github.com/outposthq/outpost/models"
)

// SignInInput is the request of sign-in.
type SignInInput struct {
	UserAgent string `header:"User-Agent" hidden:"true"`
	Body      struct {
		Email    string `json:"email" minLength:"1" maxLength:"320" example:"dana@support.example"`
		Password string `json:"password" minLength:"1" maxLength:"1024" writeOnly:"true"`
	}
	remoteAddr   string
	forwardedFor string
}

// Resolve records the peer address, which huma offers to resolvers only,
// and every X-Forwarded-For line: a proxy may add its own line rather than
// extend the client's.
func (in *SignInInput) Resolve(ctx huma.Context) []error {
	in.remoteAddr = ctx.RemoteAddr()
	in.forwardedFor = forwardedFor(ctx)
	return nil
}

// forwardedFor joins the X-Forwarded-For lines of a request in order.
func forwardedFor(ctx huma.Context) string {
	var lines []string
	ctx.EachHeader(func(name, value string) {
		if strings.EqualFold(name, "X-Forwarded-For") {
			lines = append(lines, value)
		}
	})
	return strings.Join(lines, ",")
}

// SessionInfo describes the caller's dashboard session.
type SessionInfo struct {
	Agent         models.Agent `json:"agent"`
	CSRFToken     string       `json:"csrfToken" doc:"Send this value in the X-CSRF-Token header of every request that changes data while signed in with the session cookie."`
	ExpiresAt     time.Time    `json:"expiresAt" doc:"When the session ends however active it is."`
	IdleExpiresAt time.Time    `json:"idleExpiresAt" doc:"When the session ends unless it is used again before then."`
}

// SignInOutput is the response of sign-in.
type SignInOutput struct {
	SetCookie http.Cookie `header:"Set-Cookie" doc:"The session cookie."`
	Body      SessionInfo
}

// SignOutOutput is the response of sign-out.
type SignOutOutput struct {
	SetCookie http.Cookie `header:"Set-Cookie" doc:"Clears the session cookie."`
}

// ChangeOwnPasswordInput is the request of change-own-password.
type ChangeOwnPasswordInput struct {
	Body struct {
		CurrentPassword string `json:"currentPassword" minLength:"1" maxLength:"1024" writeOnly:"true"`
		NewPassword     string `json:"newPassword" minLength:"1" maxLength:"1024" writeOnly:"true" doc:"At least 12 characters."`
	}
}

// SetAgentPasswordInput is the request of set-agent-password.
type SetAgentPasswordInput struct {
	ID   string `path:"id" doc:"Agent ID."`
	Body struct {
		Password string `json:"password" minLength:"1" maxLength:"1024" writeOnly:"true" doc:"At least 12 characters."`
	}
}

// sessionOnly marks op as callable only with a session cookie.
func sessionOnly(op huma.Operation) huma.Operation {
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata[sessionOnlyMetadata] = true
	return op
}

func registerAuth(api huma.API, h *handlers) {
	huma.Register(api, huma.Operation{
		OperationID: "sign-in",
		Method:      http.MethodPost,
		Path:        "/api/auth/login",
		Summary:     "Sign in",
		Description: "Checks an agent's email and password and starts a dashboard session: " +
			"the response sets the session cookie and returns the CSRF token. " +
			"Repeated attempts for one email address or from one address are rejected with 429 for a while.",
		Tags:         []string{"Sign-in"},
		MaxBodyBytes: 16 << 10,
		Errors:       []int{http.StatusUnauthorized, http.StatusTooManyRequests},
	}, h.signIn)

	huma.Register(api, sessionOnly(secured(huma.Operation{
		OperationID:   "sign-out",
		Method:        http.MethodPost,
		Path:          "/api/auth/logout",
		Summary:       "Sign out",
		Description:   "Ends the session of the cookie and clears the cookie.",
		Tags:          []string{"Sign-in"},
		DefaultStatus: http.StatusNoContent,
	})), h.signOut)

	huma.Register(api, sessionOnly(secured(huma.Operation{
		OperationID: "get-current-session",
		Method:      http.MethodGet,
		Path:        "/api/auth/me",
		Summary:     "Get the signed-in agent",
		Description: "Returns the agent of the session cookie, the session's expiry times and its CSRF token.",
		Tags:        []string{"Sign-in"},
	})), h.getCurrentSession)

	huma.Register(api, sessionOnly(secured(huma.Operation{
		OperationID: "change-own-password",
		Method:      http.MethodPost,
		Path:        "/api/auth/password",
		Summary:     "Change your password",
		Description: "Replaces the signed-in agent's password after checking the current one and ends every session of the agent. " +
			"The response starts a new session in place of this one, with the same expiry: it sets a new session cookie and returns a new CSRF token.",
		Tags:   []string{"Sign-in"},
		Errors: []int{http.StatusTooManyRequests},
	})), h.changeOwnPassword)

	huma.Register(api, secured(huma.Operation{
		OperationID: "set-agent-password",
		Method:      http.MethodPut,
		Path:        "/api/agents/{id}/password",
		Summary:     "Set an agent's password",
		Description: "Sets the password with which the agent signs in, and ends the agent's sessions.",
		Tags:        []string{"Agents"},
		Errors:      []int{http.StatusNotFound},
	}), h.setAgentPassword)
}

func (h *handlers) signIn(ctx context.Context, in *SignInInput) (*SignInOutput, error) {
	address := clientAddress(in.remoteAddr, in.forwardedFor, h.deps.TrustedProxies)
	if h.deps.Throttle != nil {
		err := h.checkThrottle(ctx, address, func(ctx context.Context) (time.Duration, error) {
			return h.deps.Throttle.Attempt(ctx, in.Body.Email, address)
		})
		if err != nil {
			return nil, err
		}
	}
	cur, token, err := h.deps.Sessions.SignIn(ctx, in.Body.Email, in.Body.Password,
		auth.Client{Address: address, UserAgent: in.UserAgent})
	if errors.Is(err, auth.ErrInvalidCredentials) {
		h.deps.Logger.InfoContext(ctx, "sign-in rejected",
			slog.String("request_id", requestID(ctx)), slog.String("address", address))
		return nil, huma.Error401Unauthorized("email or password is incorrect, or the agent is inactive or has no password")
	}
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	if h.deps.Throttle != nil {
		callCtx, cancel := context.WithTimeout(ctx, rateLimitTimeout)
		err := h.deps.Throttle.Succeeded(callCtx, in.Body.Email)
		cancel()
		if err != nil {
			h.deps.Logger.WarnContext(ctx, "clear sign-in attempts", slog.String("err", err.Error()))
		}
	}
	h.deps.Logger.InfoContext(ctx, "signed in",
		slog.String("request_id", requestID(ctx)),
		slog.String("agent_id", cur.Agent.ID),
		slog.String("session_id", cur.Session.ID),
		slog.String("address", address))
	return &SignInOutput{
		SetCookie: sessionCookie(token, cur.Session.ExpiresAt, !h.deps.InsecureCookies),
		Body:      sessionInfo(cur, token),
	}, nil
}

func (h *handlers) signOut(ctx context.Context, _ *struct{}) (*SignOutOutput, error) {
	c, _ := callerFrom(ctx)
	if err := h.deps.Sessions.SignOut(ctx, c.Session.Session.ID); err != nil {
		return nil, h.problem(ctx, err)
	}
	return &SignOutOutput{SetCookie: expiredCookie(!h.deps.InsecureCookies)}, nil
}

func (h *handlers) getCurrentSession(ctx context.Context, _ *struct{}) (*BodyOutput[SessionInfo], error) {
	c, _ := callerFrom(ctx)
	return &BodyOutput[SessionInfo]{Body: sessionInfo(*c.Session, c.sessionToken)}, nil
}

func (h *handlers) changeOwnPassword(ctx context.Context, in *ChangeOwnPasswordInput) (*SignInOutput, error) {
	c, _ := callerFrom(ctx)
	if h.deps.Throttle != nil {
		// The current password is a guess like a sign-in's, so it
		// counts against the same account limit.
		err := h.checkThrottle(ctx, c.Session.Session.Address, func(ctx context.Context) (time.Duration, error) {
			return h.deps.Throttle.AttemptAccount(ctx, c.Session.Agent.Email)
		})
		if err != nil {
			return nil, err
		}
	}
	cur, token, err := h.deps.Sessions.ChangePassword(ctx, *c.Session, in.Body.CurrentPassword, in.Body.NewPassword)
	if errors.Is(err, auth.ErrInvalidSession) {
		return nil, huma.Error401Unauthorized("your session was ended by another change; sign in again")
	}
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &SignInOutput{
		SetCookie: sessionCookie(token, cur.Session.ExpiresAt, !h.deps.InsecureCookies),
		Body:      sessionInfo(cur, token),
	}, nil
}

func (h *handlers) setAgentPassword(ctx context.Context, in *SetAgentPasswordInput) (*BodyOutput[models.Agent], error) {
	keep := ""
	if c, _ := callerFrom(ctx); c.Session != nil && c.Session.Agent.ID == in.ID {
		keep = c.Session.Session.ID
	}
	agent, err := h.deps.Sessions.SetPassword(ctx, in.ID, in.Body.Password, "body.password", keep)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.Agent]{Body: agent}, nil
}

// checkThrottle counts a password attempt from address with attempt, which
// has rateLimitTimeout to reach Redis, and returns the 429 to send when the
// limit is reached. When Redis fails the attempt goes on uncounted, because
// argon2id already makes each guess slow.
func (h *handlers) checkThrottle(ctx context.Context, address string, attempt func(context.Context) (time.Duration, error)) error {
	callCtx, cancel := context.WithTimeout(ctx, rateLimitTimeout)
	wait, err := attempt(callCtx)
	cancel()
	if err != nil {
		h.deps.Logger.WarnContext(ctx, "sign-in throttle unavailable; attempt not counted",
			slog.String("request_id", requestID(ctx)), slog.String("err", err.Error()))
		return nil
	}
	if wait > 0 {
		h.deps.Logger.InfoContext(ctx, "password attempt throttled",
			slog.String("request_id", requestID(ctx)), slog.String("address", address))
		return tooManyAttempts(wait)
	}
	return nil
}

// tooManyAttempts is the 429 of a throttled password check.
func tooManyAttempts(wait time.Duration) error {
	retry := max(1, ceilSeconds(wait))
	return huma.ErrorWithHeaders(
		huma.Error429TooManyRequests(fmt.Sprintf("too many password attempts for this account or from this address; retry after %d s", retry)),
		http.Header{"Retry-After": []string{strconv.Itoa(retry)}})
}

func sessionInfo(cur auth.Current, token string) SessionInfo {
	return SessionInfo{
		Agent:         cur.Agent,
		CSRFToken:     auth.CSRFToken(token),
		ExpiresAt:     cur.Session.ExpiresAt,
		IdleExpiresAt: cur.IdleExpiresAt,
	}
}

// sessionCookie returns the cookie that carries token until expiresAt.
func sessionCookie(token string, expiresAt time.Time, secure bool) http.Cookie {
	return http.Cookie{
		Name:     sessionCookieName(secure),
		Value:    token,
		Path:     "/",
		Expires:  expiresAt,
		MaxAge:   max(1, int(time.Until(expiresAt).Seconds())),
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// expiredCookie returns a cookie that makes the browser delete the session
// cookie.
func expiredCookie(secure bool) http.Cookie {
	return http.Cookie{
		Name:     sessionCookieName(secure),
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// clientAddress returns the address a request comes from. When the peer
// remoteAddr is one of trusted, a reverse proxy, it is the rightmost
// address of X-Forwarded-For that is not itself a trusted proxy.
func clientAddress(remoteAddr, forwardedFor string, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if !isTrusted(peer) {
		return peer.String()
	}
	hops := strings.Split(forwardedFor, ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := parseHop(strings.TrimSpace(hops[i]))
		if err != nil {
			// A malformed hop was written by a client, not by a
			// trusted proxy, so the chain stops being trustworthy here.
			break
		}
		a = a.Unmap()
		if !isTrusted(a) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

// parseHop parses one X-Forwarded-For address, which some proxies write
// with a port: 203.0.113.7, 203.0.113.7:5000 or [2001:db8::1]:5000.
func parseHop(hop string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(hop); err == nil {
		return a, nil
	}
	ap, err := netip.ParseAddrPort(hop)
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr(), nil
}
