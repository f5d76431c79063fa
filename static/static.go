// Package static holds the stylesheet, script and icons of the web pages, embedded
// in the binary so nothing is read from disk (or a CDN) at runtime.
package static

import "embed"

// FS holds the static files under their folder names (css/app.css,
// js/localtime.js, img/favicon.svg). web serves it under /static/. The pages link to the files
// with views.StaticVersion as a query string, so a long cache lifetime is
// safe: the URL changes whenever the content does.
//
//go:embed css img js
var FS embed.FS
