package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost/apikeys"
	"github.com/outposthq/outpost/auth"
	"github.com/outposthq/outpost/models"
)

type callerContextKey struct{}

type requestIDContextKey struct{}

// requestIDPattern accepts a caller's X-Request-Id only when it is short and
// plain, so that it cannot inject into logs.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Names of the dashboard session cookie. With the Secure attribute the
// cookie takes the __Host- prefix, which browsers accept only from a secure
// origin, for path / and without a Domain, so that a sibling subdomain
// cannot plant a cookie of that name.
const (
	SessionCookie       = "outpost_session"
	SecureSessionCookie = "__Host-outpost_session"
)

// sessionCookieName returns the name of the session cookie with or without
// the Secure attribute.
func sessionCookieName(secure bool) string {
	if secure {
		return SecureSessionCookie
	}
	return SessionCookie
}

// csrfHeader carries the CSRF token of a session on requests that change
// state.
const csrfHeader = "X-CSRF-Token"

// caller is who sent a request: an integration with an API key, or an
// agent signed in with a session cookie.
type caller struct {
	Role    models.Role
	APIKey  *models.APIKey
	Session *auth.Current
	// sessionToken is the cookie value of Session, from which its CSRF
	// token is derived.
	sessionToken string
}

// id returns the ID of the API key or of the signed-in agent.
func (c caller) id() string {
	if c.Session != nil {
		return c.Session.Agent.ID
	}
	return c.APIKey.ID
}

func (c caller) actorType() models.ActorType {
	if c.Session != nil {
		return models.ActorAgent
	}
	return models.ActorAPIKey
}

// describe names the caller in error messages.
func (c caller) describe() string {
	if c.Session != nil {
		return "your agent account"
	}
	return "this API key"
}

// limitSubject names the caller's rate-limit counter.
func (c caller) limitSubject() string {
	if c.Session != nil {
		return "session:" + c.Session.Session.ID
	}
	return "api_key:" + c.APIKey.ID
}

// limitName names the caller in rate-limit messages.
func (c caller) limitName() string {
	if c.Session != nil {
		return "this session"
	}
	return "this API key"
}

// callerFrom returns the caller that authenticate stored in ctx.
func callerFrom(ctx context.Context) (caller, bool) {
	c, ok := ctx.Value(callerContextKey{}).(caller)
	return c, ok
}

// authenticate returns middleware that requires, on every operation that
// declares security, a valid API key in the Authorization header or a valid
// session cookie. A request with both is judged by its API key. Requests
// authenticated by the cookie that may change state must also carry the
// session's CSRF token.
func authenticate(api huma.API, keys *apikeys.Keys, sessions *auth.Sessions, secureCookies bool, logger *slog.Logger) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if len(ctx.Operation().Security) == 0 {
			next(ctx)
			return
		}
		unavailable := func(err error) {
			logger.ErrorContext(ctx.Context(), "authenticate request",
				slog.String("request_id", requestID(ctx.Context())),
				slog.String("err", err.Error()))
			_ = huma.WriteErr(api, ctx, http.StatusServiceUnavailable, "authentication is unavailable; retry shortly")
		}

		header := ctx.Header("Authorization")
		cookie, _ := huma.ReadCookie(ctx, sessionCookieName(secureCookies))
		if header == "" && cookie != nil && sessions != nil {
			cur, err := sessions.Authenticate(ctx.Context(), cookie.Value)
			if errors.Is(err, auth.ErrInvalidSession) {
				// The cookie is left alone: a request sent with a
				// session that a password change just replaced would
				// otherwise delete the new cookie of the same name.
				_ = huma.WriteErr(api, ctx, http.StatusUnauthorized,
					"your session has expired or was ended; sign in again with POST /api/auth/login")
				return
			}
			if err != nil {
				unavailable(err)
				return
			}
			if !safeMethod(ctx.Method()) && !auth.ValidCSRFToken(cookie.Value, ctx.Header(csrfHeader)) {
				_ = huma.WriteErr(api, ctx, http.StatusForbidden, "missing or invalid "+csrfHeader+
					" header; requests signed in with the session cookie that change data must send the csrfToken from POST /api/auth/login or GET /api/auth/me in it")
				return
			}
			next(huma.WithValue(ctx, callerContextKey{}, caller{Role: cur.Agent.Role, Session: &cur, sessionToken: cookie.Value}))
			return
		}

		reject := func(msg string) {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="outpost"`)
			_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, msg)
		}
		scheme, token, _ := strings.Cut(header, " ")
		switch {
		case header == "":
			reject("not signed in; send an API key in the header Authorization: Bearer <API key>, or sign in with POST /api/auth/login")
			return
		case !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "":
			reject("unsupported Authorization header; send the API key with the Bearer scheme: Authorization: Bearer <API key>")
			return
		}
		key, err := keys.Authenticate(ctx.Context(), strings.TrimSpace(token))
		if errors.Is(err, apikeys.ErrInvalidKey) {
			reject("invalid API key; check that the key is complete and has not been revoked or expired")
			return
		}
		if err != nil {
			unavailable(err)
			return
		}
		next(huma.WithValue(ctx, callerContextKey{}, caller{Role: key.Role, APIKey: &key}))
	}
}

// safeMethod reports whether method only reads.
func safeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// withRequestLog assigns each request an ID, returns it in X-Request-Id and
// logs the request when it ends.
func withRequestLog(next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDContextKey{}, id)

		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(ctx))

		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		logger.LogAttrs(ctx, level, "request",
			slog.String("request_id", id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
	})
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDContextKey{}).(string)
	return id
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
