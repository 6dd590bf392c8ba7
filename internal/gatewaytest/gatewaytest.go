// Package gatewaytest owns the one in-process gateway the tests share: gateway.New and Run
// on 127.0.0.1:0 over a real database (SQLite in t.TempDir, or PostgreSQL), a testkit
// origin and checkout per repository, and a config.toml written as an operator would; the
// gateway stops in t.Cleanup. Deliveries are signed through forge.SetDeliveryHeaders.
package gatewaytest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/config"
	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// Defaults of a gateway New makes without options.
const (
	Secret     = "It's a Secret to Everybody"
	Repository = "binkkatal/sample_app" // the full name testdata's push payloads carry
	NodeName   = "gw-test"
)

// Repo is one [repos.NAME] of the gateway's config.toml.
type Repo struct {
	Name       string   // default "site"
	Branch     string   // default main
	Repository string   // the forge's full name; default Repository
	Provider   string   // github (default), gitea, gitlab
	Secret     string   // default Secret
	Commands   []string // default ["echo deployed $HOOKGATE_COMMIT"]
	NotCloned  bool     // the checkout does not exist yet: the first deploy clones origin
	Path       string   // an existing checkout the test made: New makes no origin for it and writes no url
	TOML       string   // more lines for the section, as written
}

// Gateway is a running in-process gateway.
type Gateway struct {
	t        testing.TB
	URL      string // http://127.0.0.1:port
	Addr     string // 127.0.0.1:port
	Store    *store.Store
	Origin   map[string]*testkit.Origin
	Checkout map[string]string // the repository's checkout path
	Logs     *SyncBuffer       // the gateway's log (text)
	Config   *config.Config
	Path     string // the config.toml
	Database string // the database's path or URL, for a second store or node on it
	G        *gateway.Gateway

	cancel context.CancelFunc
	done   chan error
	hup    chan os.Signal
}

type settings struct {
	repos      []Repo
	workers    int
	node       string
	server     []string
	configure  []func(*config.Config)
	database   string
	postgres   bool
	sweepEvery time.Duration
	pruneEvery time.Duration
	dropWakes  bool
	manual     bool
	join       *Gateway
	env        []string
	gopts      []func(*gateway.Options)
}

// Option changes what New builds.
type Option func(*settings)

// Repos replaces the one default repository ("site") with specs; empty fields take the
// defaults.
func Repos(specs ...Repo) Option { return func(s *settings) { s.repos = specs } }

// Workers sets [server] workers (default 2).
func Workers(n int) Option { return func(s *settings) { s.workers = n } }

// Node sets [server] node (default NodeName).
func Node(name string) Option { return func(s *settings) { s.node = name } }

// Server adds lines to the [server] section, as written (max_body, admin_token, retention…).
func Server(lines ...string) Option {
	return func(s *settings) { s.server = append(s.server, lines...) }
}

// Config changes the loaded configuration before gateway.New sees it: for values the
// gateway reads as they are (hostnames, trusted proxies); sizes and durations are resolved
// by config.Load, so give those through Server.
func Config(f func(*config.Config)) Option {
	return func(s *settings) { s.configure = append(s.configure, f) }
}

// Postgres runs the gateway on a throw-away PostgreSQL database (the test skips without
// one; see pgtest).
func Postgres() Option { return func(s *settings) { s.postgres = true } }

// Join puts the gateway on other's database and origins, with checkouts of its own, as a
// second node of a fleet (PostgreSQL: a SQLite file takes one gateway). Give it another
// Node.
func Join(other *Gateway) Option {
	return func(s *settings) { s.database, s.join = other.Database, other }
}

// Database puts the gateway on database (a SQLite file or a postgres:// URL), for a test
// that writes the history it starts from before the gateway opens it.
func Database(database string) Option { return func(s *settings) { s.database = database } }

// Env sets environment variables ("KEY=value") for the test's length before the gateway
// reads its configuration, as a process's environment would be (database_env, secret_env).
func Env(kv ...string) Option { return func(s *settings) { s.env = append(s.env, kv...) } }

// SweepEvery sets how often the workers' queue is swept (gateway.Options.SweepEvery).
func SweepEvery(d time.Duration) Option { return func(s *settings) { s.sweepEvery = d } }

// PruneEvery sets how often retention runs (gateway.Options.PruneEvery).
func PruneEvery(d time.Duration) Option { return func(s *settings) { s.pruneEvery = d } }

// Manual leaves the deploy workers stopped until StartWorkers: a deploy queued stays
// queued, so a test can set up the queue exactly.
func Manual() Option { return func(s *settings) { s.manual = true } }

// Options changes the gateway.Options New passes to gateway.New, for what a config.toml
// cannot say (the server package's tests change its server.Options through Options.Server).
func Options(f func(*gateway.Options)) Option {
	return func(s *settings) { s.gopts = append(s.gopts, f) }
}

// StartWorkers starts the deploy workers of a Manual gateway.
func (g *Gateway) StartWorkers() { g.G.StartWorkers() }

// DropWakeups makes the gateway drop every wake-up of a worker for a queued deploy: only
// the sweep runs deploys.
func DropWakeups() Option { return func(s *settings) { s.dropWakes = true } }

// New starts a gateway for t and stops it when t ends.
func New(t testing.TB, opts ...Option) *Gateway {
	t.Helper()
	s := settings{workers: 2, node: NodeName}
	for _, o := range opts {
		o(&s)
	}
	if len(s.repos) == 0 {
		s.repos = []Repo{{}}
	}
	dir := t.TempDir()
	g := &Gateway{t: t, Origin: map[string]*testkit.Origin{}, Checkout: map[string]string{},
		Logs: &SyncBuffer{}, Path: filepath.Join(dir, "config.toml"), Database: s.database}
	if g.Database == "" {
		if s.postgres {
			g.Database = pgtest.Database(t)
		} else {
			g.Database = filepath.Join(dir, "hookgate.db")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()

	var b strings.Builder
	fmt.Fprintf(&b, "[server]\nlisten = %q\ndatabase = %q\nnode = %q\nworkers = %d\n", addr, g.Database, s.node, s.workers)
	for _, l := range s.server {
		fmt.Fprintln(&b, l)
	}
	for _, r := range s.repos {
		r = r.withDefaults()
		if r.Path != "" {
			g.Checkout[r.Name] = r.Path
			fmt.Fprintf(&b, "\n[repos.%s]\nsecret = %q\npath = %q\nbranch = %q\nrepository = %q\n",
				r.Name, r.Secret, r.Path, r.Branch, r.Repository)
		} else {
			o := s.origin(t, r)
			path := filepath.Join(dir, "checkouts", r.Name)
			if !r.NotCloned {
				path = o.Clone()
			}
			g.Origin[r.Name], g.Checkout[r.Name] = o, path
			fmt.Fprintf(&b, "\n[repos.%s]\nsecret = %q\npath = %q\nurl = %q\nbranch = %q\nrepository = %q\n",
				r.Name, r.Secret, path, o.Bare, r.Branch, r.Repository)
		}
		if r.Provider != "" {
			fmt.Fprintf(&b, "provider = %q\n", r.Provider)
		}
		q := make([]string, len(r.Commands))
		for i, c := range r.Commands {
			q[i] = fmt.Sprintf("%q", c)
		}
		fmt.Fprintf(&b, "commands = [%s]\ntimeout = \"1m\"\n", strings.Join(q, ", "))
		if r.TOML != "" {
			fmt.Fprintln(&b, r.TOML)
		}
	}
	if err := os.WriteFile(g.Path, []byte(b.String()), 0o600); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	return start(t, g, s, ln)
}

// Start runs the gateway path (a config.toml the test wrote) describes, listening on its
// [server] listen, as `hookgate serve --config path` does; it stops when t ends. Of the
// options, Config, Env, SweepEvery, PruneEvery, DropWakeups and Manual apply.
func Start(t testing.TB, path string, opts ...Option) *Gateway {
	t.Helper()
	var s settings
	for _, o := range opts {
		o(&s)
	}
	g := &Gateway{t: t, Origin: map[string]*testkit.Origin{}, Checkout: map[string]string{},
		Logs: &SyncBuffer{}, Path: path}
	return start(t, g, s, nil)
}

// start loads g.Path and runs the gateway on ln (nil: [server] listen).
func start(t testing.TB, g *Gateway, s settings, ln net.Listener) *Gateway {
	t.Helper()
	for _, kv := range s.env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	var err error
	g.Config, err = config.Load(g.Path)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		t.Fatal(err)
	}
	for _, f := range s.configure {
		f(g.Config)
	}
	g.Database = g.Config.Database()
	gopts := gateway.Options{
		ConfigPath: g.Path,
		Logger:     slog.New(slog.NewTextHandler(g.Logs, nil)),
		Version:    "test",
		Listener:   ln,
		SweepEvery: s.sweepEvery,
		PruneEvery: s.pruneEvery,
		Manual:     s.manual,
	}
	for _, f := range s.gopts {
		f(&gopts)
	}
	if s.dropWakes {
		gopts.WrapWake = func(func(string)) func(string) { return func(string) {} }
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.G, err = gateway.New(ctx, g.Config, gopts)
	if err != nil {
		cancel()
		if ln != nil {
			ln.Close()
		}
		t.Fatal(err)
	}
	g.Addr = g.G.Addr().String()
	g.URL = "http://" + g.Addr
	g.Store = g.G.Store()
	g.cancel, g.done, g.hup = cancel, make(chan error, 1), make(chan os.Signal, 1)
	go func() { g.done <- g.G.Run(ctx, g.hup) }()
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("gateway stopped with %v\n%s", err, g.Logs.String())
		}
	})
	return g
}

// origin is r's origin: the joined gateway's, or a new one with r's branch.
func (s *settings) origin(t testing.TB, r Repo) *testkit.Origin {
	if s.join != nil && s.join.Origin[r.Name] != nil {
		return s.join.Origin[r.Name]
	}
	o := testkit.NewOrigin(t)
	o.Branch = r.Branch
	if r.Branch != "main" {
		testkit.Git(t, o.Seed, "checkout", "-q", "-b", r.Branch)
		o.Commit(nil, "branch "+r.Branch)
	}
	return o
}

func (r Repo) withDefaults() Repo {
	if r.Name == "" {
		r.Name = "site"
	}
	if r.Branch == "" {
		r.Branch = "main"
	}
	if r.Repository == "" {
		r.Repository = Repository
	}
	if r.Secret == "" {
		r.Secret = Secret
	}
	if r.Commands == nil {
		r.Commands = []string{"echo deployed $HOOKGATE_COMMIT"}
	}
	return r
}

// Stop ends the gateway (as SIGTERM ends `hookgate serve`) and returns what Run returned;
// later calls return the same.
func (g *Gateway) Stop() error {
	g.cancel()
	select {
	case err := <-g.done:
		g.done <- err
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("gateway did not stop within 30s")
	}
}

// Reload asks the running gateway to read its config.toml again, as SIGHUP does.
func (g *Gateway) Reload() { g.hup <- os.Interrupt }
