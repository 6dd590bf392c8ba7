// Package cli owns hookgate's commands: serve (flags, logger, signals, then the gateway),
// check, send, rollback, pin, unpin, logs, db copy and version, and the dispatch to them.
package cli

import (
	"fmt"
	"io"
)

const usage = `hookgate: a GitHub webhook deploy gateway

Usage:
  hookgate [serve] [--config config.toml] [--log-format text|json] [--log-level info]
                                            run the gateway
  hookgate check [--config config.toml]     validate the config and each repository's checkout
  hookgate send NAME [--event push|ping] [--ref REF] [--url URL] [--config config.toml]
                                            sign and send a test delivery to a running gateway
                                            (a tag target's push: origin's newest matching tag)
  hookgate rollback NAME [COMMIT] [--config config.toml] [--no-wait]
                                            roll back to COMMIT (default: the one before the
                                            live one) and pin there, through the running gateway;
                                            a tag target also takes a tag it deployed (v1.0.0)
  hookgate pin NAME [COMMIT] [--config config.toml]
                                            hold NAME at COMMIT (default: live); pushes are ignored
  hookgate unpin NAME [--config config.toml] [--no-wait]
                                            lift the pin and deploy origin's head if it is not live
  hookgate logs NAME [--follow] [--deploy ID] [--config config.toml]
                                            print the newest deploy's output (or deploy ID's);
                                            --follow prints it as it is written, until the end
  hookgate db copy --from FILE (--to URL | --to-env VAR)
                                            copy a SQLite history into a new PostgreSQL database
  hookgate version                          print the version, commit and Go version
`

// Run runs the command args names (serve when it names none) and returns the exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		cmd = "help" // the commands, not only serve's flags
	}
	switch cmd {
	case "serve":
		return cmdServe(args, stderr)
	case "check":
		return cmdCheck(args, stdout, stderr)
	case "send":
		return cmdSend(args, stdout, stderr)
	case "rollback":
		return cmdRollback(args, stdout, stderr)
	case "pin":
		return cmdPin(args, stdout, stderr)
	case "unpin":
		return cmdUnpin(args, stdout, stderr)
	case "logs":
		return cmdLogs(args, stdout, stderr)
	case "version":
		return cmdVersion(args, stdout, stderr)
	case "db":
		return cmdDB(args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "hookgate: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}
