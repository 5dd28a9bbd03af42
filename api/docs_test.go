package api_test

import (
	"crypto/sha512"
	"encoding/base64"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api/docsassets"
)

// pinnedDocsAssets are the files the docs page loads, with the sha384
// integrity values that huma v2.37.2's api.go pins for @stoplight/elements
// 9.0.15 on unpkg.com.
var pinnedDocsAssets = []struct {
	file        string
	contentType string
	integrity   string
}{
	{
		file:        "web-components.min.js",
		contentType: "text/javascript; charset=utf-8",
		integrity:   "sha384-xjOcq9PZ/k+pGtPS/xcsCRXGjKKfTlIa4H1IYEnC+97jNa6sAMWTNrV6hY08W3GL",
	},
	{
		file:        "styles.min.css",
		contentType: "text/css; charset=utf-8",
		integrity:   "sha384-iVQBHadsD+eV0M5+ubRCEVXrXEBj+BqcuwjUwPoVJc0Pb1fmrhYSAhL+BFProHdV",
	},
}

// docsAssetsPath is the URL prefix of the viewer files.
const docsAssetsPath = "/docs/assets/" + docsassets.Version + "/"

// sendRequest sends a request with method and header to path on srv and
// returns the response with its body read.
func sendRequest(t *testing.T, srv *httptest.Server, method, path string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
	require.NoError(t, err)
	maps.Copy(req.Header, header)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// parseCSP returns the sources of each directive of a Content-Security-Policy.
func parseCSP(policy string) map[string][]string {
	directives := map[string][]string{}
	for directive := range strings.SplitSeq(policy, ";") {
		fields := strings.Fields(directive)
		if len(fields) > 0 {
			directives[fields[0]] = fields[1:]
		}
	}
	return directives
}

func sriSHA384(content []byte) string {
	sum := sha512.Sum384(content)
	return "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
}

func TestDocsPage(t *testing.T) {
	t.Parallel()
	s := setup(t)
	srv := httptest.NewServer(newHandler(t, s.deps))
	t.Cleanup(srv.Close)

	resp, body := sendRequest(t, srv, http.MethodGet, "/docs", nil)
	page := string(body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", page)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))

	t.Run("content security policy", func(t *testing.T) {
		policy := resp.Header.Get("Content-Security-Policy")
		require.NotEmpty(t, policy)
		directives := parseCSP(policy)
		require.Equal(t, []string{"'none'"}, directives["default-src"])
		require.Equal(t, []string{"'self'"}, directives["script-src"])
		require.Equal(t, []string{"'self'", "'unsafe-inline'"}, directives["style-src"])
		require.Equal(t, []string{"'self'"}, directives["connect-src"])
		require.Equal(t, []string{"'none'"}, directives["frame-ancestors"])
		require.Equal(t, []string{"'none'"}, directives["base-uri"])
		require.Equal(t, []string{"'none'"}, directives["form-action"])
		for name, sources := range directives {
			for _, source := range sources {
				require.NotContains(t, source, ".", "directive %s allows a host", name)
				require.NotContains(t, source, ":", "directive %s allows a scheme or host", name)
			}
		}
	})
	t.Run("title and spec URL", func(t *testing.T) {
		require.Contains(t, page, "<title>Outpost API Reference</title>")
		require.Contains(t, page, `apiDescriptionUrl="/openapi.yaml"`)
		spec, specBody := sendRequest(t, srv, http.MethodGet, "/openapi.yaml", nil)
		require.Equal(t, http.StatusOK, spec.StatusCode)
		require.Contains(t, string(specBody), "openapi: 3.1.0")
	})
	t.Run("only local URLs", func(t *testing.T) {
		require.NotContains(t, page, "unpkg")
		require.NotContains(t, page, "https://")
		require.NotContains(t, page, "http://")
		require.NotContains(t, page, "//", "a protocol-relative URL loads from another host")
	})
	t.Run("referenced assets load", func(t *testing.T) {
		refs := regexp.MustCompile(`<(?:script|link)\b[^>]*\b(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1)
		var urls []string
		for _, ref := range refs {
			urls = append(urls, ref[1])
		}
		require.ElementsMatch(t, []string{
			docsAssetsPath + "web-components.min.js",
			docsAssetsPath + "styles.min.css",
		}, urls)
		for _, u := range urls {
			asset, _ := sendRequest(t, srv, http.MethodGet, u, nil)
			require.Equal(t, http.StatusOK, asset.StatusCode, "GET %s", u)
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		head, headBody := sendRequest(t, srv, http.MethodHead, "/docs", nil)
		require.Equal(t, http.StatusOK, head.StatusCode)
		require.Empty(t, headBody)
		require.Equal(t, resp.Header.Get("Content-Security-Policy"), head.Header.Get("Content-Security-Policy"))
		require.Equal(t, int64(len(body)), head.ContentLength)
	})
}

func TestDocsAssets(t *testing.T) {
	t.Parallel()
	s := setup(t)
	srv := httptest.NewServer(newHandler(t, s.deps))
	t.Cleanup(srv.Close)

	for _, want := range pinnedDocsAssets {
		t.Run(want.file, func(t *testing.T) {
			resp, body := sendRequest(t, srv, http.MethodGet, docsAssetsPath+want.file, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, want.contentType, resp.Header.Get("Content-Type"))
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			require.Equal(t, "public, max-age=31536000, immutable", resp.Header.Get("Cache-Control"))
			require.Equal(t, want.integrity, sriSHA384(body))
			require.Equal(t, int64(len(body)), resp.ContentLength)

			etag := resp.Header.Get("ETag")
			require.Regexp(t, `^"[0-9a-f]+"$`, etag)
			cached, cachedBody := sendRequest(t, srv, http.MethodGet, docsAssetsPath+want.file, http.Header{"If-None-Match": {etag}})
			require.Equal(t, http.StatusNotModified, cached.StatusCode)
			require.Empty(t, cachedBody)

			head, headBody := sendRequest(t, srv, http.MethodHead, docsAssetsPath+want.file, nil)
			require.Equal(t, http.StatusOK, head.StatusCode)
			require.Empty(t, headBody)
			require.Equal(t, want.contentType, head.Header.Get("Content-Type"))
			require.Equal(t, int64(len(body)), head.ContentLength)
		})
	}
	t.Run("license", func(t *testing.T) {
		resp, body := sendRequest(t, srv, http.MethodGet, docsAssetsPath+"LICENSE", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
		require.Contains(t, string(body), "Apache License")
	})
}

func TestDocsRejectsUnknownRequests(t *testing.T) {
	t.Parallel()
	s := setup(t)
	srv := httptest.NewServer(newHandler(t, s.deps))
	t.Cleanup(srv.Close)

	t.Run("unknown paths", func(t *testing.T) {
		for _, path := range []string{
			docsAssetsPath + "missing.js",
			docsAssetsPath + "doc.go",
			docsAssetsPath + "README.md",
			docsAssetsPath,
			docsAssetsPath + "web-components.min.js/extra",
			"/docs/assets/web-components.min.js",
			"/docs/assets/0.0.0/web-components.min.js",
			"/docs/",
		} {
			resp, _ := sendRequest(t, srv, http.MethodGet, path, nil)
			require.Equal(t, http.StatusNotFound, resp.StatusCode, "GET %s", path)
		}
	})
	t.Run("other methods", func(t *testing.T) {
		for _, path := range []string{"/docs", docsAssetsPath + "web-components.min.js"} {
			for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
				resp, _ := sendRequest(t, srv, method, path, nil)
				require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", method, path)
				require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"), "%s %s", method, path)
			}
		}
	})
}
