// serve.go owns `hookgate serve`: its flags, the logger, the process and signal set-up,
// then the gateway's New and Run.

package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/hookgate/hookgate/config"
	"github.com/hookgate/hookgate/gateway"
)

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
