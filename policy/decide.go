// Package policy is the one decision on a delivery: accepted or ignored, why, the HTTP
// status the sender gets, and which nodes queue (or join) a deploy for it. It is pure: the
// server fills a Delivery from a validly signed, parsed request, the store reads the State
// inside the delivery's transaction, and nothing else decides. It imports nothing of the
// project.
package policy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Outcomes and triggers; store.DeliveryAccepted, store.TriggerPush etc. are these constants.
const (
	Accepted = "accepted" // a push to the deployed branch; joined a deploy
	Ignored  = "ignored"  // valid, but nothing to deploy (other ref, event, ping…)

	TriggerPush       = "push"
	TriggerRedelivery = "redelivery"
	TriggerReplay     = "replay" // an operator re-ran a recorded delivery
)

// Hook is what Decide reads of the configured repository.
type Hook struct {
	Repo       string // the hook's name
	Branch     string
	Repository string // optional owner/name the payload must name
}

// Delivery is what Decide reads of one validly signed, parsed delivery.
type Delivery struct {
	Hook     Hook
	Event    string // push, ping, tag_push, create, delete, or any other
	Ref      string // push: the payload's ref as sent; create/delete: the ref as recorded
	Recorded string // tag_push: the ref as recorded (at most 256 bytes)
	RefType  string // create/delete: "branch" or "tag"
	After    string
	Deleted  bool
	FullName string // the payload's repository.full_name, as sent
	Parsed   bool   // tag_push: the payload parsed as a push
	ReplayOf int64  // replay of this delivery; 0: none

	// ProjectID is a GitLab payload's project.id (0: none), which a numeric repository
	// key names.
	ProjectID int64
}

// Pin is a repository held at a commit by an operator.
type Pin struct {
	Commit, By string
	At         time.Time
}

// State is what the store reads, inside the delivery's transaction, for a delivery that
// Screen lets through.
type State struct {
	Pin        *Pin             // nil: not pinned
	Targets    []string         // nodes that deploy the repository, by name
	Deployed   map[string]int64 // node → succeeded deploy of an earlier copy (redelivery)
	Redelivery bool             // the GUID was recorded before, validly signed, for this repo
	Self       string           // this gateway's node
}

// Decision is a delivery's fate.
type Decision struct {
	Status     string // Accepted or Ignored
	HTTPStatus int    // 202 or 200
	Reason     string
	Trigger    string   // accepted only
	Queue      []string // nodes to queue or join a deploy on, in Targets order
	Primary    string   // the node whose deploy deliveries.deploy_id names
}

func ignore(format string, args ...any) Decision {
	return Decision{Status: Ignored, HTTPStatus: http.StatusOK, Reason: fmt.Sprintf(format, args...)}
}

// Screen applies the rules that need no state (event, repository, ref). ok is false with
// the ignoring Decision; true, with the accepted one, when the delivery may deploy and
// Decide must see the state. The store screens a batch before it reads anything, so it
// locks and reads only for deliveries that may queue.
func Screen(d Delivery) (dec Decision, ok bool) {
	h := d.Hook
	switch d.Event {
	case "ping":
		return ignore("ping: the hook is set up"), false
	case "push":
	case "tag_push":
		// GitLab sends tags as their own event; recorded like a push, never deployed.
		if d.Parsed {
			return ignore("tag push %s; this hook deploys refs/heads/%s", d.Recorded, h.Branch), false
		}
		return ignore("tag push; this hook deploys refs/heads/%s", h.Branch), false
	case "create", "delete":
		if d.Ref != "" {
			return ignore("%s of %s %s does not deploy; only push does", d.Event, d.RefType, d.Ref), false
		}
		return ignore("event %q does not deploy; only push does", d.Event), false
	default:
		return ignore("event %q does not deploy; only push does", d.Event), false
	}
	// Only a push to the configured branch of the configured repository deploys.
	if h.Repository != "" && !strings.EqualFold(d.FullName, h.Repository) &&
		(d.ProjectID == 0 || h.Repository != strconv.FormatInt(d.ProjectID, 10)) {
		return ignore("repository %q does not match the configured %q", d.FullName, h.Repository), false
	}
	want := "refs/heads/" + h.Branch
	// A deleted branch's "after" is all zeros: 40 of them, or 64 in a SHA-256 repository.
	if d.Deleted || strings.Trim(d.After, "0") == "" {
		return ignore("%s was deleted; nothing to deploy", d.Ref), false
	}
	if strings.HasPrefix(d.Ref, "refs/tags/") {
		return ignore("tag push %s; this hook deploys %s", d.Ref, want), false
	}
	if d.Ref != want {
		return ignore("push to %s; this hook deploys %s", d.Ref, want), false
	}
	reason := "queued for deploy"
	if d.ReplayOf != 0 {
		reason = fmt.Sprintf("replay of delivery %d", d.ReplayOf)
	}
	return Decision{Status: Accepted, HTTPStatus: http.StatusAccepted, Reason: reason}, true
}

// Decide is Screen, then the rules on state: pin, targets, earlier deploys.
func Decide(d Delivery, st State) Decision {
	dec, ok := Screen(d)
	if !ok {
		return dec
	}
	return Settle(dec, d.ReplayOf, st)
}

// Settle applies the rules on state to dec, a delivery that may deploy (Screen's accepted
// Decision, or one its sender accepted before the store: a store test's). replayOf is the
// delivery a replay re-runs, 0 for none.
func Settle(dec Decision, replayOf int64, st State) Decision {
	if st.Pin != nil {
		// Recorded, answered 200, and not deployed: the operator holds the checkout.
		return Decision{Status: Ignored, HTTPStatus: http.StatusOK, Reason: PinnedReason(*st.Pin)}
	}
	if len(st.Targets) == 0 {
		return Decision{Status: Ignored, HTTPStatus: http.StatusOK, Reason: NoTargetsReason}
	}
	var pending []string
	for _, n := range st.Targets {
		if st.Deployed[n] == 0 {
			pending = append(pending, n)
		}
	}
	if len(pending) == 0 {
		return Decision{Status: Ignored, HTTPStatus: http.StatusOK,
			Reason: "redelivery of a delivery already deployed by " + describeDeployed(st.Deployed, st.Targets)}
	}
	dec.Trigger = TriggerPush
	switch {
	case replayOf != 0:
		dec.Trigger = TriggerReplay
	case st.Redelivery:
		dec.Trigger = TriggerRedelivery
	}
	dec.Queue = pending
	dec.Primary = Primary(pending, st.Self)
	return dec
}

// NoTargetsReason is why an accepted delivery that no node deploys is ignored.
const NoTargetsReason = "no node deploys this repository: none of the nodes running names it " +
	"(see [repos.NAME] nodes); a node that starts later catches up through reconcile"

// describeDeployed words the succeeded deploys of the earlier copies of a redelivery on
// targets: "deploy 7" with one node, "deploys 7 (web1), 8 (web2)" with several.
func describeDeployed(done map[string]int64, targets []string) string {
	if len(targets) == 1 {
		return fmt.Sprintf("deploy %d", done[targets[0]])
	}
	parts := make([]string, 0, len(targets))
	for _, n := range targets {
		parts = append(parts, fmt.Sprintf("%d (%s)", done[n], n))
	}
	return "deploys " + strings.Join(parts, ", ")
}

// Primary picks, among a delivery's target nodes, the one whose deploy deliveries.deploy_id
// names: this gateway's own when it is one, else the first by name. The store's manual
// deploys and rollbacks pick theirs the same way.
func Primary(targets []string, self string) string {
	for _, n := range targets {
		if n == self {
			return n
		}
	}
	return targets[0]
}

// PinnedReason is the reason a push to a pinned repository is ignored with.
func PinnedReason(p Pin) string {
	commit := p.Commit
	if len(commit) > 7 {
		commit = commit[:7]
	}
	return fmt.Sprintf("pinned at %s by %s since %s; unpin to deploy pushes again",
		commit, p.By, p.At.Format(time.RFC3339))
}
