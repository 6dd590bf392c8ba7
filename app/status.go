// This file owns one repository's status: the facts the repositories page and the API
// render (each in its own words), read once here.
package app

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

// CheckoutState is what the checkout says, read without opening more than its HEAD.
type CheckoutState struct {
	Missing  bool   // the path does not exist (a deploy clones it when url is set)
	Head     string // HEAD commit; "" on an unborn branch or when it cannot be read
	OnBranch string // "" when detached
	Err      error  // reading HEAD failed (also when Missing)
}

// Checkout reads the checkout at path: whether it exists, and its HEAD.
func Checkout(path string) CheckoutState {
	var c CheckoutState
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		c.Missing = true
	}
	c.Head, c.OnBranch, c.Err = checkout.Head(path)
	return c
}

// Status is what is known of one configured repository.
type Status struct {
	Repo
	Checkout CheckoutState
	State    store.RepoState // Queued, Pending, Last, LastOK
	Running  int64           // the deploy running now, 0 when none
	// Live, LiveOrHead and OriginAhead are three readings of "live"; see liveOf,
	// liveOrHead and originAhead.
	Live        string
	LiveOrHead  string
	Origin      OriginState
	OriginKnown bool // false without a reconciler: Origin is then empty
	OriginAhead string
	Pin         *store.Pin
	// PinReason says why a pin by health holds the target: the automatic rollback
	// (PinDeployID) that failed, and its error; "" for other pins.
	PinReason   string
	PinDeployID int64
	// Nodes are the nodes that deploy the repository or ran a deploy of it, by name.
	Nodes  []store.RepoNode
	Active bool // something of it is queued or running, here or on another node
	// DeploysHere is false on a node of a fleet whose config leaves the repository to
	// other nodes (its nodes list): the checkout here is then not expected to exist.
	DeploysHere bool
	// Bad are the target's newest MaxBadShown bad commits (their health check failed),
	// newest first; BadCount is how many it has.
	Bad      []store.BadCommit
	BadCount int
}

// The three rules for what is live sit side by side, so that making them one is a
// deliberate change.

// liveOf is the API's live_commit: the newest succeeded deploy's commit, "" when none.
func liveOf(st store.RepoState) string {
	if st.LastOK != nil {
		return st.LastOK.ToCommit
	}
	return ""
}

// liveOrHead is what rollback and pin take as live: the newest succeeded deploy's commit
// when it names one, else the checkout's HEAD (read only then).
func liveOrHead(st store.RepoState, head func() string) string {
	if st.LastOK != nil && st.LastOK.ToCommit != "" {
		return st.LastOK.ToCommit
	}
	return head()
}

// originAhead is origin's head when it is neither live nor being deployed, as the page
// shows it: live is the newest succeeded deploy's commit whenever there is one (even ""),
// else the checkout's HEAD.
func originAhead(st store.RepoState, head string, o OriginState) string {
	live := head
	if st.LastOK != nil {
		live = st.LastOK.ToCommit
	}
	if o.Commit != "" && o.Commit != live {
		return o.Commit
	}
	return ""
}

// ActiveStatus tells whether a deploy in status is not done yet: queued, waiting for its
// checks, running or verifying.
func ActiveStatus(status string) bool {
	return status == store.DeployQueued || status == store.DeployWaiting || status == store.DeployRunning || status == store.DeployVerifying
}

// MaxBadShown is how many of a target's bad commits its status lists (the newest): they
// are kept until cleared, and a check that keeps failing would grow every listing.
const MaxBadShown = 50

// Status gathers what is known of name. On a store error it returns the error (and what
// it had read so far).
func (a *App) Status(ctx context.Context, name string) (Status, error) {
	r, ok := a.repo(name)
	if !ok {
		return Status{}, unknownRepo(name)
	}
	s := Status{Repo: r, Checkout: Checkout(r.Path), Running: a.workers.Running(name),
		DeploysHere: a.reconciler == nil || a.reconciler.Deploys(name)}
	var err error
	if s.State, err = a.store.RepoState(ctx, name); err != nil {
		return s, err
	}
	head := s.Checkout.Head
	if s.Checkout.Missing {
		head = ""
	}
	s.Live = liveOf(s.State)
	s.LiveOrHead = liveOrHead(s.State, func() string { return head })
	if a.reconciler != nil {
		s.Origin, s.OriginKnown = a.reconciler.OriginState(name), true
		s.OriginAhead = originAhead(s.State, head, s.Origin)
	}
	if s.Pin, err = a.store.GetPin(ctx, name); err != nil {
		return s, err
	}
	if s.Pin != nil && s.Pin.By == store.PinnedByHealth {
		if s.PinReason, s.PinDeployID, err = a.healthPinReason(ctx, name, s.Pin.Commit); err != nil {
			return s, err
		}
	}
	if s.Nodes, err = a.store.RepoNodes(ctx, name); err != nil {
		return s, err
	}
	if s.Bad, s.BadCount, err = a.store.RecentBadCommits(ctx, name, MaxBadShown); err != nil {
		return s, err
	}
	s.Active = s.Running != 0 || s.State.Queued != nil || (s.State.Last != nil && ActiveStatus(s.State.Last.Status))
	for _, n := range s.Nodes {
		s.Active = s.Active || n.RunningDeployID != 0 || n.QueuedDeployID != 0
	}
	return s, nil
}

// Statuses is Status of every configured repository, by name; it stops at the first
// store error.
func (a *App) Statuses(ctx context.Context) ([]Status, error) {
	names := a.Names()
	out := make([]Status, 0, len(names))
	for _, name := range names {
		s, err := a.Status(ctx, name)
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}
