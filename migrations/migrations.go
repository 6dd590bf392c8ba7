// Package migrations holds hookgate's schema as numbered SQL files, embedded so the binary
// carries them; store applies them with goose at start-up.
package migrations

import "embed"

// FS holds the *.sql migration files in goose's format.
//
//go:embed *.sql
var FS embed.FS
