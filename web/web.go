// Package web holds the operators' history page: its html/template files and the static
// files it links. They are embedded, so the binary is the whole deployment; the server
// parses the templates once at start.
package web

import "embed"

// FS holds templates/*.html and static/* (style.css, live.js).
//
//go:embed templates static
var FS embed.FS
