// repos.go owns what the gateway's parts read of the repositories: names, which this
// node deploys, the hooks, the workers' list and the deploy commands' environment.

package config

import (
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/hookgate/hookgate/repos"
	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// RepoNames returns the configured repository names, sorted.
func (c *Config) RepoNames() []string {
	names := make([]string, 0, len(c.Repos))
	for n := range c.Repos {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Deploys tells whether this node ([server] node) deploys repository name: it is
// configured, and its nodes list is absent or names this node.
func (c *Config) Deploys(name string) bool {
	r, ok := c.Repos[name]
	return ok && (r.Nodes == nil || slices.Contains(r.Nodes, c.Server.Node))
}

// DeployedRepoNames returns the names of the repositories this node deploys, sorted: what
// it registers in the nodes table and runs workers for.
func (c *Config) DeployedRepoNames() []string {
	var names []string
	for _, name := range c.RepoNames() {
		if c.Deploys(name) {
			names = append(names, name)
		}
	}
	return names
}

// Hooks is the configuration the HTTP side needs: every hook ([hooks.NAME], and each
// [repos.NAME] with its own secret) with its targets, deployed here or not, since any node
// may receive any delivery. A [repos.NAME] that is its own hook's only target keeps the
// form it always had (no Targets).
func (c *Config) Hooks() []server.Hook {
	var hooks []server.Hook
	bound := map[string][]server.Target{}
	for _, name := range c.RepoNames() {
		if r := c.Repos[name]; r.Hook != "" {
			bound[r.Hook] = append(bound[r.Hook], server.Target{Name: name, Branch: r.Branch, Tags: r.Tags, Path: r.Path, Paths: r.Paths})
		}
	}
	for _, name := range c.RepoNames() {
		r := c.Repos[name]
		if r.Hook != "" {
			continue
		}
		h := server.Hook{Name: name, Secret: r.secret, Branch: r.Branch, Tags: r.Tags, Repository: r.Repository, Path: r.Path, AllowCIDRs: r.allow, Provider: r.Provider, Paths: r.Paths}
		if more := bound[name]; len(more) > 0 {
			h.Targets = append([]server.Target{{Name: name, Branch: r.Branch, Tags: r.Tags, Path: r.Path, Paths: r.Paths}}, more...)
		}
		hooks = append(hooks, h)
	}
	for _, name := range sortedKeys(c.HookTables) {
		h := c.HookTables[name]
		hooks = append(hooks, server.Hook{Name: name, Secret: h.secret, Repository: h.Repository,
			AllowCIDRs: h.allow, Provider: h.Provider, Targets: bound[name]})
	}
	sort.Slice(hooks, func(i, j int) bool { return hooks[i].Name < hooks[j].Name })
	return hooks
}

// RepoList is the deploy configuration of every configured repository, deployed here or
// not (check and send read it).
func (c *Config) RepoList() []repos.Repo { return c.repoList(c.RepoNames()) }

// DeployedRepoList is the configuration the deploy workers need: the repositories this
// node deploys.
func (c *Config) DeployedRepoList() []repos.Repo { return c.repoList(c.DeployedRepoNames()) }

func (c *Config) repoList(names []string) []repos.Repo {
	var out []repos.Repo
	for _, name := range names {
		r := c.Repos[name]
		var health *repos.Health
		if r.Health != nil {
			h := r.Health.health
			health = &h
		}
		out = append(out, repos.Repo{
			Spec: checkout.Spec{
				Name: name, Path: r.Path, Branch: r.Branch, URL: r.URL, Mode: r.Mode, Depth: r.Depth,
				SSHKey: r.SSHKey, KnownHosts: r.KnownHosts, Token: r.token,
				Limits: c.Server.objects,
			},
			Commands: r.Commands,
			Timeout:  r.timeout,
			RunAs:    r.runAs,
			Poll:     r.poll,
			Health:   health,
			Tags:     r.Tags,
			Paths:    r.Paths,
		})
	}
	return out
}

// secretEnvNames lists the environment variables that hold secrets, so deploy commands can
// run without them.
func (c *Config) secretEnvNames() map[string]bool {
	names := map[string]bool{}
	for _, n := range []string{c.Server.AdminTokenEnv, c.Server.DatabaseEnv} {
		if n != "" {
			names[n] = true // a database URL can hold its password
		}
	}
	if store.IsPostgres(c.Database()) {
		// libpq's variable for the password, which the PostgreSQL driver reads too.
		names["PGPASSWORD"] = true
	}
	targets := slices.Clone(c.Notify)
	for _, h := range c.HookTables {
		if h.SecretEnv != "" {
			names[h.SecretEnv] = true
		}
	}
	for _, r := range c.Repos {
		for _, n := range []string{r.SecretEnv, r.TokenEnv} {
			if n != "" {
				names[n] = true
			}
		}
		targets = append(targets, r.Notify...)
	}
	for _, f := range c.Forges {
		if f.TokenEnv != "" {
			names[f.TokenEnv] = true
		}
	}
	for _, t := range targets {
		for _, n := range []string{t.URLEnv, t.SecretEnv} {
			if n != "" {
				names[n] = true
			}
		}
	}
	return names
}

// CommandEnv is the gateway's environment less the variables that hold its secrets.
func (c *Config) CommandEnv() []string {
	drop := c.secretEnvNames()
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !drop[name] && !strings.HasPrefix(name, "HOOKGATE_") {
			env = append(env, kv)
		}
	}
	return env
}
