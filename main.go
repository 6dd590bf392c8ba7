// Command hookgate is a self-hosted GitHub webhook deploy gateway: it verifies each
// delivery's signature, records it in SQLite or PostgreSQL, and deploys the pushed branch of each
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
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/hookgate/hookgate/config"
	"github.com/hookgate/hookgate/notify"
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
	if err := serve(ctx, *configPath, cfg, hup, logger); err != nil {
		logger.Error("hookgate stopped", "err", err)
		return 1
	}
	return 0
}

// serve runs the gateway until ctx ends, reloading path's configuration on each value from
// hup. Shutdown order: stop taking requests, then let workers finish (up to
// shutdown_timeout), then send the notifications still queued, then close the database.
func serve(ctx context.Context, path string, cfg *config.Config, hup <-chan os.Signal, logger *slog.Logger) error {
	// Exclusive (SQLite) and LockGateway (PostgreSQL) come before StopLeftovers and
	// InterruptRunning: a second gateway must not end or mark cut off the first's deploys.
	st, err := store.Open(ctx, cfg.Database(), store.WithSynchronous(cfg.Server.Synchronous()),
		store.WithNode(cfg.Server.Node), store.WithExclusive())
	if errors.Is(err, store.ErrDatabaseInUse) {
		return fmt.Errorf("%w; one gateway per SQLite file: stop that one first, or give this one a database of its own", err)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.LockGateway(ctx); err != nil {
		return err
	}
	// Bound before the recovery below, so a start that cannot listen (the port is taken)
	// changes nothing. Connections wait in the listen backlog until Serve runs.
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close() // Serve closes it too; this covers a return before Serve
	node := cfg.Server.Node
	// The node registers the repositories it deploys, not every one it takes deliveries
	// for: the store queues a deploy for each node that registered the repository.
	if err := st.RegisterNode(ctx, node, buildVersion(), cfg.DeployedRepoNames()); err != nil {
		return err
	}

	// Commands a crash left running would run beside the deploys run again below.
	repos.StopLeftovers(ctx, st, node, cfg.DeployedRepoList(), logger)
	requeued, crashed, err := st.RecoverCrashed(ctx, "interrupted: the gateway stopped while this deploy was running")
	if err != nil {
		return err
	}
	for _, r := range requeued {
		logger.Warn("deploy was cut off by a stop or crash; queued again", "repo", r)
	}
	for _, dp := range crashed {
		logger.Error("deploy was cut off by a crash again; failed, not queued again", "repo", dp.Repo, "deploy_id", dp.ID, "crashes", store.MaxCrashes)
	}
	queued, err := st.QueuedRepos(ctx)
	if err != nil {
		return err
	}
	for _, r := range queued {
		switch {
		case cfg.Repos[r] == nil:
			logger.Warn("a deploy is queued for a repository that is no longer configured", "repo", r)
		case !cfg.Deploys(r):
			logger.Warn("a deploy is queued on this node for a repository whose nodes list leaves it out; it stays queued until this node deploys it again",
				"repo", r, "node", node, "nodes", cfg.Repos[r].Nodes)
		}
	}

	global, perRepo := cfg.NotifyTargets()
	notifier := notify.New(st, global, perRepo, notify.Options{Logger: logger})
	for _, dp := range crashed {
		notifier.DeployFinished(dp) // sent once the notifier starts, below
	}
	g := &gateway{path: path, log: logger, store: st, notifier: notifier, cfg: cfg}
	// Workers (deploys, polls of origin) only for the repositories this node deploys; the
	// server below verifies and records deliveries for every configured one.
	g.mgr = repos.NewManager(st, cfg.DeployedRepoList(), repos.Options{
		Workers:   cfg.Server.Workers,
		MaxClones: cfg.Server.MaxClones,
		Env:       cfg.CommandEnv(),
		Logger:    logger,
		// g.srv is set below, before mgr.Start runs the workers that call this.
		OnDeployFinished: func(dp store.Deploy, took time.Duration) {
			g.srv.ObserveDeploy(dp.Repo, dp.Status, took)
			notifier.DeployFinished(dp)
		},
		OnOriginCheck: func(repo, result string) { g.srv.ObserveOriginCheck(repo, result) },
	})
	g.srv, err = server.New(server.Options{
		Hooks:          cfg.Hooks(),
		MaxBody:        cfg.MaxBody(),
		MaxBodyMemory:  cfg.MaxBodyMemory(),
		AdminToken:     cfg.AdminToken(),
		TrustedProxies: cfg.Server.TrustedProxies,
		Hostnames:      cfg.Server.Hostnames,
		Logger:         logger,
		Reload:         g.reload,
		Unsigned:       cfg.UnsignedBudget(),

		MaxConns:          cfg.Server.MaxConnections,
		MaxConnsPerClient: cfg.Server.MaxConnectionsPerClient,
		MaxHeaderBytes:    cfg.Server.HeaderBytes(),
	}, st, g.mgr)
	if err != nil {
		return err
	}
	srv, mgr := g.srv, g.mgr
	hs := srv.HTTPServer(cfg.Server.Listen)
	notifier.Start()
	defer notifier.Stop()
	mgr.Start()
	pruneDone := make(chan struct{})
	pruneCtx, stopPrune := context.WithCancel(context.Background())
	go func() {
		defer close(pruneDone)
		prune(pruneCtx, st, func() retention {
			s := g.current().Server
			return retention{all: s.KeepFor(), unsigned: s.KeepUnsignedFor()}
		}, logger)
	}()
	defer func() {
		stopPrune()
		<-pruneDone
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(srv.LimitListener(ln)) }()
	maxConns, perClient := srv.ConnLimits()
	logger.Info("hookgate listening", "addr", ln.Addr().String(), "database", store.Redact(cfg.Database()),
		"node", node, "repos", len(cfg.Repos), "deploys", cfg.DeployedRepoNames(), "workers", cfg.Server.Workers,
		"max_connections", maxConns, "max_connections_per_client", perClient)

	beatCtx, stopBeat := context.WithCancel(context.Background())
	beatDone := make(chan struct{})
	go func() {
		defer close(beatDone)
		heartbeat(beatCtx, node, g.beat, logger)
	}()
	defer func() {
		stopBeat()
		<-beatDone
	}()
	// Deploys another node of a fleet queued for this one (PostgreSQL; returns at once on
	// SQLite).
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	var checks sync.WaitGroup // the reconciles the watch started
	go func() {
		defer close(watchDone)
		st.WatchQueue(watchCtx, store.QueuePollEvery, store.Watch{
			Wake: mgr.Notify,
			Reconcile: func(repo string) {
				checks.Add(1)
				go func() {
					defer checks.Done()
					ctx, cancel := context.WithTimeout(watchCtx, 2*time.Minute)
					defer cancel()
					// Logged and recorded by the manager; a repository this node
					// does not deploy is ErrUnknownRepo, and nothing to do.
					_, _ = mgr.Reconcile(ctx, repo)
				}()
			},
		}, logger)
	}()
	defer func() {
		stopWatch()
		<-watchDone
		checks.Wait()
	}()
	lockLost := false
wait:
	for {
		select {
		case <-hup:
			logger.Info("SIGHUP: reloading the configuration", "config", path)
			g.reload(ctx) // logs its outcome; a refused file keeps the old configuration
		case <-ctx.Done():
			logger.Info("shutting down")
			break wait
		case err = <-serveErr:
			logger.Error("http server failed", "err", err)
			break wait
		case err = <-st.GatewayLockLost():
			// Another gateway works the queue now: stop, and leave its deploys alone.
			logger.Error("stopping: another gateway took the database", "err", err)
			lockLost = true
			break wait
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		logger.Warn("http shutdown", "err", err)
	}
	mgr.Stop(g.current().Server.ShutdownWait())
	if lockLost {
		return err
	}
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

// retention is what prune deletes: everything older than all, and deliveries without a
// valid signature older than unsigned; 0 turns either off.
type retention struct{ all, unsigned time.Duration }

// prune applies the retention policy at start and then every pruneEvery, until ctx ends.
// policy is read each time, so a reload changes it. Deliveries without a valid signature
// are pruned after unsigned_retention even with retention off: unauthenticated clients
// must not make a long-running gateway's database grow without bound.
func prune(ctx context.Context, st *store.Store, policy func() retention, logger *slog.Logger) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		keep := policy()
		if keep.unsigned > 0 && (keep.all <= 0 || keep.unsigned < keep.all) {
			n, err := st.PruneUnsigned(ctx, time.Now().Add(-keep.unsigned))
			switch {
			case err != nil && ctx.Err() == nil:
				logger.Error("prune unsigned deliveries", "err", err)
			case n > 0:
				logger.Info("pruned unsigned deliveries", "unsigned_retention", keep.unsigned, "deliveries", n)
			}
		}
		if keep.all > 0 {
			p, err := st.Prune(ctx, time.Now().Add(-keep.all))
			switch {
			case err != nil && ctx.Err() == nil:
				logger.Error("prune history", "err", err)
			case p.Deliveries > 0 || p.Deploys > 0:
				logger.Info("pruned history", "retention", keep.all, "deliveries", p.Deliveries, "deploys", p.Deploys)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heartbeat calls beat every store.HeartbeatEvery, to record that node is alive with the
// repositories it deploys now, until ctx ends.
func heartbeat(ctx context.Context, node string, beat func(context.Context) error, logger *slog.Logger) {
	t := time.NewTicker(store.HeartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		bctx, cancel := context.WithTimeout(ctx, store.HeartbeatEvery)
		err := beat(bctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			logger.Warn("heartbeat", "node", node, "err", err)
		}
	}
}

// writeBeat records that node is alive and deploys repos, registering it again when its
// row was deleted by hand.
func writeBeat(ctx context.Context, st *store.Store, node string, repos []string) error {
	err := st.Heartbeat(ctx, node, repos)
	if errors.Is(err, store.ErrNotFound) {
		err = st.RegisterNode(ctx, node, buildVersion(), repos)
	}
	return err
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
