// This file owns one repository's worker: its loop, claiming a queued deploy, recording the
// result.
package repos

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

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

	// claiming: runOnce is between its start and the end of its claim; verifying: how many
	// checks on demand (Manager.Verify) are probing the checkout. Both under mu; idle is
	// signalled when a claim ends. Together they keep a deploy and such a check apart.
	claiming  bool
	verifying int
	idle      sync.Cond
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
	if !w.beginClaim() {
		return false // a check on demand is probing; it wakes the worker when it ends
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	dp, err := m.store.ClaimDeploy(ctx, r.Name)
	cancel()
	if errors.Is(err, store.ErrNotFound) {
		w.setRunning(0)
		return false
	}
	if err != nil {
		w.setRunning(0)
		m.log.Error("claim deploy", "repo", r.Name, "err", err)
		return false
	}
	w.lastStart = time.Now()
	w.setRunning(dp.ID)
	defer w.setRunning(0)

	m.log.Info("deploy started", "deploy_id", dp.ID, "repo", r.Name, "trigger", dp.Trigger, "delivery", dp.DeliveryGUID)
	start := time.Now()
	out := newTailBuffer()
	unlist := m.live(dp.ID, out)
	res, v := w.deploy(dp, r, out)

	took := time.Since(start)
	var hf store.HealthFailure
	if res.Status == store.DeployFailed && (v.result == HealthFailed || dp.Trigger == store.TriggerAutoRollback) {
		rollback := v.result == HealthFailed && r.Health.OnFailure == HealthRollback
		hf = m.recordHealthFailure(dp, res, rollback)
	} else {
		m.recordResult(dp, res)
	}
	if v.result != "" && m.onHealth != nil {
		m.onHealth(r.Name, v.result, v.took)
	}
	// Only now: a watcher that sees the end reads the result from the store.
	out.end()
	unlist()
	m.log.Info("deploy finished", "deploy_id", dp.ID, "repo", r.Name, "delivery", dp.DeliveryGUID, "status", res.Status,
		"from", short(res.FromCommit), "to", short(res.ToCommit), "duration", took.Round(time.Millisecond),
		"error", res.Error)
	dp.Status, dp.FromCommit, dp.ToCommit, dp.Error = res.Status, res.FromCommit, res.ToCommit, res.Error
	dp.FinishedAt = time.Now().UTC()
	if sequel := hf.Describe(r.Name); sequel != "" {
		// The notification of the failure says what follows it.
		dp.Error += "; " + sequel
		m.log.Warn("health check failed", "deploy_id", dp.ID, "repo", r.Name, "then", sequel)
	}
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
	m.recordWith(dp, func(ctx context.Context) error { return m.store.FinishDeploy(ctx, dp.ID, res) })
}

// recordHealthFailure records, as recordResult does, a deploy failed by its health check
// (or an automatic rollback that failed): the bad commit, the rollback queued or the pin
// (store.FinishHealthFailure).
func (m *Manager) recordHealthFailure(dp store.Deploy, res store.Result, rollback bool) store.HealthFailure {
	var hf store.HealthFailure
	m.recordWith(dp, func(ctx context.Context) error {
		var err error
		hf, err = m.store.FinishHealthFailure(ctx, dp.ID, res, rollback)
		return err
	})
	return hf
}

// recordWith runs finish, which records how dp ended, until it succeeds (see recordResult).
func (m *Manager) recordWith(dp store.Deploy, finish func(context.Context) error) {
	wait := time.Second
	for attempt := 1; ; attempt++ {
		// A fresh context, not the deploy's: the end is recorded even when shutting down.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := finish(ctx)
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

// setRunning records the deploy running (0: none) and ends a claim.
func (w *worker) setRunning(id int64) {
	w.mu.Lock()
	w.running = id
	w.claiming = false
	w.idle.Broadcast()
	w.mu.Unlock()
}

// beginClaim starts a claim unless a check on demand is probing the checkout.
func (w *worker) beginClaim() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.verifying > 0 {
		return false
	}
	w.claiming = true
	return true
}

// beginVerify starts a check on demand, or returns ErrDeployRunning (with the deploy's id)
// while a deploy is running or verifying in the checkout. A claim under way is waited for
// (one short transaction), so the answer is never a guess.
func (w *worker) beginVerify() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.claiming {
		w.idle.Wait()
	}
	if w.running != 0 {
		return fmt.Errorf("deploy %d of %s is running in the checkout: %w", w.running, w.repo.Name, ErrDeployRunning)
	}
	w.verifying++
	return nil
}

// endVerify ends a check on demand and wakes the worker, whose claim may have given way.
func (w *worker) endVerify() {
	w.mu.Lock()
	w.verifying--
	w.mu.Unlock()
	w.notify()
}
