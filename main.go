// Command hookgate is a self-hosted GitHub webhook deploy gateway: it verifies each
// delivery's signature, records it in SQLite or PostgreSQL, and deploys the pushed branch of each
// configured repository, one deploy at a time per repository.
package main

import (
	"os"

	"github.com/hookgate/hookgate/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
