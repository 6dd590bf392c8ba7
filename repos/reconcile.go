package repos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hookgate/hookgate/repos/checkout"
)

// Results of a look-up of origin's head, as the metrics count them.
const (
	CheckInSync   = "in_sync"  // origin's head is live
	CheckDrift    = "drift"    // it is not, and nothing was queued (pinned, busy, or attempted)
	CheckDeployed = "deployed" // a reconcile deploy was queued
	CheckError    = "error"    // the look-up failed
)

var (
	// ErrUnknownRepo means no repository of that name is configured.
	ErrUnknownRepo = errors.New("no such repository")
	// ErrOriginLookUp marks a failed look-up of origin's head.
	ErrOriginLookUp = errors.New("origin look-up failed")
)

// maxChecks bounds the look-ups of origin that run at once: at start-up every repository
// checks, and a hundred ref listings and transactions at once would cost memory for no
// gain.
const maxChecks = 4

// maxCheckTime bounds one look-up of origin's head (less when the repository's deploy
// timeout is shorter): it is one round trip, not a fetch.
const maxCheckTime = time.Minute

// OriginState is the last look-up of a repository's origin head.
type OriginState struct {
	Commit    string    // origin's branch head; "" when the look-up failed
	CheckedAt time.Time // zero before the first look-up
	Error     string    // why the look-up failed, credentials redacted
}

// Check is what one reconcile found and did.
type Check struct {
	Repo     string
	Origin   string // origin's branch head
	Live     string // the live commit it was compared with
	DeployID int64  // the reconcile deploy queued, 0 when none
	InFlight int64  // when nothing was queued because a deploy is queued or running: that deploy
	Reason   string // the deploy's reason, or why nothing was queued
	Result   string // CheckInSync, CheckDrift or CheckDeployed
}

// OriginState returns repo's last look-up of origin's head.
func (m *Manager) OriginState(repo string) OriginState {
	m.mu.Lock()
	w := m.workers[repo]
	m.mu.Unlock()
	if w == nil {
		return OriginState{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	st := OriginState{CheckedAt: w.origin.checkedAt, Error: w.origin.err}
	if !w.origin.commit.IsZero() {
		st.Commit = w.origin.commit.String()
	}
	return st
}

// originRecord is a worker's OriginState, with the commit as a value rather than a
// string: set after each look-up, among its garbage, a string would be a long-lived
// object that keeps a page of the heap resident for every repository.
type originRecord struct {
	commit    checkout.Hash
	checkedAt time.Time
	err       string
}

// Deploys reports whether this gateway deploys repo: it has a worker for it (a repository
// whose nodes list leaves this node out has none).
func (m *Manager) Deploys(repo string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.workers[repo] != nil
}

// Reconcile looks up origin's head of repo now and queues a deploy with trigger
// "reconcile" when it is neither live nor the newest deploy's commit, nothing is queued or
// running, and repo is not pinned (see store.Reconcile). A failed look-up is an error.
func (m *Manager) Reconcile(ctx context.Context, repo string) (Check, error) {
	m.mu.Lock()
	w := m.workers[repo]
	m.mu.Unlock()
	if w == nil {
		return Check{}, fmt.Errorf("reconcile %q: %w", repo, ErrUnknownRepo)
	}
	return w.reconcile(ctx, "a push was not delivered")
}

// OriginHead looks up now what a manual deploy of repo would deploy: origin's branch head
// (one ref listing), or for a tag target the commit of origin's newest matching tag. A
// manual deploy needs it to refuse a bad commit, and to wait for the forge's checks of the
// commit they are for. A failed look-up wraps ErrOriginLookUp; a repository without a
// worker here, ErrUnknownRepo.
func (m *Manager) OriginHead(ctx context.Context, repo string) (string, error) {
	m.mu.Lock()
	w := m.workers[repo]
	m.mu.Unlock()
	if w == nil {
		return "", fmt.Errorf("origin head of %q: %w", repo, ErrUnknownRepo)
	}
	r := w.config()
	lctx, cancel := context.WithTimeout(ctx, min(r.Timeout, maxCheckTime))
	defer cancel()
	var head string
	var err error
	if r.Tags != "" {
		var t checkout.TagRef
		t, err = newestTag(lctx, r)
		head = t.Commit
	} else {
		head, err = checkout.OriginHead(lctx, r.Spec)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrOriginLookUp, err)
	}
	return head, nil
}

// ReconcileUnpinned is Reconcile right after repo's pin was lifted (here or by another
// node): a deploy it queues says so, rather than blaming a lost push (the pushes made
// meanwhile were delivered, and ignored for the pin).
func (m *Manager) ReconcileUnpinned(ctx context.Context, repo string) (Check, error) {
	m.mu.Lock()
	w := m.workers[repo]
	m.mu.Unlock()
	if w == nil {
		return Check{}, fmt.Errorf("reconcile %q: %w", repo, ErrUnknownRepo)
	}
	return w.reconcile(ctx, "the pin is lifted, so origin's head deploys")
}

// reconcile looks origin up and queues a deploy of its head when needed; cause says why
// origin's head is not live, for that deploy's reason.
func (w *worker) reconcile(ctx context.Context, cause string) (Check, error) {
	m := w.m
	r := w.config()
	c := Check{Repo: r.Name}
	lctx, cancel := context.WithTimeout(ctx, min(r.Timeout, maxCheckTime))
	// what names origin's side in the reasons: its branch, or a tag target's newest tag.
	head, ref, what := "", "", r.Branch
	var err error
	if r.Tags != "" {
		var t checkout.TagRef
		if t, err = newestTag(lctx, r); err == nil {
			head, ref, what = t.Commit, "refs/tags/"+t.Name, "tag "+t.Name
		}
	} else {
		head, err = checkout.OriginHead(lctx, r.Spec)
	}
	cancel()
	if err != nil {
		w.setOrigin(originRecord{checkedAt: time.Now().UTC(), err: err.Error()})
		m.checked(r.Name, CheckError)
		m.log.Warn("origin look-up failed", "repo", r.Name, "err", err)
		return c, fmt.Errorf("%w: %w", ErrOriginLookUp, err)
	}
	c.Origin = head
	checkoutHead, _, _ := checkout.Head(r.Path) // stands for live before the first deploy
	why := func(live string) string {
		if live == "" {
			// Only queued when another node of the fleet has deployed the repository.
			return fmt.Sprintf("origin %s at %s, nothing live on this node yet: catching up with the fleet", what, short(head))
		}
		return fmt.Sprintf("origin %s at %s, live %s: %s", what, short(head), short(live), cause)
	}
	d, err := m.store.ReconcileRef(ctx, r.Name, head, ref, checkoutHead, why)
	if err != nil {
		return c, err
	}
	w.setOrigin(originRecord{commit: checkout.NewHash(head), checkedAt: time.Now().UTC()})
	c.Live = d.Live
	switch {
	case d.DeployID != 0:
		c.DeployID, c.Result = d.DeployID, CheckDeployed
		c.Reason = why(d.Live)
		m.log.Warn("origin is ahead of what is live; reconcile deploy queued", "repo", r.Name,
			"origin", short(head), "live", short(d.Live), "deploy_id", d.DeployID)
	case head == d.Live:
		c.Result, c.Reason = CheckInSync, fmt.Sprintf("in sync: origin %s at %s is live", what, short(head))
	case head == d.Newest && d.NewestSkipped && !d.Busy && d.Pin == nil:
		// Deploying it again would be skipped again, on every poll.
		c.Result, c.Reason = CheckInSync, fmt.Sprintf("in sync: origin %s at %s changed nothing under paths since live %s (its deploy was skipped)",
			what, short(head), describeLive(d.Live))
	default:
		c.Result = CheckDrift
		switch {
		case d.Live == "":
			c.Reason = fmt.Sprintf("origin %s at %s; nothing is deployed yet: the first push or a manual deploy clones it", what, short(head))
		case d.Pin != nil:
			c.Reason = fmt.Sprintf("pinned at %s: origin %s at %s is not deployed until unpinned", short(d.Pin.Commit), what, short(head))
		case d.Bad != "":
			c.Reason = fmt.Sprintf("origin %s at %s is not deployed: %s; clear it or push another commit", what, short(head), d.Bad)
		case d.Busy:
			c.InFlight = d.InFlight
			c.Reason = fmt.Sprintf("origin %s at %s, live %s: a deploy is queued or running", what, short(head), describeLive(d.Live))
		default:
			c.Reason = fmt.Sprintf("origin %s at %s was attempted by the newest deploy; it is retried on the next push or a manual deploy",
				what, short(head))
		}
	}
	m.checked(r.Name, c.Result)
	return c, nil
}

func describeLive(live string) string {
	if live == "" {
		return "nothing"
	}
	return short(live)
}

func (w *worker) setOrigin(st originRecord) {
	w.mu.Lock()
	w.origin = st
	w.mu.Unlock()
}

func (m *Manager) checked(repo, result string) {
	if m.onCheck != nil {
		m.onCheck(repo, result)
	}
}

// poll checks origin's head once when the worker starts (after crash recovery, which
// main runs before Start) and then every Poll, until the worker stops. Poll 0 turns both
// off; a reload that changes Poll takes effect at once.
func (w *worker) poll() {
	startupDone := w.startupDone
	if startupDone == nil {
		startupDone = func() {}
	}
	defer startupDone()
	stopped := w.ctx.Done()
	wait := time.Duration(0)
	// One timer for the poller's life, made before any look-up: a new one after each
	// look-up would be a long-lived object among the look-up's garbage, and keep a
	// page of the heap resident for every repository.
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		every := w.config().Poll
		if every == 0 {
			startupDone() // polling is off: no start-up look-up either
		}
		var tick <-chan time.Time
		if every > 0 {
			t.Reset(min(wait, every))
			tick = t.C
		}
		select {
		case <-stopped:
			return
		case <-w.repoll:
			t.Stop()
			wait = w.config().Poll
			continue
		case <-tick:
		}
		select {
		case w.m.checks <- struct{}{}:
		case <-stopped:
			return
		}
		// In a goroutine of its own, whose stack (grown by go-git and SQLite) goes when it
		// ends, rather than staying with this one while it sleeps between polls.
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = w.reconcile(w.ctx, "a push was not delivered") // logged and recorded in w.origin
		}()
		<-done
		<-w.m.checks
		startupDone()
		wait = every
	}
}
