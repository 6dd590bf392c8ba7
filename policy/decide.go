// Package policy is the one decision on a delivery: accepted or ignored, why, the HTTP
// status the sender gets, and which nodes queue (or join) a deploy for it. It is pure: the
// server fills a Delivery from a validly signed, parsed request, the store reads the State
// inside the delivery's transaction, and nothing else decides. It imports nothing of the
// project.
package policy

import (
	"fmt"
	"net/http"
	"path"
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
	Tags       string // a tag target's path.Match glob ("" : it deploys Branch)
}

// Target is one deploy target ([repos.NAME]) of a [hooks.NAME] hook.
type Target struct {
	Repo   string // the target's name
	Branch string // the branch it deploys, when Tags is ""
	Tags   string // the path.Match glob of the tags it deploys
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
	Message  string // the head commit's message ([skip deploy])
	// Targets are a [hooks.NAME] hook's targets, each decided on its own; empty: the hook
	// is its own one target (Hook.Repo, Hook.Branch, Hook.Tags), decided as always.
	Targets []Target

	// ProjectID is a GitLab payload's project.id (0: none), which a numeric repository
	// key names.
	ProjectID int64
}

// TargetList is the targets d is decided for: d.Targets, or the hook itself.
func (d Delivery) TargetList() []Target {
	if len(d.Targets) > 0 {
		return d.Targets
	}
	return []Target{{Repo: d.Hook.Repo, Branch: d.Hook.Branch, Tags: d.Hook.Tags}}
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
	// Live is a tag target's live tag: the ref of its last succeeded deploy when that is
	// refs/tags/…; "" for none. Ref is the ref the delivery would deploy.
	Live, Ref string
}

// Decision is a delivery's fate.
type Decision struct {
	Status     string // Accepted or Ignored
	HTTPStatus int    // 202 or 200
	Reason     string
	Trigger    string   // accepted only
	Queue      []string // nodes to queue or join a deploy on, in Targets order
	Primary    string   // the node whose deploy deliveries.deploy_id names
	// Repo is the target a target's Decision is for ("" for a delivery's).
	Repo string
	// Targets are a [hooks.NAME] delivery's decisions, one per target in Delivery.Targets'
	// order; nil when the hook is its own one target (the Decision is that target's).
	Targets []Decision
}

func ignore(format string, args ...any) Decision {
	return Decision{Status: Ignored, HTTPStatus: http.StatusOK, Reason: fmt.Sprintf(format, args...)}
}

// Screen applies the rules that need no state (event, repository, ref). ok is false with
// the ignoring Decision; true, with the accepted one, when the delivery may deploy and
// Decide must see the state. The store screens a batch before it reads anything, so it
// locks and reads only for deliveries that may queue. For a [hooks.NAME] delivery the
// Decision's Targets hold each target's; ok when one of them may deploy.
func Screen(d Delivery) (dec Decision, ok bool) {
	h := d.Hook
	dec, ok = screenHook(d)
	if len(d.Targets) == 0 {
		if !ok {
			return dec, false
		}
		return screenTarget(d, Target{Repo: h.Repo, Branch: h.Branch, Tags: h.Tags}, "hook")
	}
	dec.Targets = make([]Decision, len(d.Targets))
	any := false
	for i, t := range d.Targets {
		td := dec
		td.Targets = nil
		if ok {
			var tok bool
			td, tok = screenTarget(d, t, "target")
			any = any || tok
		}
		td.Repo = t.Repo
		dec.Targets[i] = td
	}
	return Combine(dec), any
}

// hasTags tells whether one of d's targets deploys tags.
func hasTags(d Delivery) bool {
	for _, t := range d.TargetList() {
		if t.Tags != "" {
			return true
		}
	}
	return false
}

// screenHook applies the rules that hold for every target: event, repository, deletion,
// [skip deploy].
func screenHook(d Delivery) (Decision, bool) {
	h := d.Hook
	switch d.Event {
	case "ping":
		return ignore("ping: the hook is set up"), false
	case "push":
	case "tag_push":
		// GitLab sends tags as their own event: a push of a tag, which only a tag target
		// deploys.
		if !hasTags(d) {
			if d.Parsed {
				return ignore("tag push %s; this hook deploys refs/heads/%s", d.Recorded, h.Branch), false
			}
			return ignore("tag push; this hook deploys refs/heads/%s", h.Branch), false
		}
		if !d.Parsed {
			return ignore("tag push whose payload is not a push; nothing to deploy"), false
		}
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
	// A deleted branch's "after" is all zeros: 40 of them, or 64 in a SHA-256 repository.
	if d.Deleted || strings.Trim(d.After, "0") == "" {
		return ignore("%s was deleted; nothing to deploy", d.Ref), false
	}
	if strings.Contains(d.Message, "[skip deploy]") || strings.Contains(d.Message, "[deploy skip]") {
		return ignore("[skip deploy]"), false
	}
	return Decision{}, true
}

// screenTarget applies a target's ref rule: its branch, or its tag glob. word names the
// target in the reasons: "hook" for a hook that is its own target, as always.
func screenTarget(d Delivery, t Target, word string) (Decision, bool) {
	if t.Tags != "" {
		tag, isTag := strings.CutPrefix(d.Ref, "refs/tags/")
		if !isTag {
			return ignore("push to %s; this %s deploys tags matching %s", d.Ref, word, t.Tags), false
		}
		if ok, _ := path.Match(t.Tags, tag); !ok {
			return ignore("tag %s does not match %s", tag, t.Tags), false
		}
	} else {
		want := "refs/heads/" + t.Branch
		if strings.HasPrefix(d.Ref, "refs/tags/") {
			return ignore("tag push %s; this %s deploys %s", d.Ref, word, want), false
		}
		if d.Ref != want {
			return ignore("push to %s; this %s deploys %s", d.Ref, word, want), false
		}
	}
	reason := "queued for deploy"
	if d.ReplayOf != 0 {
		reason = fmt.Sprintf("replay of delivery %d", d.ReplayOf)
	}
	return Decision{Status: Accepted, HTTPStatus: http.StatusAccepted, Reason: reason}, true
}

// Combine makes a [hooks.NAME] delivery's Decision from its targets' (dec.Targets): accepted
// (202) when one of them queues a deploy, with the first such target's trigger, queue and
// primary; else ignored (200). The reason names the targets.
func Combine(dec Decision) Decision {
	out := Decision{Targets: dec.Targets}
	var queued, ignored []string
	for _, t := range dec.Targets {
		if t.Status == Accepted {
			if len(queued) == 0 {
				out.Status, out.HTTPStatus, out.Trigger = Accepted, http.StatusAccepted, t.Trigger
				out.Queue, out.Primary, out.Reason = t.Queue, t.Primary, t.Reason
			}
			queued = append(queued, t.Repo)
		} else {
			ignored = append(ignored, t.Repo+": "+t.Reason)
		}
	}
	if len(queued) > 0 {
		out.Reason += " (" + strings.Join(queued, ", ") + ")"
		return out
	}
	out.Status, out.HTTPStatus = Ignored, http.StatusOK
	out.Reason = strings.Join(ignored, "; ")
	if first := dec.Targets; len(first) > 0 && allSame(first) {
		out.Reason = first[0].Reason // [skip deploy], ping, a deletion: one reason for all
	}
	return out
}

func allSame(ds []Decision) bool {
	for _, d := range ds[1:] {
		if d.Reason != ds[0].Reason {
			return false
		}
	}
	return true
}

// Decide is Screen, then the rules on state: pin, targets, earlier deploys. For a
// [hooks.NAME] delivery, state gives each target's State by its name.
func Decide(d Delivery, st State) Decision {
	return DecideEach(d, func(string) State { return st })
}

// DecideEach is Decide with each target's own State.
func DecideEach(d Delivery, state func(repo string) State) Decision {
	dec, ok := Screen(d)
	if !ok {
		return dec
	}
	if dec.Targets == nil {
		return Settle(dec, d.ReplayOf, state(d.Hook.Repo))
	}
	for i, t := range dec.Targets {
		if t.Status == Accepted {
			dec.Targets[i] = Settle(t, d.ReplayOf, state(t.Repo))
		}
	}
	return Combine(dec)
}

// Settle applies the rules on state to dec, a delivery that may deploy (Screen's accepted
// Decision, or one its sender accepted before the store: a store test's). replayOf is the
// delivery a replay re-runs, 0 for none.
func Settle(dec Decision, replayOf int64, st State) Decision {
	if st.Pin != nil {
		// Recorded, answered 200, and not deployed: the operator holds the checkout.
		return Decision{Status: Ignored, HTTPStatus: http.StatusOK, Reason: PinnedReason(*st.Pin), Repo: dec.Repo}
	}
	if older := OlderTag(st.Ref, st.Live); older != "" {
		// No automatic downgrade; a rollback can go back.
		return Decision{Status: Ignored, HTTPStatus: http.StatusOK, Reason: older, Repo: dec.Repo}
	}
	if len(st.Targets) == 0 {
		return Decision{Status: Ignored, HTTPStatus: http.StatusOK, Reason: NoTargetsReason, Repo: dec.Repo}
	}
	var pending []string
	for _, n := range st.Targets {
		if st.Deployed[n] == 0 {
			pending = append(pending, n)
		}
	}
	if len(pending) == 0 {
		return Decision{Status: Ignored, HTTPStatus: http.StatusOK, Repo: dec.Repo,
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
