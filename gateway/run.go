// run.go owns Run: serving, the loops beside it, and the shutdown order.

package gateway

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hookgate/hookgate/store"
)

// Run runs the gateway until ctx ends, reloading the configuration on each value from
// hup. Shutdown order: stop taking requests, then let workers finish (up to
// shutdown_timeout), then send the notifications still queued, then close the database.
func (g *Gateway) Run(ctx context.Context, hup <-chan os.Signal) error {
	st, ln, logger, path, cfg, notifier := g.store, g.ln, g.log, g.path, g.cfg, g.notifier
	defer st.Close()
	defer ln.Close() // Serve closes it too; this covers a return before Serve
	node := cfg.Server.Node
	srv, mgr := g.srv, g.mgr
	hs := srv.HTTPServer(cfg.Server.Listen)
	notifier.Start()
	defer notifier.Stop()
	// The forge reports' sender: the outbox is in the database, so what it has not sent
	// when it stops is sent at the next start.
	reportCtx, stopReports := context.WithCancel(context.Background())
	reportsDone := make(chan struct{})
	go func() {
		defer close(reportsDone)
		if !g.manual {
			g.reports.Run(reportCtx)
		}
	}()
	checksDone := make(chan struct{})
	go func() {
		defer close(checksDone)
		if !g.manual {
			g.checks.Run(reportCtx)
		}
	}()
	defer func() {
		stopReports()
		<-reportsDone
		<-checksDone
	}()
	if !g.manual {
		mgr.Start()
	}
	pruneDone := make(chan struct{})
	pruneCtx, stopPrune := context.WithCancel(context.Background())
	go func() {
		defer close(pruneDone)
		prune(pruneCtx, st, g.prune, func() retention {
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
			Reconcile: func(repo string) {
				checks.Add(1)
				go func() {
					defer checks.Done()
					ctx, cancel := context.WithTimeout(watchCtx, 2*time.Minute)
					defer cancel()
					// Logged and recorded by the manager; a repository this node
					// does not deploy is ErrUnknownRepo, and nothing to do.
					_, _ = mgr.ReconcileUnpinned(ctx, repo)
				}()
			},
		}, logger)
	}()
	defer func() {
		stopWatch()
		<-watchDone
		checks.Wait()
	}()
	var err error
	lockLost := false
wait:
	for {
		select {
		case <-hup:
			logger.Info("SIGHUP: reloading the configuration", "config", path)
			g.Reload(ctx) // logs its outcome; a refused file keeps the old configuration
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
