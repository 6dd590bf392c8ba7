// This file owns the App's refusals: what kind each is, its code and its message; server
// maps the kinds to HTTP statuses in one table.
package app

import "fmt"

// Kind is a kind of refusal.
type Kind int

// The kinds, with the status server answers them with.
const (
	UnknownRepo      Kind = iota + 1 // 404
	UnknownCommit                    // 422
	NoPreviousDeploy                 // 409
	NoLiveCommit                     // 409
	NotDeployedHere                  // 409
	Unavailable                      // 503
	NotReplayable                    // 409
	BadCommit                        // 409: the commit failed its health check (force overrides)
	UnknownBadCommit                 // 404
	NoHealthCheck                    // 409
	DeployRunning                    // 409: a check on demand while a deploy runs in the checkout
)

// Error is a refusal of a rollback, pin, unpin, reconcile or replay, with its kind and code.
type Error struct {
	Kind      Kind
	Code, Msg string
}

func (e *Error) Error() string { return e.Msg }

func unknownRepo(name string) error {
	return &Error{UnknownRepo, "unknown_repo", fmt.Sprintf("no repository is configured under the name %q", name)}
}

// notDeployedHere refuses what only a node that deploys the repository can do (compare
// origin with its live commit): name is configured here, for its deliveries, but its nodes
// list leaves this node out.
func notDeployedHere(name string) error {
	return &Error{NotDeployedHere, "not_deployed_here",
		fmt.Sprintf("this node does not deploy %q (its nodes list leaves it out); ask a node that deploys it", name)}
}
