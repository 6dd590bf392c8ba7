// Package app is what an operator or a delivery can do, apart from how it is asked: record a
// delivery, replay one, deploy now, roll back, pin, unpin, reconcile, and one repository
// status that the page and the API render. It holds no HTTP: server calls it. This file
// owns the App, its configured repositories (swapped whole on a reload) and the worker
// side it drives.
package app

import (
	"context"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/repos"
	"github.com/hookgate/hookgate/store"
)

// Repo is a configured repository as the application layer sees it (a reload swaps them).
type Repo struct {
	Name, Branch, Repository string
	Path                     string // the checkout, read for its HEAD and its history
	// Hook is the hook the target takes its deliveries from ("" or Name: its own); Tags
	// its tag glob ("" : it deploys Branch); Shared that its hook has several targets.
	Hook, Tags string
	Shared     bool
	// Paths are the target's paths globs (nil: it deploys every push it takes), for the
	// page and the API.
	Paths []string
}

// Workers is the worker side (*repos.Manager): it tells which deploy runs now (the store
// wakes the workers of what it queues, see store.OnQueued).
type Workers interface {
	Running(repo string) int64
}

// Reconciler compares origin's branch head with what is live; Workers that are one (the
// real repos.Manager) serve reconcile, the origin state of the repositories and the
// reconcile after an unpin.
type Reconciler interface {
	Reconcile(ctx context.Context, repo string) (repos.Check, error)
	// ReconcileUnpinned is Reconcile just after repo's pin was lifted.
	ReconcileUnpinned(ctx context.Context, repo string) (repos.Check, error)
	OriginState(repo string) repos.OriginState
	// Deploys reports whether this gateway deploys repo (has its checkout).
	Deploys(repo string) bool
}

// Check is what one reconcile found and did; OriginState the last look-up of origin.
type (
	Check       = repos.Check
	OriginState = repos.OriginState
)

// ErrOriginLookUp marks a failed look-up of origin's head: Reconcile returns it with the
// check, which still says what is live.
var ErrOriginLookUp = repos.ErrOriginLookUp

// CheckResults are the results a reconcile check counts in the metrics.
var CheckResults = []string{repos.CheckInSync, repos.CheckDrift, repos.CheckDeployed, repos.CheckError}

// App carries out what operators and deliveries ask for.
type App struct {
	store   *store.Store
	workers Workers
	// reconciler is workers when they can look up origin (the real repos.Manager).
	reconciler Reconciler
	log        *slog.Logger
	repos      atomic.Pointer[repoSet]
	// now is the clock a replay is received by.
	now func() time.Time
	// health is workers when they run health checks (the real repos.Manager).
	health HealthChecker
}

// repoSet is the configured repositories as one immutable value.
type repoSet struct {
	byName map[string]Repo
	names  []string // sorted
}

// New builds the App. When w is also a Reconciler, reconcile and origin state are served.
func New(st *store.Store, w Workers, list []Repo, log *slog.Logger) *App {
	if log == nil {
		log = slog.Default()
	}
	a := &App{store: st, workers: w, log: log, now: func() time.Time { return time.Now().UTC() }}
	a.reconciler, _ = w.(Reconciler)
	a.health, _ = w.(HealthChecker)
	a.SetRepos(list)
	return a
}

// SetNow replaces the clock; the server's SetNow passes its own on (tests use it).
func (a *App) SetNow(now func() time.Time) { a.now = now }

// SetRepos swaps in the configured repositories (a reload).
func (a *App) SetRepos(list []Repo) {
	rs := &repoSet{byName: make(map[string]Repo, len(list))}
	for _, r := range list {
		rs.byName[r.Name] = r
		rs.names = append(rs.names, r.Name)
	}
	sort.Strings(rs.names)
	a.repos.Store(rs)
}

// repo returns the repository configured under name now.
func (a *App) repo(name string) (Repo, bool) {
	r, ok := a.repos.Load().byName[name]
	return r, ok
}

// Names returns the configured repository names, sorted. The slice is shared: do not
// modify.
func (a *App) Names() []string { return a.repos.Load().names }

// short is a commit's first seven characters, as logs and reasons show it.
func short(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}
