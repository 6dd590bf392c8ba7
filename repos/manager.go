// This file owns the Manager: one worker per configured repository, started, reconfigured,
// woken and stopped here; and what it tells of finished deploys (DeployObserver).

// Package repos runs deploys: one worker goroutine per repository claims that repository's
// queued deploy from the store, brings the checkout up to the branch with go-git, and runs
// the deploy commands. One goroutine per repository means one deploy per checkout at a
// time; a semaphore bounds how many repositories deploy at once.
package repos

import (
	"context"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

// Repo is one configured repository as its worker sees it.
type Repo struct {
	checkout.Spec
	Commands []string
	// Health, when set, is the check a deploy must pass after its commands (health.go).
	Health  *Health
	Timeout time.Duration
	// RunAs, when set, is the account the commands run as; the checkout is handed over
	// to it after each update (see handOver). Nil: the gateway's own user.
	RunAs *Account
	Poll  time.Duration // how often origin's head is checked (see reconcile.go); 0: never
	Tags  string        // a tag target: deploys pushes of tags matching this path.Match glob; "" deploys Branch
	Paths []string      // deploy only when a file matching one of these (** any depth) changed since live
}

// Options configures a Manager.
type Options struct {
	Workers int // repositories deployed at once
	// MaxClones bounds the first clones in flight (default 1): a clone's memory grows with
	// the repository, so several at once would multiply the gateway's peak.
	MaxClones int

	Env    []string // base environment of deploy commands, without the gateway's secrets
	Logger *slog.Logger
	// OnDeployFinished, when set, is called after each deploy is recorded (see metrics.go).
	OnDeployFinished DeployObserver
	// OnOriginCheck, when set, is called after each look-up of origin's head with its
	// result (CheckInSync, CheckDrift, CheckDeployed or CheckError).
	OnOriginCheck func(repo, result string)
	// OnHealthChecked, when set, is called after each deploy's health check with its
	// result (HealthPassed, HealthFailed or HealthSuperseded) and how long it took.
	OnHealthChecked func(repo, result string, took time.Duration)
	// SweepEvery is how often the workers' queue is read for deploys that nobody woke a
	// worker for (default DefaultSweepEvery); see sweep.
	SweepEvery time.Duration
}

// DefaultSweepEvery is Options.SweepEvery when unset: what a lost wake-up costs at most.
const DefaultSweepEvery = 30 * time.Second

// minDeploySpacing is the least time between the starts of two deploys of one repository.
// A push to an idle repository deploys at once; a push that comes within this time of the
// last deploy's start waits for the rest of it, joined meanwhile by every push after it. So
// a burst of pushes makes two or three deploys, not one per deploy duration, and a deploy
// that takes longer than this is never held back.
const minDeploySpacing = time.Second

// progressEvery is how often a running deploy's output is saved for the history page.
const progressEvery = time.Second

// Manager owns the workers.
type Manager struct {
	store   *store.Store
	sem     chan struct{}
	clones  chan struct{} // bounds first clones, taken before sem so a waiting clone holds no worker
	log     *slog.Logger
	observe DeployObserver
	onCheck func(repo, result string)
	// onHealth learns of each deploy's health check (Options.OnHealthChecked).
	onHealth func(repo, result string, took time.Duration)
	checks   chan struct{} // bounds concurrent look-ups of origin (maxChecks)
	// sweepEvery is the period of sweep.
	sweepEvery time.Duration

	mu      sync.Mutex
	workers map[string]*worker // the configured repositories' workers
	// retiring holds workers of repositories a reload removed, until their running
	// deploy ends; a repository added back waits for its old worker first.
	retiring map[string]*worker
	env      []string // base environment of deploy commands
	started  bool

	liveMu  sync.Mutex
	outputs map[int64]*tailBuffer // the running deploys' output, by deploy id (livelog.go)

	// stopping ends the claim loops; killing ends running deploys.
	stopping context.Context
	stop     context.CancelFunc
	killing  context.Context
	kill     context.CancelFunc
	wg       sync.WaitGroup
	// startedUp is closed once every worker's start-up look-up of origin is over (or
	// will not happen, as with poll 0).
	startedUp chan struct{}
}

// NewManager prepares a worker for each repository; Start runs them.
func NewManager(st *store.Store, repos []Repo, opts Options) *Manager {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	if opts.MaxClones < 1 {
		opts.MaxClones = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SweepEvery <= 0 {
		opts.SweepEvery = DefaultSweepEvery
	}
	m := &Manager{
		store:    st,
		workers:  make(map[string]*worker, len(repos)),
		retiring: map[string]*worker{},
		outputs:  map[int64]*tailBuffer{},
		sem:      make(chan struct{}, opts.Workers),
		clones:   make(chan struct{}, opts.MaxClones),
		env:      opts.Env,
		log:      opts.Logger,
		observe:  opts.OnDeployFinished,
		onCheck:  opts.OnOriginCheck,
		onHealth: opts.OnHealthChecked,
		checks:   make(chan struct{}, maxChecks),

		sweepEvery: opts.SweepEvery,

		startedUp: make(chan struct{}),
	}
	m.stopping, m.stop = context.WithCancel(context.Background())
	m.killing, m.kill = context.WithCancel(context.Background())
	for _, r := range repos {
		m.workers[r.Name] = m.newWorker(r)
	}
	return m
}

func (m *Manager) newWorker(r Repo) *worker {
	ctx, retire := context.WithCancel(m.stopping)
	// A context makes its Done channel and its table of children on first use, which for
	// a worker's is the start-up look-up of origin: two long-lived objects among that
	// look-up's garbage, pinning a page of the heap each, per repository (0.5 MB of
	// resident memory with 100). Make them now, beside the worker.
	ctx.Done()
	_, cancel := context.WithCancel(ctx)
	cancel()
	// A capacity of one merges a burst of wake-ups into one: the worker drains the
	// queue each time it wakes, so nothing is missed.
	w := &worker{m: m, repo: r, wake: make(chan struct{}, 1), ctx: ctx, retire: retire, done: make(chan struct{}),
		repoll: make(chan struct{}, 1)}
	w.idle.L = &w.mu
	return w
}

// Start runs every worker and wakes those whose repository has a deploy left queued by an
// earlier run (or re-queued after a crash), so it is picked up. The others sleep until
// Wake (or the sweep): waking all of them would run one claim transaction per repository at
// start, and each would grow its goroutine's stack through SQLite's deep frames and keep it so while
// idle (about 2 MB of resident memory with 100 repositories). If the queue cannot be read,
// every worker is woken and claims for itself.
func (m *Manager) Start() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	queued, err := m.store.QueuedRepos(ctx)
	cancel()
	if err != nil {
		m.log.Warn("list queued deploys at start; waking every worker to claim its own", "err", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.started = true
	var startup sync.WaitGroup
	for name, w := range m.workers {
		startup.Add(1)
		w.startupDone = sync.OnceFunc(startup.Done)
		m.run(w, nil)
		if err != nil || slices.Contains(queued, name) {
			w.notify()
		}
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.sweep()
	}()
	go func() {
		startup.Wait()
		close(m.startedUp)
		// The start-up look-ups of origin (one per repository) leave garbage that an
		// idle gateway would keep until the next forced GC: about 5 MB of resident
		// memory with 100 repositories. Hand it back once they are done.
		debug.FreeOSMemory()
	}()
}

// run starts w's goroutine (m.mu held); after, when set, is a worker of the same
// repository that must finish first.
func (m *Manager) run(w *worker, after *worker) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(w.done)
		if after != nil {
			select {
			case <-after.done:
			case <-m.stopping.Done():
				return
			}
		}
		w.loop()
	}()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if after != nil {
			select {
			case <-after.done:
			case <-m.stopping.Done():
				return
			}
		}
		w.poll()
	}()
}

// Changes says what Apply did.
type Changes struct {
	Added, Removed, Changed []string // repository names, sorted
}

// Apply makes the configured repositories repos, as a configuration reload does:
//   - a new repository gets a worker, woken at once for a deploy already queued;
//   - a removed repository's worker claims nothing more; a deploy it is running finishes
//     and is recorded as usual, then the worker stops. Its queued deploy, if any, stays
//     queued in the store for when the repository comes back;
//   - a changed repository's next deploy uses the new settings; a running one finishes
//     with the settings it started with.
//
// env replaces the base environment of deploy commands.
func (m *Manager) Apply(repos []Repo, env []string) Changes {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.env = env
	var ch Changes
	keep := make(map[string]bool, len(repos))
	for _, r := range repos {
		keep[r.Name] = true
		if w, ok := m.workers[r.Name]; ok {
			if w.update(r) {
				ch.Changed = append(ch.Changed, r.Name)
				w.notify()
			}
			continue
		}
		w := m.newWorker(r)
		m.workers[r.Name] = w
		ch.Added = append(ch.Added, r.Name)
		if m.started {
			m.run(w, m.retiring[r.Name])
			w.notify() // for a deploy already queued for it
		}
	}
	for name, w := range m.workers {
		if keep[name] {
			continue
		}
		delete(m.workers, name)
		ch.Removed = append(ch.Removed, name)
		w.retire()
		if !m.started {
			continue
		}
		m.retiring[name] = w
		go func() {
			<-w.done
			m.mu.Lock()
			if m.retiring[name] == w {
				delete(m.retiring, name)
			}
			m.mu.Unlock()
		}()
	}
	slices.Sort(ch.Added)
	slices.Sort(ch.Removed)
	slices.Sort(ch.Changed)
	return ch
}

// baseEnv is the environment deploy commands start from now.
func (m *Manager) baseEnv() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.env
}

// Wake wakes repo's worker; it never blocks.
func (m *Manager) Wake(repo string) {
	m.mu.Lock()
	w, ok := m.workers[repo]
	m.mu.Unlock()
	if ok {
		w.notify()
	}
}

// sweep wakes, every sweepEvery until Stop, the workers whose repository has a deploy
// queued for this node: the net under the wake-ups, so that a lost one (a caller that did
// not wake, a crash between the commit and the wake) costs at most one period. It reads the
// queue in one query, as Start does, and wakes only the workers listed: waking every idle
// worker would run a claim each and grow its stack (see Start).
func (m *Manager) sweep() {
	t := time.NewTicker(m.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-m.stopping.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(m.stopping, 30*time.Second)
		queued, err := m.store.QueuedRepos(ctx)
		cancel()
		if err != nil {
			if m.stopping.Err() == nil {
				m.log.Warn("sweep: list queued deploys", "err", err)
			}
			continue
		}
		for _, name := range queued {
			m.Wake(name)
		}
	}
}

// Running returns the id of repo's running deploy, or 0. A repository a reload removed
// (or removed and added back) shows the deploy its old worker is finishing.
func (m *Manager) Running(repo string) int64 {
	m.mu.Lock()
	ws := []*worker{m.workers[repo], m.retiring[repo]}
	m.mu.Unlock()
	for _, w := range ws {
		if w == nil {
			continue
		}
		w.mu.Lock()
		id := w.running
		w.mu.Unlock()
		if id != 0 {
			return id
		}
	}
	return 0
}

// Stop stops claiming new deploys and waits up to grace for running ones to finish; what
// is still running then is killed and recorded as interrupted (and queued again).
func (m *Manager) Stop(grace time.Duration) {
	m.stop()
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	m.log.Warn("deploys still running after the shutdown grace period; interrupting them", "grace", grace)
	m.kill()
	<-done
}

// DeployObserver learns of each finished deploy once its result is recorded: the deploy
// as stored (status succeeded, failed or interrupted, commits, error, times) and how long
// it took. The gateway feeds its metrics and notifications with it.
type DeployObserver func(dp store.Deploy, took time.Duration)

// observeDeploy tells the observer, if any. It runs on the worker's goroutine after the
// result is recorded, so a slow observer delays only that repository's next deploy.
func (m *Manager) observeDeploy(dp store.Deploy, took time.Duration) {
	if m.observe != nil {
		m.observe(dp, took)
	}
}
