// Package gateway owns the gateway's life cycle: New opens the database, takes the lock,
// binds the listener, recovers what a crash left and wires the notifier, the workers and
// the HTTP server; Run serves with its loops (prune, heartbeat, fleet watch) and shuts down
// in order; Reload swaps in a re-read configuration.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hookgate/hookgate/config"
	"github.com/hookgate/hookgate/notify"
	"github.com/hookgate/hookgate/reporter"
	"github.com/hookgate/hookgate/repos"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// Options are what New needs besides the configuration.
type Options struct {
	ConfigPath string       // the file Reload reads again
	Logger     *slog.Logger // the gateway's log
	Version    string       // the binary's version, for the nodes listing
	Listener   net.Listener // nil: New listens on [server] listen; tests pass 127.0.0.1:0

	// For tests (internal/gatewaytest); zero values are production's.
	SweepEvery time.Duration // repos.Options.SweepEvery (0: repos.DefaultSweepEvery)
	PruneEvery time.Duration // how often retention runs (0: DefaultPruneEvery)
	// WrapWake, when set, wraps the store's subscriber (store.OnQueued), what wakes a
	// repository's worker for a deploy queued on this node, so a test can drop the wake-ups.
	WrapWake func(wake func(repo string)) func(repo string)
	// Manual: Run does not start the workers; StartWorkers does, so a test can set up the
	// queue exactly first.
	Manual bool
	// Server, when set, changes the HTTP server's options before server.New sees them, for
	// the server package's tests (a stub Reload, a short ReadTimeout, a logger of their own).
	Server func(*server.Options)
	// Unregistered: the node neither registers nor sends heartbeats, so the nodes table holds
	// only what a test writes (the server package's tests of the fleet pages).
	Unregistered bool
	// Checks tunes the looks at waiting deploys' checks (zero: production's 10 s to 60 s).
	Checks reporter.CheckOptions
}

// Gateway holds the running parts a configuration reload reconfigures, and the
// configuration in force.
type Gateway struct {
	path     string
	log      *slog.Logger
	version  string // for the nodes listing
	store    *store.Store
	ln       net.Listener  // bound by New, served by Run
	prune    time.Duration // how often retention runs
	manual   bool          // Options.Manual
	unreg    bool          // Options.Unregistered
	srv      *server.Server
	mgr      *repos.Manager
	notifier *notify.Notifier
	reports  *reporter.Sender  // the forge reports' sender
	checks   *reporter.Checker // moves deploys waiting for the forge's checks on (require_checks)

	// mu: one reload at a time, guards cfg. A heartbeat holds it too, from reading the
	// configuration to writing its repository list, so it never writes back the list from
	// before a reload after the reload wrote its own.
	mu  sync.Mutex
	cfg *config.Config
}

// current returns the configuration in force.
func (g *Gateway) current() *config.Config {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg
}

// beat records that this node is alive and the repositories it deploys, for the heartbeat.
func (g *Gateway) beat(ctx context.Context) error {
	if g.unreg {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return writeBeat(ctx, g.store, g.cfg.Server.Node, g.version, g.cfg.DeployedRepoNames())
}

// New opens the gateway cfg describes, ready for Run: the database (locked against a
// second gateway), the listener on [server] listen, the recovery of what a crash left
// running, and the notifier, workers and HTTP server wired together. Nothing serves or
// runs until Run.
func New(ctx context.Context, cfg *config.Config, opts Options) (_ *Gateway, err error) {
	logger := opts.Logger
	// Exclusive (SQLite) and LockGateway (PostgreSQL) come before StopLeftovers and
	// InterruptRunning: a second gateway must not end or mark cut off the first's deploys.
	st, err := store.Open(ctx, cfg.Database(), store.WithSynchronous(cfg.Server.Synchronous()),
		store.WithNode(cfg.Server.Node), store.WithExclusive())
	if errors.Is(err, store.ErrDatabaseInUse) {
		return nil, fmt.Errorf("%w; one gateway per SQLite file: stop that one first, or give this one a database of its own", err)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	if err := st.LockGateway(ctx); err != nil {
		return nil, err
	}
	// Bound before the recovery below, so a start that cannot listen (the port is taken)
	// changes nothing. Connections wait in the listen backlog until Serve runs.
	ln := opts.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", cfg.Server.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	node := cfg.Server.Node
	// The node registers the repositories it deploys, not every one it takes deliveries
	// for: the store queues a deploy for each node that registered the repository.
	if !opts.Unregistered {
		if err := st.RegisterNode(ctx, node, opts.Version, cfg.DeployedRepoNames()); err != nil {
			return nil, err
		}
	}

	// Before the recovery below: the deploys it ends are reported like any others.
	st.SetReporting(cfg.ReportingRepos())
	st.SetRequireChecks(cfg.CheckedRepos())

	// Commands a crash left running would run beside the deploys run again below.
	repos.StopLeftovers(ctx, st, node, cfg.DeployedRepoList(), logger)
	requeued, crashed, err := st.RecoverCrashed(ctx, "interrupted: the gateway stopped while this deploy was running")
	if err != nil {
		return nil, err
	}
	for _, r := range requeued {
		logger.Warn("deploy was cut off by a stop or crash; queued again", "repo", r)
	}
	for _, dp := range crashed {
		logger.Error("deploy was cut off by a crash again; failed, not queued again", "repo", dp.Repo, "deploy_id", dp.ID, "crashes", store.MaxCrashes)
	}
	queued, err := st.QueuedRepos(ctx)
	if err != nil {
		return nil, err
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
	g := &Gateway{path: opts.ConfigPath, log: logger, version: opts.Version, store: st, ln: ln, notifier: notifier, cfg: cfg,
		prune: opts.PruneEvery, manual: opts.Manual, unreg: opts.Unregistered}
	// g.srv is set below, before Run starts the sender that calls Observe.
	g.reports = reporter.NewSender(st, cfg.Reporting(), reporter.Options{Logger: logger,
		Observe: func(forge, result string) { g.srv.ObserveForgeReport(forge, result) }})
	checkOpts := opts.Checks
	checkOpts.Logger = logger
	g.checks = reporter.NewChecker(st, cfg.Reporting(), checkOpts)
	// A deploy begins to wait in a transaction that writes its report (require_checks
	// needs report), so the reports' wake-up wakes the checker too.
	st.OnReport(func() { g.reports.Wake(); g.checks.Wake() })
	if g.prune <= 0 {
		g.prune = DefaultPruneEvery
	}
	// Workers (deploys, polls of origin) only for the repositories this node deploys; the
	// server below verifies and records deliveries for every configured one.
	g.mgr = repos.NewManager(st, cfg.DeployedRepoList(), repos.Options{
		Workers:    cfg.Server.Workers,
		MaxClones:  cfg.Server.MaxClones,
		Env:        cfg.CommandEnv(),
		Logger:     logger,
		SweepEvery: opts.SweepEvery,
		// g.srv is set below, before mgr.Start runs the workers that call this.
		OnDeployFinished: func(dp store.Deploy, took time.Duration) {
			g.srv.ObserveDeploy(dp.Repo, dp.Status, took)
			if dp.Trigger == store.TriggerAutoRollback {
				g.srv.ObserveRollback(dp.Repo, dp.Status)
			}
			notifier.DeployFinished(dp)
		},
		OnOriginCheck: func(repo, result string) { g.srv.ObserveOriginCheck(repo, result) },
		OnHealthChecked: func(repo, result string, took time.Duration) {
			g.srv.ObserveHealthCheck(repo, result, took)
		},
	})
	// The one subscriber: every deploy queued on this node from here on, once committed,
	// wakes its repository's worker (the deploys queued above wait for Start's read).
	wake := g.mgr.Wake
	if opts.WrapWake != nil {
		wake = opts.WrapWake(wake)
	}
	st.OnQueued(wake)
	sopts := server.Options{
		Hooks:          cfg.Hooks(),
		MaxBody:        cfg.MaxBody(),
		MaxBodyMemory:  cfg.MaxBodyMemory(),
		AdminToken:     cfg.AdminToken(),
		TrustedProxies: cfg.Server.TrustedProxies,
		Hostnames:      cfg.Server.Hostnames,
		Logger:         logger,
		Reload:         g.Reload,
		Unsigned:       cfg.UnsignedBudget(),

		MaxConns:          cfg.Server.MaxConnections,
		MaxConnsPerClient: cfg.Server.MaxConnectionsPerClient,
		MaxHeaderBytes:    cfg.Server.HeaderBytes(),
	}
	if opts.Server != nil {
		opts.Server(&sopts)
	}
	g.srv, err = server.New(sopts, st, g.mgr)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// Addr is the address the gateway listens on.
func (g *Gateway) Addr() net.Addr { return g.ln.Addr() }

// Store is the gateway's database, for tests that read what it recorded.
func (g *Gateway) Store() *store.Store { return g.store }

// Server is the gateway's HTTP server, for tests of the server package.
func (g *Gateway) Server() *server.Server { return g.srv }

// Reports is the gateway's sender of forge reports, for tests that step it (RunOnce).
func (g *Gateway) Reports() *reporter.Sender { return g.reports }

// Checks is the gateway's checker of deploys waiting for checks, for tests that step it.
func (g *Gateway) Checks() *reporter.Checker { return g.checks }

// Manager is the gateway's deploy workers, for tests that run a reconcile or wake a worker.
func (g *Gateway) Manager() *repos.Manager { return g.mgr }

// StartWorkers starts the deploy workers of a gateway made with Options.Manual.
func (g *Gateway) StartWorkers() { g.mgr.Start() }
