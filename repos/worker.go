// Package repos runs deploys: one worker goroutine per repository claims that repository's
// queued deploy from the store, brings the checkout up to the branch with go-git, and runs
// the deploy commands. One goroutine per repository means one deploy per checkout at a
// time; a semaphore bounds how many repositories deploy at once.
package repos

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"reflect"
	"runtime"
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
	Timeout  time.Duration
	// RunAs, when set, is the account the commands run as; the checkout is handed over
	// to it after each update (see handOver). Nil: the gateway's own user.
	RunAs *Account
	Poll  time.Duration // how often origin's head is checked (see reconcile.go); 0: never
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
}

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
	checks  chan struct{} // bounds concurrent look-ups of origin (maxChecks)

	mu      sync.Mutex
	workers map[string]*worker // the configured repositories' workers
	// retiring holds workers of repositories a reload removed, until their running
	// deploy ends; a repository added back waits for its old worker first.
	retiring map[string]*worker
	env      []string // base environment of deploy commands
	started  bool

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

type worker struct {
	m    *Manager
	wake chan struct{}
	// ctx ends when the manager stops or a reload removes the repository (retire); the
	// worker then claims nothing more.
	ctx    context.Context
	retire context.CancelFunc
	done   chan struct{} // closed when the worker's goroutine has returned

	mu      sync.Mutex
	repo    Repo // replaced by a reload; a running deploy keeps the copy it started with
	running int64
	origin  originRecord // the last look-up of origin's head
	// repoll tells the poller that a reload changed the settings (its interval may differ).
	repoll chan struct{}
	// startupDone, set by Start, is called once the start-up look-up of origin is over
	// (or will not happen).
	startupDone func()

	lastStart time.Time // when this worker last claimed a deploy; only its goroutine uses it
	// cloneDone gives back the clone slot the worker holds for its next deploy, if any;
	// the deploy calls it once the checkout is updated, so the commands run without it.
	// Only the worker's goroutine uses it.
	cloneDone func()
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
	m := &Manager{
		store:    st,
		workers:  make(map[string]*worker, len(repos)),
		retiring: map[string]*worker{},
		sem:      make(chan struct{}, opts.Workers),
		clones:   make(chan struct{}, opts.MaxClones),
		env:      opts.Env,
		log:      opts.Logger,
		observe:  opts.OnDeployFinished,
		onCheck:  opts.OnOriginCheck,
		checks:   make(chan struct{}, maxChecks),

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
	return &worker{m: m, repo: r, wake: make(chan struct{}, 1), ctx: ctx, retire: retire, done: make(chan struct{}),
		repoll: make(chan struct{}, 1)}
}

// Start runs every worker and wakes those whose repository has a deploy left queued by an
// earlier run (or re-queued after a crash), so it is picked up. The others sleep until
// Notify: waking all of them would run one claim transaction per repository at start, and
// each would grow its goroutine's stack through SQLite's deep frames and keep it so while
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

// Notify wakes repo's worker; it never blocks.
func (m *Manager) Notify(repo string) {
	m.mu.Lock()
	w, ok := m.workers[repo]
	m.mu.Unlock()
	if ok {
		w.notify()
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

// config returns the repository's settings as they are now.
func (w *worker) config() Repo {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.repo
}

// update replaces the settings and reports whether they differ.
func (w *worker) update(r Repo) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if reflect.DeepEqual(w.repo, r) {
		return false
	}
	w.repo = r
	select {
	case w.repoll <- struct{}{}:
	default:
	}
	return true
}

func (w *worker) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) loop() {
	m := w.m
	stopped := w.ctx.Done()
	for {
		select {
		case <-stopped:
			return
		case <-w.wake:
		}
		for {
			if wait := time.Until(w.lastStart.Add(minDeploySpacing)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-stopped:
					t.Stop()
					return
				}
			}
			w.cloneDone = func() {}
			if w.needsClone() {
				select {
				case m.clones <- struct{}{}:
				case <-stopped:
					return
				}
				w.cloneDone = sync.OnceFunc(func() { <-m.clones })
			}
			select {
			case m.sem <- struct{}{}:
			case <-stopped:
				w.cloneDone()
				return
			}
			ran := w.runOnce()
			<-m.sem
			w.cloneDone()
			if !ran || w.ctx.Err() != nil {
				break
			}
		}
	}
}

// needsClone says whether the next deploy would fetch as much as a clone, and so takes
// one of max_clones' slots: the checkout does not exist yet and there is a url to clone
// from, or it is shallow and depth has been removed (the next fetch brings the whole
// history).
func (w *worker) needsClone() bool {
	r := w.config()
	_, err := os.Stat(r.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return r.URL != ""
	}
	if err != nil || r.Depth != 0 {
		return false
	}
	shallow, err := checkout.Shallow(r.Path)
	return err == nil && shallow
}

// runOnce claims and runs repo's queued deploy, if there is one. Tests call it to step a
// worker without its loop.
func (w *worker) runOnce() bool {
	m := w.m
	r := w.config()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	dp, err := m.store.ClaimDeploy(ctx, r.Name)
	cancel()
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		m.log.Error("claim deploy", "repo", r.Name, "err", err)
		return false
	}
	w.lastStart = time.Now()
	w.setRunning(dp.ID)
	defer w.setRunning(0)

	m.log.Info("deploy started", "deploy_id", dp.ID, "repo", r.Name, "trigger", dp.Trigger, "delivery", dp.DeliveryGUID)
	start := time.Now()
	res := w.deploy(dp, r)

	took := time.Since(start)
	m.recordResult(dp, res)
	m.log.Info("deploy finished", "deploy_id", dp.ID, "repo", r.Name, "delivery", dp.DeliveryGUID, "status", res.Status,
		"from", short(res.FromCommit), "to", short(res.ToCommit), "duration", took.Round(time.Millisecond),
		"error", res.Error)
	dp.Status, dp.FromCommit, dp.ToCommit, dp.Error = res.Status, res.FromCommit, res.ToCommit, res.Error
	dp.FinishedAt = time.Now().UTC()
	m.observeDeploy(dp, took)
	return true
}

// recordResult records how dp ended, trying again while the database cannot be reached
// (a PostgreSQL restart, a network cut): a result never recorded would leave the deploy
// "running" until the gateway restarts, and the worker claims nothing more of the
// repository meanwhile, which is what one deploy at a time asks. Once the gateway is
// shutting down it tries once more and leaves the deploy to the next start, which marks it
// interrupted and queues it again. A deploy that is no longer running (a node taken out of
// the fleet ended it) is not retried.
func (m *Manager) recordResult(dp store.Deploy, res store.Result) {
	wait := time.Second
	for attempt := 1; ; attempt++ {
		// A fresh context, not the deploy's: the end is recorded even when shutting down.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := m.store.FinishDeploy(ctx, dp.ID, res)
		cancel()
		if err == nil {
			if attempt > 1 {
				m.log.Info("deploy result recorded", "deploy_id", dp.ID, "repo", dp.Repo, "attempts", attempt)
			}
			return
		}
		if errors.Is(err, store.ErrConflict) || m.stopping.Err() != nil {
			m.log.Error("record deploy result", "deploy_id", dp.ID, "repo", dp.Repo, "err", err)
			return
		}
		m.log.Error("record deploy result; trying again", "deploy_id", dp.ID, "repo", dp.Repo,
			"attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-m.stopping.Done():
			t.Stop()
		}
		wait = min(2*wait, maxRecordWait)
	}
}

// maxRecordWait bounds the wait between two attempts to record a deploy's result.
const maxRecordWait = 30 * time.Second

func (w *worker) setRunning(id int64) {
	w.mu.Lock()
	w.running = id
	w.mu.Unlock()
}

// deploy updates the checkout and runs the commands of r (the repository's settings when
// the deploy was claimed), within r's timeout.
func (w *worker) deploy(dp store.Deploy, r Repo) store.Result {
	m := w.m
	ctx, cancel := context.WithTimeout(m.killing, r.Timeout)
	defer cancel()

	out := newTailBuffer()
	var mu sync.Mutex
	var from, to string
	stopProgress := w.saveProgress(dp.ID, out, func() (string, string) {
		mu.Lock()
		defer mu.Unlock()
		return from, to
	})

	res := store.Result{Status: store.DeploySucceeded}
	fail := func(format string, args ...any) {
		res.Status = store.DeployFailed
		res.Error = fmt.Sprintf(format, args...)
		switch {
		case m.killing.Err() != nil:
			res.Status = store.DeployInterrupted
			res.Error = "interrupted: the gateway shut down during the deploy (" + res.Error + ")"
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			res.Error = fmt.Sprintf("deploy timed out after %s: %s", r.Timeout, res.Error)
		}
		out.Printf("hookgate: %s", res.Error)
	}

	out.Printf("hookgate: deploy %d of %s (%s), branch %s", dp.ID, r.Name, dp.Trigger, r.Branch)
	if dp.Target != "" {
		out.Printf("hookgate: moving to %s (%s)", short(dp.Target), dp.Trigger)
	}
	var upd checkout.UpdateResult
	var err error
	if r.RunAs != nil {
		err = reclaim(r.Path, r.RunAs)
	}
	if err == nil {
		upd, err = checkout.UpdateTo(ctx, r.Spec, dp.Target)
	}
	if w.cloneDone != nil {
		w.cloneDone()
	}
	mu.Lock()
	from, to = upd.From, upd.To
	mu.Unlock()
	res.FromCommit, res.ToCommit = upd.From, upd.To
	if err != nil && upd.Target != "" {
		// The commit this deploy was for, though HEAD did not move: a reconcile then
		// knows this head was attempted and does not queue it again on every poll.
		res.ToCommit = upd.Target
	}
	// A clone or fetch that failed or was refused may have held as much as one that
	// landed: give it back either way.
	if upd.Cloned || upd.From != upd.To || err != nil {
		releaseMemory()
	}
	switch {
	case err != nil:
		fail("update checkout: %v", err)
	case upd.Cloned:
		out.Printf("hookgate: cloned %s at %s", r.Branch, short(upd.To))
	case upd.From == upd.To:
		out.Printf("hookgate: checkout already at %s", short(upd.To))
	default:
		out.Printf("hookgate: updated %s → %s (%d files changed)", short(upd.From), short(upd.To), upd.Changed)
	}
	if err == nil && r.RunAs != nil {
		if err = handOver(r.Path, r.RunAs); err != nil {
			fail("%v", err)
		} else {
			out.Printf("hookgate: commands run as %s (uid %d)", r.RunAs.Name, r.RunAs.UID)
		}
	}
	if err == nil {
		env := append(slices.Clone(m.baseEnv()),
			"HOOKGATE_REPO="+r.Name,
			"HOOKGATE_COMMIT="+upd.To,
			"HOOKGATE_PREVIOUS_COMMIT="+upd.From,
			"HOOKGATE_REF=refs/heads/"+r.Branch,
			"HOOKGATE_DELIVERY="+dp.DeliveryGUID,
			"HOOKGATE_TRIGGER="+dp.Trigger,
			fmt.Sprintf("HOOKGATE_DEPLOY=%d", dp.ID),
		)
		for i, c := range r.Commands {
			out.Printf("$ %s", c)
			if err := runCommand(ctx, c, r.Path, env, r.RunAs, out); err != nil {
				fail("command %d of %d (%s) failed: %v", i+1, len(r.Commands), c, err)
				break
			}
		}
	}
	if res.Status == store.DeploySucceeded {
		out.Printf("hookgate: deploy succeeded")
	}
	stopProgress()
	res.Log, _ = out.Snapshot()
	return res
}

// saveProgress stores the deploy's output every progressEvery while it runs, so the history
// shows a deploy live. The returned func stops it and waits.
func (w *worker) saveProgress(id int64, out *tailBuffer, commits func() (string, string)) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		var saved int64
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			log, version := out.Snapshot()
			if version == saved {
				continue
			}
			from, to := commits()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := w.m.store.UpdateDeployProgress(ctx, id, from, to, log); err != nil {
				w.m.log.Warn("save deploy progress", "deploy_id", id, "err", err)
			}
			cancel()
			saved = version
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// releaseMemory gives the memory of a clone or fetch back to the system. Left to itself the
// runtime would keep it: an idle gateway allocates too little to start a collection, so
// the heap stayed at a clone's peak for minutes. Two collections, because go-git parks its
// largest buffers in a sync.Pool, which only the second one empties.
func releaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

func short(hash string) string {
	if len(hash) > 7 {
		return hash[:7]
	}
	return hash
}
