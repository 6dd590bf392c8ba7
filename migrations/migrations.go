// Package migrations holds hookgate's schema as numbered SQL files, embedded so the binary
// carries them; store applies them with goose at start-up. Each SQLite file (in this folder)
// has a PostgreSQL copy of the same number in postgres/: a new migration adds both.
package migrations

import (
	"embed"
	"io/fs"
)

// FS holds the SQLite *.sql migration files in goose's format.
//
//go:embed *.sql
var FS embed.FS

//go:embed postgres/*.sql
var postgresFS embed.FS

// Postgres holds the PostgreSQL migration files, numbered as FS's.
var Postgres = func() fs.FS {
	sub, err := fs.Sub(postgresFS, "postgres")
	if err != nil {
		panic(err)
	}
	return sub
}()
