package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"html"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/outposthq/outpost/api/docsassets"
)

// docsAssetsPath is the URL prefix of the embedded viewer files. It contains
// the Elements version, so the files can be cached as immutable.
const docsAssetsPath = "/docs/assets/" + docsassets.Version + "/"

// docsContentSecurityPolicy is huma v2.37.2's policy for its Stoplight
// Elements page with 'self' in place of the unpkg.com URLs. style-src needs
// 'unsafe-inline' because the page sets a style attribute and Elements adds
// <style> elements at run time.
var docsContentSecurityPolicy = strings.Join([]string{
	"default-src 'none'",
	"base-uri 'none'",
	"connect-src 'self'",
	"form-action 'none'",
	"frame-ancestors 'none'",
	"sandbox allow-same-origin allow-scripts",
	"script-src 'self'",
	"style-src 'self' 'unsafe-inline'",
}, "; ")

// docsAsset is one embedded viewer file with its response headers.
type docsAsset struct {
	content     []byte
	contentType string
	etag        string
}

// registerDocs serves the API reference page at /docs and the viewer files
// it loads under docsAssetsPath, all from the binary. It replaces huma's
// docs route, which loads the viewer from unpkg.com.
func registerDocs(mux *http.ServeMux) {
	cfg := Config()
	page := docsPage(cfg.Info.Title+" Reference", cfg.OpenAPIPath+".yaml")
	assets := loadDocsAssets()

	// A GET pattern also matches HEAD, and ServeMux replies to other methods
	// with 405 and an Allow header.
	mux.HandleFunc("GET /docs", func(w http.ResponseWriter, r *http.Request) {
		header := w.Header()
		header.Set("Content-Type", "text/html; charset=utf-8")
		header.Set("Content-Security-Policy", docsContentSecurityPolicy)
		header.Set("X-Content-Type-Options", "nosniff")
		// Revalidate, so that browsers load the page of a new release,
		// which names the new asset URLs.
		header.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(page))
	})
	mux.HandleFunc("GET "+docsAssetsPath+"{file}", func(w http.ResponseWriter, r *http.Request) {
		asset, ok := assets[r.PathValue("file")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		header := w.Header()
		header.Set("Content-Type", asset.contentType)
		header.Set("X-Content-Type-Options", "nosniff")
		header.Set("Cache-Control", "public, max-age=31536000, immutable")
		header.Set("ETag", asset.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(asset.content))
	})
}

// docsPage returns the HTML of the reference page: huma v2.37.2's Stoplight
// Elements page with the script and stylesheet URLs under docsAssetsPath.
func docsPage(title, specPath string) []byte {
	return []byte(`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="referrer" content="no-referrer">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>` + html.EscapeString(title) + `</title>
    <link rel="stylesheet" href="` + docsAssetsPath + `styles.min.css">
    <script src="` + docsAssetsPath + `web-components.min.js"></script>
  </head>
  <body style="height: 100vh;">
    <elements-api
      apiDescriptionUrl="` + html.EscapeString(specPath) + `"
      router="hash"
      layout="sidebar"
      tryItCredentialsPolicy="same-origin"
    ></elements-api>
  </body>
</html>
`)
}

// loadDocsAssets reads every file of docsassets.Files once per process and
// returns them by file name.
var loadDocsAssets = sync.OnceValue(func() map[string]docsAsset {
	entries, err := fs.ReadDir(docsassets.Files, ".")
	if err != nil {
		panic("read embedded docs assets: " + err.Error())
	}
	assets := make(map[string]docsAsset, len(entries))
	for _, entry := range entries {
		content, err := docsassets.Files.ReadFile(entry.Name())
		if err != nil {
			panic("read embedded docs asset " + entry.Name() + ": " + err.Error())
		}
		sum := sha256.Sum256(content)
		assets[entry.Name()] = docsAsset{
			content:     content,
			contentType: docsAssetType(entry.Name()),
			etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
		}
	}
	return assets
})

// docsAssetType returns the Content-Type of an embedded file. It is set
// here, not looked up with mime.TypeByExtension, because that function also
// reads the host's MIME tables, which differ between systems.
func docsAssetType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".txt", "":
		// LICENSE and the bundled libraries' license notices.
		return "text/plain; charset=utf-8"
	default:
		return "application/octet-stream"
	}
}
