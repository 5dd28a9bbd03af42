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
)

type apiKeyContextKey struct{}

type requestIDContextKey struct{}

// requestIDPattern accepts a caller's X-Request-Id only when it is short and
// plain, so that it cannot inject into logs.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// authenticate returns middleware that requires a valid API key on every
// operation that declares the security scheme.
func authenticate(api huma.API, keys *apikeys.Keys, logger *slog.Logger) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if len(ctx.Operation().Security) == 0 {
			next(ctx)
			return
		}
		reject := func(msg string) {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="outpost"`)
			_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, msg)
		}

		header := ctx.Header("Authorization")
		scheme, token, _ := strings.Cut(header, " ")
		switch {
		case header == "":
			reject("missing API key; send the header Authorization: Bearer <API key>")
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
			logger.ErrorContext(ctx.Context(), "authenticate request",
				slog.String("request_id", requestID(ctx.Context())),
				slog.String("err", err.Error()))
			_ = huma.WriteErr(api, ctx, http.StatusServiceUnavailable, "authentication is unavailable; retry shortly")
			return
		}
		next(huma.WithValue(ctx, apiKeyContextKey{}, key))
	}
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
