// Package api serves Outpost's REST API with huma: operations, request and
// response types, API-key authentication and the mapping of domain errors
// to problem details.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/danielgtaylor/huma/v2/validation"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/analytics"
	"github.com/outposthq/outpost/apikeys"
	"github.com/outposthq/outpost/audit"
	"github.com/outposthq/outpost/auth"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/idempotency"
	"github.com/outposthq/outpost/sla"
	"github.com/outposthq/outpost/webhooks"
)

// Version is the API version in the OpenAPI document.
const Version = "1.0.0"

// Names of the security schemes in the OpenAPI document: a bearer API key,
// or the session cookie of a signed-in agent.
const (
	securityScheme = "apiKey"
	sessionScheme  = "session"
)

// maxBodyBytes limits request bodies; larger ones get 413.
const maxBodyBytes = 1 << 20

// Deps are the services the API calls.
type Deps struct {
	Helpdesk  *helpdesk.Service
	Endpoints *webhooks.Endpoints
	// Deliveries redelivers, replays and sends test deliveries.
	Deliveries *webhooks.Deliverer
	Keys       *apikeys.Keys
	// Sessions signs agents in to the dashboard; nil turns sign-in and
	// session cookies off.
	Sessions *auth.Sessions
	// Throttle slows repeated sign-in attempts; nil turns it off.
	Throttle *auth.Throttle
	// InsecureCookies drops the Secure attribute of the session cookie,
	// for local HTTP without TLS.
	InsecureCookies bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// names the client address of a sign-in.
	TrustedProxies []netip.Prefix
	// TrustedOrigins are other origins, such as https://support.example,
	// whose pages may send state-changing requests with the session
	// cookie.
	TrustedOrigins []string
	// Monitoring, when set, is the queue UI served at /monitoring/ to
	// admins signed in with a session. Its manifest.json is served to
	// everyone, because browsers fetch it without cookies.
	Monitoring http.Handler
	// Audit records configuration changes and serves the audit log; nil
	// turns both off.
	Audit *audit.Log
	// RateLimit limits requests per API key; a nil Limiter turns it off.
	RateLimit RateLimit
	// Idempotency stores responses by Idempotency-Key; nil turns the
	// header off.
	Idempotency *idempotency.Store
	SLA         *sla.Engine
	// Analytics computes the analytics reports; nil leaves them out.
	Analytics *analytics.Reports
	// Ready reports whether the database and the queue are reachable.
	Ready  func(ctx context.Context) error
	Logger *slog.Logger
}

// NewHandler returns the HTTP handler of the whole API: the operations under
// /api, health checks, the OpenAPI document, the docs page, the sign-in page
// and the queue UI. It fails only on a malformed trusted origin.
func NewHandler(deps Deps) (http.Handler, error) {
	mux := http.NewServeMux()
	api := humago.New(mux, Config())
	Register(api, deps)
	protection, err := newCrossOriginProtection(deps.TrustedOrigins)
	if err != nil {
		return nil, fmt.Errorf("trusted origins: %w", err)
	}
	registerDocs(mux)
	if deps.Sessions != nil {
		registerPages(mux, deps, protection)
	}
	handler := withCrossOriginCheck(mux, protection)
	return withRequestLog(withAPIResponses(withInputChecks(handler)), deps.Logger), nil
}

func init() {
	// huma marks every array nullable in the schema by default, but the
	// API rejects null arrays in requests and never sends them, so the
	// document states it for generated clients.
	huma.DefaultArrayNullable = false
}

// Config returns the huma configuration: OpenAPI 3.1 at /openapi.json and
// /openapi.yaml and the API-key security scheme. huma's docs route is off
// because NewHandler serves /docs from embedded files (docs.go).
func Config() huma.Config {
	cfg := huma.DefaultConfig("Outpost API", Version)
	cfg.DocsPath = ""
	cfg.Info.Description = "Outpost is the backend of a customer-support platform: tickets, " +
		"accounts, agents and signed webhooks. Integrations authenticate every /api request with " +
		"`Authorization: Bearer <API key>`; create a key with `outpost apikey create --name NAME`. " +
		"Agents sign in with `POST /api/auth/login`, which sets a session cookie; requests that change " +
		"data with that cookie must also send the session's CSRF token in the `X-CSRF-Token` header."
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		securityScheme: {
			Type:        "http",
			Scheme:      "bearer",
			Description: "An API key created with `outpost apikey create` or `POST /api/api-keys`.",
		},
		sessionScheme: {
			Type: "apiKey",
			In:   "cookie",
			Name: SecureSessionCookie,
			Description: "The session cookie set by `POST /api/auth/login`, named `" + SecureSessionCookie +
				"`, or `" + SessionCookie + "` when the server is configured for plain HTTP. Requests that change data " +
				"must also send the `csrfToken` of the session in the `X-CSRF-Token` header.",
		},
	}
	cfg.Transformers = append(cfg.Transformers, tidyValidationErrors)
	return cfg
}

// tidyValidationErrors sets the location of each missing-property error
// to the property, such as body.title, in place of the object that lacks
// it, shortens long echoed values and drops echoed passwords. huma v2.37 reports the object, as JSON Schema validators do, and names
// the property only in the message.
func tidyValidationErrors(_ huma.Context, _ string, v any) (any, error) {
	model, ok := v.(*huma.ErrorModel)
	if !ok {
		return v, nil
	}
	prefix, suffix, _ := strings.Cut(validation.MsgExpectedRequiredProperty, "%s")
	for _, detail := range model.Errors {
		detail.Value = shortValue(detail.Value)
		if secretField(detail.Location) || detail.Location == "body" {
			// A value at "body" is the raw body of a request that is
			// not valid JSON, which may contain a password.
			detail.Value = nil
		}
		name, ok := strings.CutPrefix(detail.Message, prefix)
		if !ok {
			continue
		}
		if name, ok = strings.CutSuffix(name, suffix); ok && detail.Location != "" {
			detail.Location += "." + name
			detail.Value = nil
		}
	}
	return model, nil
}

// secretField reports whether the value at location is a password, which
// an error must never echo.
func secretField(location string) bool {
	return strings.HasSuffix(strings.ToLower(location), "password")
}

// maxEchoedValue is the longest string value an error echoes back.
const maxEchoedValue = 200

// shortValue keeps error responses small: huma echoes the offending value,
// which can be a whole request body.
func shortValue(v any) any {
	switch v := v.(type) {
	case string:
		if len(v) > maxEchoedValue {
			return fmt.Sprintf("%s… (%d bytes)", strings.ToValidUTF8(v[:maxEchoedValue], ""), len(v))
		}
		return v
	case map[string]any, []any:
		return nil
	default:
		return v
	}
}

// Register adds every operation to api.
func Register(api huma.API, deps Deps) {
	api.UseMiddleware(authenticate(api, deps.Keys, deps.Sessions, !deps.InsecureCookies, deps.Logger))
	if deps.RateLimit.Limiter != nil {
		api.UseMiddleware(withRateLimit(api, deps.RateLimit, deps.Logger))
	}
	api.UseMiddleware(authorize(api))
	if deps.Audit != nil {
		api.UseMiddleware(withAudit(api))
	}
	if deps.Idempotency != nil {
		api.UseMiddleware(withIdempotency(api, deps.Idempotency, deps.Logger))
	}
	h := &handlers{deps: deps}
	registerHealth(api, h)
	registerTickets(api, h)
	registerMessages(api, h)
	registerAccounts(api, h)
	registerAgents(api, h)
	registerWebhooks(api, h)
	registerWebhookOperations(api, h)
	registerAPIKeys(api, h)
	if deps.Sessions != nil {
		registerAuth(api, h)
	}
	if deps.Audit != nil {
		registerAudit(api, h)
	}
	if deps.SLA != nil {
		registerSLA(api, h)
	}
	if deps.Analytics != nil {
		registerAnalytics(api, h)
	}
}

type handlers struct {
	deps Deps
}

// secured marks op as requiring an API key or a session, and sets the
// shared defaults.
func secured(op huma.Operation) huma.Operation {
	op.Security = []map[string][]string{{securityScheme: {}}, {sessionScheme: {}}}
	op.MaxBodyBytes = maxBodyBytes
	op.Errors = append(op.Errors, http.StatusUnauthorized, http.StatusForbidden, http.StatusUnprocessableEntity, http.StatusTooManyRequests)
	return op
}

// problem maps a domain error to problem details. It is the one place where
// internal errors are logged.
func (h *handlers) problem(ctx context.Context, err error) error {
	var fe *outpost.FieldError
	var ce *outpost.ConflictError
	var nf *outpost.NotFoundError
	switch {
	case errors.As(err, &fe):
		return huma.Error422UnprocessableEntity("validation failed", &huma.ErrorDetail{
			Location: fe.Field, Message: fe.Message, Value: fe.Value,
		})
	case errors.As(err, &ce):
		return huma.Error409Conflict("conflict", &huma.ErrorDetail{
			Location: ce.Field, Message: ce.Message, Value: ce.Value,
		})
	case errors.As(err, &nf):
		return huma.Error404NotFound(nf.Error())
	case errors.Is(err, idempotency.ErrClaimLost):
		return huma.Error409Conflict(err.Error() + "; nothing was created, and the later request's response is stored under the key")
	case errors.Is(err, context.Canceled):
		// The client disconnected, so the response is never read.
		return huma.NewError(499, "request canceled")
	}
	h.deps.Logger.ErrorContext(ctx, "request failed",
		slog.String("request_id", requestID(ctx)),
		slog.String("err", err.Error()))
	msg := "internal error; the server log has the details"
	if id := requestID(ctx); id != "" {
		msg += " under request ID " + id
	}
	return huma.Error500InternalServerError(msg)
}

// Page is one page of a list.
type Page[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"nextCursor" doc:"Opaque cursor of the next page, or null on the last page."`
}

// PageOutput is the response of a list operation.
type PageOutput[T any] struct {
	Body Page[T]
}

func newPage[T any](rows []T, next *string) *PageOutput[T] {
	if rows == nil {
		rows = []T{}
	}
	return &PageOutput[T]{Body: Page[T]{Data: rows, NextCursor: next}}
}

// ListParams are the pagination query parameters of every list.
type ListParams struct {
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"25" doc:"Page size, 1 to 100."`
	Cursor string `query:"cursor" doc:"nextCursor of the previous page; omit for the first page."`
}

// BodyOutput is a response whose body is one record of type T.
type BodyOutput[T any] struct {
	Body T
}

// actor returns the ID of the API key or agent that sent the request.
func actor(ctx context.Context) string {
	if c, ok := callerFrom(ctx); ok {
		return c.id()
	}
	return ""
}
