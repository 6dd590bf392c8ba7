// Command hookgate is a self-hosted GitHub webhook deploy gateway: it verifies each
// delivery's signature, records it in SQLite or PostgreSQL, and deploys the pushed branch of each
// configured repository, one deploy at a time per repository.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/hookgate/hookgate/config"
	"github.com/hookgate/hookgate/gateway"
)

const usage = `hookgate: a GitHub webhook deploy gateway

Usage:
  hookgate [serve] [--config config.toml] [--log-format text|json] [--log-level info]
                                            run the gateway
  hookgate check [--config config.toml]     validate the config and each repository's checkout
  hookgate send NAME [--event push|ping] [--url URL] [--config config.toml]
                                            sign and send a test delivery to a running gateway
  hookgate rollback NAME [COMMIT] [--config config.toml] [--no-wait]
                                            roll back to COMMIT (default: the one before the
                                            live one) and pin there, through the running gateway
  hookgate pin NAME [COMMIT] [--config config.toml]
                                            hold NAME at COMMIT (default: live); pushes are ignored
  hookgate unpin NAME [--config config.toml] [--no-wait]
                                            lift the pin and deploy origin's head if it is not live
  hookgate db copy --from FILE (--to URL | --to-env VAR)
                                            copy a SQLite history into a new PostgreSQL database
  hookgate version                          print the version, commit and Go version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
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

func cmdServe(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.toml", "path to the configuration file")
	logFormat := fs.String("log-format", "text", "log format: text or json (one JSON object per line)")
	logLevel := fs.String("log-level", "info", "least severe log level shown: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate serve: %v\n", err)
		return 2
	}
	if err := setNonDumpable(); err != nil {
		logger.Error("cannot keep other processes out of the gateway's memory and environment (prctl PR_SET_DUMPABLE)", "err", err)
		return 1
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		logger.Error("invalid configuration", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP (`systemctl reload`) reloads the configuration. It is caught from here on, so
	// one that comes during start-up waits for serve instead of ending the gateway.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g, err := gateway.New(ctx, cfg, gateway.Options{ConfigPath: *configPath, Logger: logger, Version: buildVersion()})
	if err == nil {
		err = g.Run(ctx, hup)
	}
	if err != nil {
		logger.Error("hookgate stopped", "err", err)
		return 1
	}
	return 0
}

// newLogger builds the gateway's logger: text (logfmt-like) for a terminal, json for a log
// collector; level is the least severe level written.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	lv, ok := map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
	}[level]
	if !ok {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: use text or json", format)
	}
}

// buildVersion is the module version and, when known, the commit, for the nodes listing.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "unknown"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v
}
