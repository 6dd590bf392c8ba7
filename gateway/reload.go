// reload.go owns Reload: a configuration re-read and swapped in without a restart.

package gateway

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/hookgate/hookgate/config"
	"github.com/hookgate/hookgate/notify"
	"github.com/hookgate/hookgate/server"
)

// Reload re-reads the configuration file and swaps it in, on SIGHUP or POST
// /api/v1/reload. A file that does not validate changes nothing: the error is logged and
// returned, wrapping server.ErrInvalidConfig. Otherwise, in this order:
//   - the hooks (secrets, branches, allow_cidrs, providers), max_body, max_body_memory,
//     admin_token and hostnames switch at once: a delivery in flight finishes with the hook it was read with;
//   - workers start for the repositories this node now deploys (new ones, or ones whose
//     nodes list now names it), and those it no longer deploys (removed, or left out of
//     nodes) finish their running deploy and stop; a changed repository's next deploy uses
//     the new settings;
//   - notification targets, retention, the unsigned_records_* budget, unsigned_retention
//     and shutdown_timeout take their new values.
//
// listen, database, node, sqlite_synchronous, workers, max_clones and trusted_proxies keep
// their old values until a restart; the report names those that changed.
// envReloadHint follows a reload refused for an empty *_env variable: the variable may
// well be set now in the operator's shell or the unit file, but not in the gateway.
const envReloadHint = "a reload sees the environment the gateway started with, which cannot change: " +
	"to rotate a secret without a restart use secret_file (read again on every reload), or restart the gateway with the variable set"

func (g *Gateway) Reload(ctx context.Context) (server.ReloadReport, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	cfg, err := config.Load(g.path)
	if err != nil {
		var unset *config.EnvUnsetError
		if errors.As(err, &unset) {
			err = fmt.Errorf("%w; %s", err, envReloadHint)
		}
		g.log.Error("configuration reload refused; the running configuration is kept", "err", err)
		return server.ReloadReport{}, fmt.Errorf("%w: %v", server.ErrInvalidConfig, err)
	}
	old := g.cfg
	rep := server.ReloadReport{
		Added: []string{}, Removed: []string{}, Changed: []string{},
		RestartRequired: config.RestartRequired(old.Server, cfg.Server),
	}
	// Keep what cannot change in place, so the configuration in force says what runs.
	cfg.KeepRestartSettings(old)
	// The node's repositories first: a delivery to a repository added here must find this
	// node among those that deploy it once its hook answers. Those it deploys, not every
	// one it has a hook for (a repository whose nodes list leaves it out).
	if err := writeBeat(ctx, g.store, cfg.Server.Node, g.version, cfg.DeployedRepoNames()); err != nil {
		g.log.Error("configuration reload refused; the running configuration is kept", "err", err)
		return server.ReloadReport{}, fmt.Errorf("record the node's repositories: %w", err)
	}
	if err := g.srv.Apply(server.Settings{Hooks: cfg.Hooks(), MaxBody: cfg.MaxBody(),
		MaxBodyMemory: cfg.MaxBodyMemory(), AdminToken: cfg.AdminToken(), Hostnames: cfg.Server.Hostnames,
		Unsigned: cfg.UnsignedBudget()}); err != nil {
		g.log.Error("configuration reload refused; the running configuration is kept", "err", err)
		return server.ReloadReport{}, fmt.Errorf("%w: %v", server.ErrInvalidConfig, err)
	}
	// Workers run for the repositories this node deploys: one whose nodes list now names
	// this node starts, one whose list now leaves it out stops like a removed one.
	ch := g.mgr.Apply(cfg.DeployedRepoList(), cfg.CommandEnv())
	for _, name := range cfg.RepoNames() {
		if _, ok := old.Repos[name]; !ok {
			rep.Added = append(rep.Added, name)
		}
	}
	for _, name := range old.RepoNames() {
		if _, ok := cfg.Repos[name]; !ok {
			rep.Removed = append(rep.Removed, name)
		}
	}
	global, perRepo := cfg.NotifyTargets()
	g.notifier.SetTargets(global, perRepo)
	g.reports.SetConfig(cfg.Reporting())
	g.store.SetReporting(cfg.ReportingRepos())
	g.checks.SetConfig(cfg.Reporting())
	g.store.SetRequireChecks(cfg.CheckedRepos())

	// Changed is every setting of the repository's table (secret, provider, allow_cidrs,
	// notify targets too), not only those its worker uses.
	for _, name := range cfg.RepoNames() {
		if prev, ok := old.Repos[name]; ok && !reflect.DeepEqual(prev, cfg.Repos[name]) {
			rep.Changed = append(rep.Changed, name)
		}
	}
	g.cfg = cfg
	g.log.Info("configuration reloaded", "added", rep.Added, "removed", rep.Removed, "changed", rep.Changed,
		"workers_started", ch.Added, "workers_stopped", ch.Removed, "notify_targets", len(global)+countTargets(perRepo))
	if len(rep.RestartRequired) > 0 {
		g.log.Warn("these settings changed but keep their old value until hookgate restarts", "settings", rep.RestartRequired)
	}
	if len(ch.Removed) > 0 {
		if queued, err := g.store.QueuedRepos(ctx); err == nil {
			for _, r := range ch.Removed {
				if slices.Contains(queued, r) {
					g.log.Warn("a repository this node no longer deploys has a queued deploy; it stays queued until this node deploys the repository again", "repo", r)
				}
			}
		}
	}
	return rep, nil
}

func countTargets(m map[string][]notify.Target) int {
	n := 0
	for _, ts := range m {
		n += len(ts)
	}
	return n
}
