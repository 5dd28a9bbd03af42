package api

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost/auth"
	"github.com/outposthq/outpost/models"
)

//go:embed signin
var signinFiles embed.FS

// MonitoringPath is the path of the queue UI.
const MonitoringPath = "/monitoring"

// pageSecurityPolicy is the Content-Security-Policy of the sign-in page and
// of rejection pages: their own scripts and styles only, and no framing.
const pageSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// registerPages adds the sign-in page and, when deps.Monitoring is set, the
// queue UI behind an admin session. Only the UI's web app manifest is
// served without a session.
func registerPages(mux *http.ServeMux, deps Deps, protection *http.CrossOriginProtection) {
	files := http.FileServerFS(signinFiles)
	mux.HandleFunc("GET /signin", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", pageSecurityPolicy)
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, signinFiles, "signin/signin.html")
	})
	mux.HandleFunc("GET /signin/{file}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("file") {
		case "signin.js", "signin.css":
			w.Header().Set("X-Content-Type-Options", "nosniff")
			files.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
	if deps.Monitoring == nil {
		return
	}
	mux.Handle("GET "+MonitoringPath, http.RedirectHandler(MonitoringPath+"/", http.StatusMovedPermanently))
	mux.Handle(MonitoringPath+"/", adminOnly(deps, protection, deps.Monitoring))
	// Browsers fetch a web app manifest without cookies unless its <link>
	// has crossorigin="use-credentials", which asynqmon's page lacks, so
	// the session check would reject every fetch of it with 401. The file
	// contains only asynqmon's app name, icon paths and colors.
	mux.Handle("GET "+MonitoringPath+"/manifest.json", deps.Monitoring)
}

// adminOnly serves next only to admins signed in with a session cookie.
// Others get 401 or 403: an HTML page that links to the sign-in page when
// the request accepts HTML, problem details otherwise. Requests that change
// state must also come from one of this server's pages, which browsers
// mark with Origin or Sec-Fetch-Site. The Authorization header is ignored
// here, so the cross-origin check is repeated.
func adminOnly(deps Deps, protection *http.CrossOriginProtection, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cookie, err := r.Cookie(sessionCookieName(!deps.InsecureCookies))
		if err != nil {
			detail := "sign in as an admin to open the queue monitor"
			if r.Header.Get("Authorization") != "" {
				detail += "; it takes a signed-in session, not an API key"
			}
			reject(w, r, http.StatusUnauthorized, detail)
			return
		}
		cur, err := deps.Sessions.Authenticate(r.Context(), cookie.Value)
		if errors.Is(err, auth.ErrInvalidSession) {
			reject(w, r, http.StatusUnauthorized, "your session has expired or was ended; sign in again as an admin")
			return
		}
		if err != nil {
			deps.Logger.ErrorContext(r.Context(), "authenticate request",
				slog.String("request_id", requestID(r.Context())), slog.String("err", err.Error()))
			reject(w, r, http.StatusServiceUnavailable, "authentication is unavailable; retry shortly")
			return
		}
		if cur.Agent.Role != models.RoleAdmin {
			reject(w, r, http.StatusForbidden, "the queue monitor is for admins; your agent account has role "+string(cur.Agent.Role))
			return
		}
		if !safeMethod(r.Method) {
			if r.Header.Get("Origin") == "" && r.Header.Get("Sec-Fetch-Site") == "" {
				reject(w, r, http.StatusForbidden, "changes through the queue monitor must come from its pages in a browser")
				return
			}
			if err := protection.Check(r); err != nil {
				reject(w, r, http.StatusForbidden, crossOriginRejection)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
		w.Header().Set("X-Frame-Options", "DENY")
		// The queue UI reports failures as plain text: 4xx with its own
		// status, 500 for anything else, such as a Redis error.
		pw := &problemWriter{ResponseWriter: w, replace: func(status int) bool {
			return status >= 400 && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain")
		}}
		next.ServeHTTP(pw, r)
		status := pw.status
		if pw.replaced {
			message := strings.TrimSpace(pw.body.String())
			var detail string
			status, detail = monitorFailure(pw.status, message, requestID(r.Context()))
			if status >= 500 {
				deps.Logger.ErrorContext(r.Context(), "queue monitor request failed",
					slog.String("request_id", requestID(r.Context())),
					slog.String("agent_id", cur.Agent.ID),
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.String("err", message))
			}
			writeProblem(w, status, detail)
		}
		if !safeMethod(r.Method) {
			deps.Logger.InfoContext(r.Context(), "queue monitor change",
				slog.String("request_id", requestID(r.Context())),
				slog.String("agent_id", cur.Agent.ID),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status))
		}
	})
}

// monitorFailure returns the status and detail of the problem that
// replaces a plain-text failure of the queue UI with status and message.
// A 4xx keeps its status and message. For a 500, a missing task or queue
// is 404, a change that the state does not allow is 409, and an
// unreachable Redis is 503; other failures stay 500, with the message left
// to the log.
func monitorFailure(status int, message, requestID string) (int, string) {
	if status < 500 {
		return status, message
	}
	lower := strings.ToLower(message)
	switch {
	case strings.Contains(lower, "not found") || strings.Contains(lower, "not_found") ||
		strings.Contains(lower, "does not exist"):
		return http.StatusNotFound, message
	case strings.Contains(lower, "already") || strings.Contains(lower, "cannot") ||
		strings.Contains(lower, "is not paused") || strings.Contains(lower, "not empty"):
		return http.StatusConflict, message
	case strings.Contains(lower, "dial tcp") || strings.Contains(lower, "connection refused") ||
		strings.Contains(lower, "i/o timeout") || strings.Contains(lower, "connection reset") ||
		strings.Contains(lower, "eof"):
		return http.StatusServiceUnavailable, "the queue monitor cannot reach Redis; the server log has the details under request ID " + requestID
	}
	return http.StatusInternalServerError, "the queue monitor failed; the server log has the details under request ID " + requestID
}

// problemWriter keeps back a response whose status replace selects, so
// that the caller can write problem details in its place. It keeps the
// first 4 KiB of the held-back body.
type problemWriter struct {
	http.ResponseWriter
	replace  func(status int) bool
	status   int
	replaced bool
	body     bytes.Buffer
}

func (w *problemWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	w.status = status
	if w.replace(status) {
		w.replaced = true
		return
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *problemWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		if room := 4096 - w.body.Len(); room > 0 {
			w.body.Write(p[:min(len(p), room)])
		}
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *problemWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withAPIResponses marks every response under /api/ Cache-Control:
// no-store, because they carry customer data and secrets, and writes
// problem details in place of the router's plain-text 404 and 405
// responses there, which clients of the API expect to parse.
func withAPIResponses(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		pw := &problemWriter{ResponseWriter: w, replace: func(status int) bool {
			return (status == http.StatusNotFound || status == http.StatusMethodNotAllowed) &&
				strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain")
		}}
		next.ServeHTTP(pw, r)
		if !pw.replaced {
			return
		}
		if pw.status == http.StatusMethodNotAllowed {
			detail := fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path)
			if allow := w.Header().Get("Allow"); allow != "" {
				detail += "; use " + strings.ReplaceAll(allow, ", ", " or ")
			}
			writeProblem(w, pw.status, detail)
			return
		}
		writeProblem(w, pw.status, fmt.Sprintf("no operation at %s %s; /docs lists the API's operations", r.Method, r.URL.Path))
	})
}

var rejectionPage = template.Must(template.New("rejection").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Title}} · Outpost</title><link rel="stylesheet" href="/signin/signin.css"></head>
<body><main><h1>{{.Title}}</h1><p>{{.Detail}}</p><p><a href="{{.SignIn}}">Sign in</a></p></main></body>
</html>
`))

// reject writes an HTML page linking to the sign-in page for a request that
// accepts HTML, and problem details for any other request.
func reject(w http.ResponseWriter, r *http.Request, status int, detail string) {
	w.Header().Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", pageSecurityPolicy)
		w.WriteHeader(status)
		_ = rejectionPage.Execute(w, map[string]string{
			"Title":  http.StatusText(status),
			"Detail": detail,
			"SignIn": "/signin?next=" + url.QueryEscape(r.URL.RequestURI()),
		})
		return
	}
	writeProblem(w, status, detail)
}

// writeProblem writes problem details outside huma, in the same shape.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(&huma.ErrorModel{
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
	})
}

// crossOriginRejection is the detail of a rejected cross-origin request.
const crossOriginRejection = "cross-origin request rejected: a browser request that changes data or signs in must come " +
	"from this server's own pages, or from an origin listed in OUTPOST_TRUSTED_ORIGINS"

// newCrossOriginProtection returns Go's check of the Sec-Fetch-Site and
// Origin headers, which also accepts trustedOrigins.
func newCrossOriginProtection(trustedOrigins []string) (*http.CrossOriginProtection, error) {
	protection := http.NewCrossOriginProtection()
	for _, origin := range trustedOrigins {
		if err := protection.AddTrustedOrigin(origin); err != nil {
			return nil, err
		}
	}
	return protection, nil
}

// withCrossOriginCheck rejects state-changing requests that a browser sent
// from another origin. It protects the session cookie, so requests with an
// Authorization header skip it: browsers never add that header on their
// own. adminOnly checks the queue UI's requests itself.
func withCrossOriginCheck(next http.Handler, protection *http.CrossOriginProtection) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			if err := protection.Check(r); err != nil {
				writeProblem(w, http.StatusForbidden, crossOriginRejection)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
