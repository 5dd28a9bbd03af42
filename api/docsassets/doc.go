// Package docsassets embeds the Stoplight Elements viewer, the npm package
// @stoplight/elements, that the API's /docs page loads. Serving these files
// from the binary lets the page render on hosts without internet access.
// README.md names the source and the update steps.
package docsassets

import "embed"

// Version is the @stoplight/elements release of the files in Files. The docs
// page puts it in the asset URLs, so an update changes every URL and browsers
// stop using the old files from their cache.
const Version = "9.0.15"

// Files contains the viewer script and stylesheet, the package's license and
// the license notices of the libraries bundled into the script.
//
//go:embed web-components.min.js styles.min.css LICENSE web-components.min.js.LICENSE.txt
var Files embed.FS
