// Command hookgate is a self-hosted GitHub webhook deploy gateway: it verifies each
// delivery's signature, records it in SQLite, and deploys the pushed branch of each
// configured repository, one deploy at a time per repository.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hookgate/hookgate/repos"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

const usage = `hookgate: a GitHub webhook deploy gateway

Usage:
  hookgate [serve] [--config config.toml] [--log-format text|json] [--log-level info]
                                            run the gateway
  hookgate check [--config config.toml]     validate the config and each repository's checkout
  hookgate send NAME [--event push|ping] [--url URL] [--config config.toml]
                                            sign and send a test delivery to a running gateway
  hookgate version                          print the version, commit and Go version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return cmdServe(args, stderr)
	case "check":
		return cmdCheck(args, stdout, stderr)
	case "send":
		return cmdSend(args, stdout, stderr)
	case "version":
		return cmdVersion(args, stdout, stderr)
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
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		logger.Error("invalid configuration", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// `systemctl reload` sends SIGHUP, whose default would end the gateway (and systemd
	// counts that as a clean exit, so it would not restart it). The config is not reloaded
	// in place yet: say so and keep serving.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() { signal.Stop(hup); close(hup) }()
	go func() {
		for range hup {
			logger.Warn("SIGHUP received: the configuration is not reloaded in place; restart hookgate to apply changes")
		}
	}()
	if err := serve(ctx, cfg, logger); err != nil {
		logger.Error("hookgate stopped", "err", err)
		return 1
	}
	return 0
}

// serve runs the gateway until ctx ends. Shutdown order: stop taking requests, then let
// workers finish (up to shutdown_timeout), then close the database.
func serve(ctx context.Context, cfg *Config, logger *slog.Logger) error {
	st, err := store.Open(ctx, cfg.Server.Database)
	if err != nil {
		return err
	}
	defer st.Close()

	requeued, err := st.InterruptRunning(ctx, "interrupted: the gateway stopped while this deploy was running")
	if err != nil {
		return err
	}
	for _, r := range requeued {
		logger.Warn("deploy was cut off by a stop or crash; queued again", "repo", r)
	}
	queued, err := st.QueuedRepos(ctx)
	if err != nil {
		return err
	}
	for _, r := range queued {
		if _, ok := cfg.Repos[r]; !ok {
			logger.Warn("a deploy is queued for a repository that is no longer configured", "repo", r)
		}
	}

	var srv *server.Server
	mgr := repos.NewManager(st, cfg.RepoList(), repos.Options{
		Workers: cfg.Server.Workers,
		Env:     cfg.commandEnv(),
		Logger:  logger,
		// srv is set below, before mgr.Start runs the workers that call this.
		OnDeployFinished: func(repo, status string, took time.Duration) { srv.ObserveDeploy(repo, status, took) },
	})
	srv, err = server.New(server.Options{
		Hooks:          cfg.Hooks(),
		MaxBody:        cfg.maxBody,
		AdminToken:     cfg.adminToken,
		TrustedProxies: cfg.Server.TrustedProxies,
		Logger:         logger,
	}, st, mgr)
	if err != nil {
		return err
	}
	hs := srv.HTTPServer(cfg.Server.Listen)
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	mgr.Start()
	pruneDone := make(chan struct{})
	pruneCtx, stopPrune := context.WithCancel(context.Background())
	go func() {
		defer close(pruneDone)
		prune(pruneCtx, st, cfg.Server.retention, logger)
	}()
	defer func() {
		stopPrune()
		<-pruneDone
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	logger.Info("hookgate listening", "addr", ln.Addr().String(), "database", cfg.Server.Database,
		"repos", len(cfg.Repos), "workers", cfg.Server.Workers)

	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err = <-serveErr:
		logger.Error("http server failed", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		logger.Warn("http shutdown", "err", err)
	}
	mgr.Stop(cfg.Server.shutdownTimeout)
	if left, ierr := st.InterruptRunning(sctx, "interrupted: the gateway shut down before this deploy finished"); ierr != nil {
		logger.Error("mark unfinished deploys", "err", ierr)
	} else if len(left) > 0 {
		logger.Warn("deploys interrupted by shutdown; they will run again at start", "repos", left)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
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

// pruneEvery is how often the retention policy runs.
const pruneEvery = time.Hour

// prune applies the retention policy at start and then every pruneEvery, until ctx ends.
func prune(ctx context.Context, st *store.Store, retention time.Duration, logger *slog.Logger) {
	if retention <= 0 {
		return
	}
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		p, err := st.Prune(ctx, time.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Error("prune history", "err", err)
		case p.Deliveries > 0 || p.Deploys > 0:
			logger.Info("pruned history", "retention", retention, "deliveries", p.Deliveries, "deploys", p.Deploys)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
