package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/internal/testenv"
)

const (
	// browserTestTimeout bounds the whole browser test, from the start of
	// Chromium to the last screenshot.
	browserTestTimeout = 2 * time.Minute
	// renderTimeout bounds each wait for a page to show its content.
	renderTimeout = 30 * time.Second
	// browserTestPassword is the password of both agents that the test
	// creates.
	browserTestPassword = "correct horse battery staple"
)

// chromiumBinaries are the names under which Linux distributions and Google
// ship Chromium, in the order the test looks them up on PATH.
var chromiumBinaries = []string{"chromium", "chromium-browser", "google-chrome"}

// TestBrowserSignInMonitoringAndDocs drives headless Chromium through the
// sign-in page, the admin-only queue monitor and the API docs of a running
// `outpost dev`.
func TestBrowserSignInMonitoringAndDocs(t *testing.T) {
	t.Parallel()
	execPath := findChromium(t)
	p := startDev(t, "e2e_browser", testenv.RedisURL(t, 14))
	// The database outlives one run of the test under -count, so the email
	// addresses, which must be unique, differ between runs.
	suffix := strings.ToLower(rand.Text()[:8])
	admin := "ada-" + suffix + "@support.example"
	viewer := "vic-" + suffix + "@support.example"
	createAgent(t, p, admin, "admin")
	createAgent(t, p, viewer, "viewer")

	ctx, cancel := context.WithTimeout(context.Background(), browserTestTimeout)
	defer cancel()
	b := startBrowser(t, ctx, execPath, p.baseURL)
	shots := screenshotDir(t)

	// Signed out, the monitor rejects the request with a page that links
	// to the sign-in page, and asynqmon does not load.
	resp := b.navigate(t, "/monitoring/")
	require.EqualValues(t, 401, resp.Status, "signed-out GET /monitoring/")
	b.waitForText(t, "Unauthorized", "Sign in")
	require.Equal(t, "Unauthorized · Outpost", b.title(t))
	require.False(t, b.evaluateBool(t, `document.getElementById("root") !== null`),
		"the 401 page contains asynqmon's #root element")
	require.Empty(t, b.responsesSince(0, "/monitoring/static/"), "asynqmon's bundle loaded without a session")
	b.screenshot(t, shots, "monitoring-401.png")

	signIn := b.attribute(t, `//a[text()="Sign in"]`, "href")
	require.Equal(t, "/signin?next=%2Fmonitoring%2F", signIn)
	resp = b.click(t, `//a[text()="Sign in"]`)
	require.EqualValues(t, 200, resp.Status, "GET %s", signIn)
	require.Equal(t, p.baseURL+signIn, b.location(t))
	b.waitForText(t, "Email", "Password", "Sign in")
	b.screenshot(t, shots, "signin.png")

	// A viewer signs in through the form and is sent to the monitor, which
	// is for admins only.
	resp = b.submitSignIn(t, viewer)
	require.EqualValues(t, 403, resp.Status, "GET /monitoring/ as a viewer")
	require.Equal(t, p.baseURL+"/monitoring/", b.location(t))
	b.waitForText(t, "Forbidden", "role viewer")
	require.Equal(t, "Forbidden · Outpost", b.title(t))
	b.screenshot(t, shots, "monitoring-403.png")
	cookie := b.sessionCookie(t)
	require.NotNil(t, cookie, "no %s cookie after signing in", api.SessionCookie)
	require.True(t, cookie.HTTPOnly, "session cookie without HttpOnly")
	require.Equal(t, network.CookieSameSiteLax, cookie.SameSite)
	require.False(t, cookie.Secure, "dev sends the session cookie without Secure over plain HTTP")

	// Signing out with the session's CSRF token ends the session and
	// deletes the cookie.
	status := b.signOut(t)
	require.Equal(t, signOutStatus{Me: 200, Logout: 204, MeAfter: 401}, status)
	require.Nil(t, b.sessionCookie(t), "session cookie left after signing out")

	// The page opened after sign-in stays on this server, however the
	// next parameter is written: browsers drop tabs and line breaks from
	// a URL, which turns "/<tab>/host" into "//host".
	for next, want := range map[string]string{
		"/monitoring/?tab=1":    "/monitoring/?tab=1",
		"//evil.example/":       "/docs",
		"/\t/evil.example/":     "/docs",
		"/\n/evil.example/":     "/docs",
		"/%09/evil.example/":    "/%09/evil.example/",
		"/%5Cevil.example/":     "/%5Cevil.example/",
		"https://evil.example/": "/docs",
		"/.//evil.example":      "/docs",
		"/..//evil.example/x":   "/docs",
		"/a/..//evil.example":   "/docs",
		"/%2e//evil.example":    "/docs",
		"javascript:alert(1)":   "/docs",
	} {
		b.navigate(t, "/signin?next="+url.QueryEscape(next))
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`nextPath()`))
		require.NoError(t, err)
		require.Equal(t, want, got, "next=%q", next)
	}

	// An admin signs in on the page that the 401 page links to and gets
	// asynqmon, whose bundle and JSON API load through the session check.
	resp = b.navigate(t, "/signin?next=/monitoring/")
	require.EqualValues(t, 200, resp.Status, "GET /signin")
	mark := b.mark()
	resp = b.submitSignIn(t, admin)
	require.EqualValues(t, 200, resp.Status, "GET /monitoring/ as an admin")
	require.Equal(t, p.baseURL+"/monitoring/", b.location(t))
	// asynqmon's dashboard lists the queues that exist in Redis. The
	// scheduler enqueues the outbox relay on the maintenance queue every
	// second under startDev, so that queue exists when the dashboard
	// loads, or at the latest when the dashboard refreshes.
	b.waitForText(t, "Queues", "maintenance")
	require.Equal(t, "Asynq - Monitoring", b.title(t))
	require.NotEmpty(t, b.responsesSince(mark, "/monitoring/static/js/"), "asynqmon's bundle was not requested")
	require.NotEmpty(t, b.responsesSince(mark, "/monitoring/api/queues"), "asynqmon did not call its queue API")
	b.requireNoErrorResponses(t, mark, "/monitoring/")
	b.screenshot(t, shots, "monitoring.png")

	// The docs page renders the OpenAPI document with the embedded
	// Stoplight Elements files. Its sidebar shows the operations of a tag
	// once the tag is opened, and an operation's page once it is clicked.
	mark = b.mark()
	resp = b.navigate(t, "/docs")
	require.EqualValues(t, 200, resp.Status, "GET /docs")
	b.waitForText(t, "Outpost API", "Tickets", "Webhooks")
	b.clickInPage(t, `//*[normalize-space(text())="Tickets"]`)
	b.waitForText(t, "List tickets", "Create a ticket")
	b.clickInPage(t, `//*[normalize-space(text())="List tickets"]`)
	b.waitForText(t, "/api/tickets", "Request", "Response")
	require.NotEmpty(t, b.responsesSince(mark, "/openapi.yaml"), "the docs page did not fetch /openapi.yaml")
	b.requireNoErrorResponses(t, mark, "/docs", "/openapi")
	b.screenshot(t, shots, "docs.png")
}

// findChromium returns the path of a Chromium binary. Without one it skips
// the test, or fails it when the CI variable is set, because CI must run it.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range chromiumBinaries {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	msg := fmt.Sprintf("none of %s is on PATH; install Debian's chromium package "+
		"(apt-get install chromium) to run the browser test", strings.Join(chromiumBinaries, ", "))
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// createAgent creates an agent with role and browserTestPassword through
// `outpost agent create`.
func createAgent(t *testing.T, p *outpostProcess, email, role string) {
	t.Helper()
	getenv := func(k string) string {
		if k == passwordEnv {
			return browserTestPassword
		}
		return p.getenv(k)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"agent", "create", "--email", email, "--role", role}
	err := run(context.Background(), args, getenv, nil, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	require.Contains(t, stdout.String(), "role "+role)
}

// screenshotDir returns the directory for the test's screenshots:
// OUTPOST_TEST_SCREENSHOT_DIR when it is set, so that they outlive the
// test, and a temporary directory otherwise.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("OUTPOST_TEST_SCREENSHOT_DIR")
	if dir == "" {
		return t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// browser is one headless Chromium tab with a record of the responses it
// received and the console messages it logged.
type browser struct {
	ctx     context.Context
	baseURL string

	mu        sync.Mutex
	responses []*network.Response
	console   []string
}

// startBrowser starts headless Chromium at execPath and opens a tab on
// about:blank. Chromium stops when ctx ends or the test ends. When the test
// fails, its log shows Chromium's output and the tab's console messages.
func startBrowser(t *testing.T, ctx context.Context, execPath, baseURL string) *browser {
	t.Helper()
	var output lockedBuffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// The next four flags keep Chromium from trying QUIC and from
		// contacting Google's servers in the background, for component
		// updates and sync among others.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(&output),
	)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	b := &browser{ctx: tabCtx, baseURL: baseURL}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		if t.Failed() {
			b.mu.Lock()
			t.Logf("console messages:\n%s", strings.Join(b.console, "\n"))
			b.mu.Unlock()
			t.Logf("Chromium output:\n%s", output.String())
		}
	})

	// The first action starts Chromium and opens the tab, which the event
	// subscriptions below need.
	require.NoError(t, chromedp.Do(tabCtx), "start Chromium at %s", execPath)
	responses := chromedp.Events(tabCtx, network.ResponseReceived)
	go func() {
		for ev, err := range responses {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.responses = append(b.responses, ev.Response)
			b.mu.Unlock()
		}
	}()
	console := chromedp.Console(tabCtx)
	go func() {
		for msg, err := range console {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, msg.String())
			b.mu.Unlock()
		}
	}()
	return b
}

// navigate opens path on the server and returns the response of the HTML
// document after the page has loaded.
func (b *browser) navigate(t *testing.T, path string) *network.Response {
	t.Helper()
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(b.baseURL+path))
	require.NoError(t, err, "navigate to %s", path)
	require.NotNil(t, resp, "no response for %s", path)
	return resp
}

// click clicks the element that selector finds and returns the response of
// the page that the click opens.
func (b *browser) click(t *testing.T, selector string) *network.Response {
	t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(selector))
	require.NoError(t, err, "click %s", selector)
	require.NotNil(t, resp, "clicking %s opened no page", selector)
	return resp
}

// clickInPage clicks the element that selector finds, for clicks that
// change the page without opening another one.
func (b *browser) clickInPage(t *testing.T, selector string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, renderTimeout)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(selector)), "click %s", selector)
}

// submitSignIn fills the sign-in form with email and browserTestPassword,
// submits it and returns the response of the page that the form opens.
func (b *browser) submitSignIn(t *testing.T, email string) *network.Response {
	t.Helper()
	require.NoError(t, chromedp.Do(b.ctx,
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), browserTestPassword),
	), "fill the sign-in form")
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.ID("submit")))
	if err != nil || resp == nil {
		formError, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById("error")?.textContent ?? ""`))
		require.NoError(t, err, "submit the sign-in form as %s; #error shows %q", email, formError)
		require.NotNil(t, resp, "signing in as %s opened no page; #error shows %q", email, formError)
	}
	return resp
}

// signOutStatus contains the HTTP status codes of the requests that signOut
// sends.
type signOutStatus struct {
	Me      int `json:"me"`
	Logout  int `json:"logout"`
	MeAfter int `json:"meAfter"`
}

// signOut signs out with fetch from the current page, as a page script
// would: it reads the CSRF token from GET /api/auth/me and sends it with
// POST /api/auth/logout.
func (b *browser) signOut(t *testing.T) signOutStatus {
	t.Helper()
	const script = `(async () => {
		const me = await fetch("/api/auth/me");
		const session = await me.json();
		const logout = await fetch("/api/auth/logout", {
			method: "POST",
			headers: { "X-CSRF-Token": session.csrfToken ?? "" },
		});
		const after = await fetch("/api/auth/me");
		return { me: me.status, logout: logout.status, meAfter: after.status };
	})()`
	status, err := chromedp.Run(b.ctx, chromedp.Evaluate[signOutStatus](script, chromedp.EvalAwaitPromise))
	require.NoError(t, err, "sign out")
	return status
}

// sessionCookie returns the browser's session cookie for the server, or nil
// when there is none.
func (b *browser) sessionCookie(t *testing.T) *network.Cookie {
	t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.baseURL}})
	require.NoError(t, err, "read cookies")
	for _, c := range res.Cookies {
		if c.Name == api.SessionCookie {
			return c
		}
	}
	return nil
}

// waitForText waits until the rendered text of the page contains every one
// of texts, and fails the test with the text it last saw after
// renderTimeout.
func (b *browser) waitForText(t *testing.T, texts ...string) {
	t.Helper()
	// The context ends the poll only if the page hangs and never returns
	// from it.
	ctx, cancel := context.WithTimeout(b.ctx, renderTimeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.PollFunction[bool](
		`(texts) => document.body !== null && texts.every((text) => document.body.innerText.includes(text))`,
		chromedp.WithPollingArgs(texts),
		chromedp.WithPollingInterval(100*time.Millisecond),
		chromedp.WithPollingTimeout(renderTimeout),
	))
	if err == nil {
		return
	}
	location, _ := chromedp.Run(b.ctx, chromedp.Location())
	text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	t.Fatalf("%s did not show %q within %s: %v; its text:\n%s", location, texts, renderTimeout, err, text)
}

// evaluateBool returns the value of a JavaScript expression in the page.
func (b *browser) evaluateBool(t *testing.T, expression string) bool {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expression))
	require.NoError(t, err, "evaluate %s", expression)
	return v
}

func (b *browser) title(t *testing.T) string {
	t.Helper()
	title, err := chromedp.Run(b.ctx, chromedp.Title())
	require.NoError(t, err, "read the page title")
	return title
}

func (b *browser) location(t *testing.T) string {
	t.Helper()
	location, err := chromedp.Run(b.ctx, chromedp.Location())
	require.NoError(t, err, "read the page location")
	return location
}

// attribute returns the value of the attribute name of the first element
// that selector finds, waiting up to renderTimeout for one to appear.
func (b *browser) attribute(t *testing.T, selector, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, renderTimeout)
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.AttributeValue(selector, name))
	require.NoError(t, err, "read %s of %s", name, selector)
	require.True(t, res.Exists, "%s has no %s attribute", selector, name)
	return res.Value
}

// screenshot saves a PNG of the visible part of the page as dir/name.
func (b *browser) screenshot(t *testing.T, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err, "capture %s", name)
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

// requireNoErrorResponses fails the test when a response recorded after
// mark, for a path that starts with one of pathPrefixes, has a status of
// 400 or more.
func (b *browser) requireNoErrorResponses(t *testing.T, mark int, pathPrefixes ...string) {
	t.Helper()
	for _, prefix := range pathPrefixes {
		for _, r := range b.responsesSince(mark, prefix) {
			require.Less(t, r.Status, int64(400), "%s answered %d", r.URL, r.Status)
		}
	}
}

// mark returns the number of responses recorded so far, for responsesSince.
func (b *browser) mark() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.responses)
}

// responsesSince returns the responses from the server, recorded after
// mark, whose URL path starts with pathPrefix.
func (b *browser) responsesSince(mark int, pathPrefix string) []*network.Response {
	b.mu.Lock()
	defer b.mu.Unlock()
	var matched []*network.Response
	for _, r := range b.responses[mark:] {
		u, err := url.Parse(r.URL)
		if err != nil || !strings.HasPrefix(r.URL, b.baseURL+"/") {
			continue
		}
		if strings.HasPrefix(u.Path, pathPrefix) {
			matched = append(matched, r)
		}
	}
	return matched
}
