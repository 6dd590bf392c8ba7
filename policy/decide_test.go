package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestDecide walks every rule of Decide: the reasons are the texts the gateway has always
// answered with, byte for byte.
func TestDecide(t *testing.T) {
	sha := strings.Repeat("a", 40)
	hook := Hook{Repo: "site", Branch: "main"}
	push := Delivery{Hook: hook, Event: "push", Ref: "refs/heads/main", After: sha, FullName: "o/site"}
	with := func(f func(*Delivery)) Delivery { d := push; f(&d); return d }
	long := "refs/heads/" + strings.Repeat("x", 300) // a push reason names the ref unbounded
	one := State{Targets: []string{"web1"}, Self: "web1"}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		name string
		d    Delivery
		st   State
		want Decision
	}{
		{"1 ping", Delivery{Hook: hook, Event: "ping"}, one,
			Decision{Status: Ignored, HTTPStatus: 200, Reason: "ping: the hook is set up"}},
		{"2 repository differs", with(func(d *Delivery) { d.Hook.Repository = "o/other" }), one,
			Decision{Status: Ignored, HTTPStatus: 200, Reason: `repository "o/site" does not match the configured "o/other"`}},
		{"2 repository matches case-insensitively", with(func(d *Delivery) { d.Hook.Repository = "O/Site" }), one,
			Decision{Status: Accepted, HTTPStatus: 202, Reason: "queued for deploy", Trigger: TriggerPush, Queue: []string{"web1"}, Primary: "web1"}},
		{"2 repository names GitLab's project id", with(func(d *Delivery) { d.Hook.Repository = "15"; d.ProjectID = 15 }), one,
			Decision{Status: Accepted, HTTPStatus: 202, Reason: "queued for deploy", Trigger: TriggerPush, Queue: []string{"web1"}, Primary: "web1"}},
		{"2 repository names another project id", with(func(d *Delivery) { d.Hook.Repository = "16"; d.ProjectID = 15 }), one,
			Decision{Status: Ignored, HTTPStatus: 200, Reason: `repository "o/site" does not match the configured "16"`}},
		{"3 deleted", with(func(d *Delivery) { d.Deleted = true }), one,
			Decision{Status: Ignored, HTTPStatus: 200, Reason: "refs/heads/main was deleted; nothing to deploy"}},
		{"3 after all zeros (40)", with(func(d *Delivery) { d.After = strings.Repeat("0", 40) }), one,
			Decision{Status: Ignored, HTTPStatus: 200, Reason: "refs/heads/main was deleted; nothing to deploy"}},
		{"3 after all zeros (64)", with(func(d *Delivery) { d.After = strings.Repeat("0", 64) }), one,
			Decision{Status: Ignored, HTTPStatus: 200, Reason: "refs/heads/main was deleted; nothing to deploy"}},
		{"4 tag", with(func(d *Delivery) { d.Ref = "refs/tags/v1" }), one,
			Decision{Status: Ignored, HTTPStatus: 200, Reason: "tag push refs/tags/v1; this hook deploys refs/heads/main"}},
		{"5 other branch", with(func(d *Delivery) { d.Ref = "refs/heads/dev" }), one,
			Decision{Status: Ignored, HTTPStatus: 200, Reason: "push to refs/heads/dev; this hook deploys refs/heads/main"}},
		{"5 other branch, 300-byte ref", with(func(d *Delivery) { d.Ref = long }), one,
			Decision{Status: Ignored, HTTPStatus: 200, Reason: "push to " + long + "; this hook deploys refs/heads/main"}},
		{"6 push to the branch", push, one,
			Decision{Status: Accepted, HTTPStatus: 202, Reason: "queued for deploy", Trigger: TriggerPush, Queue: []string{"web1"}, Primary: "web1"}},
		{"7 tag_push parsed", Delivery{Hook: hook, Event: "tag_push", Ref: long, Recorded: "refs/tags/v1", Parsed: true}, one,
			Decision{Status: Ignored, HTTPStatus: 200, Reason: "tag push refs/tags/v1; this hook deploys refs/heads/main"}},
		{"7 tag_push not parsed", Delivery{Hook: hook, Event: "tag_push"}, one,
			Decision{Status: Ignored, HTTPStatus: 200, Reason: "tag push; this hook deploys refs/heads/main"}},
		{"8 other event", Delivery{Hook: hook, Event: "issues"}, one,
			Decision{Status: Ignored, HTTPStatus: 200, Reason: `event "issues" does not deploy; only push does`}},
		{"9 create naming a ref", Delivery{Hook: hook, Event: "create", Ref: "v1", RefType: "tag"}, one,
			Decision{Status: Ignored, HTTPStatus: 200, Reason: "create of tag v1 does not deploy; only push does"}},
		{"9 delete naming no ref", Delivery{Hook: hook, Event: "delete"}, one,
			Decision{Status: Ignored, HTTPStatus: 200, Reason: `event "delete" does not deploy; only push does`}},
		{"10 replay", with(func(d *Delivery) { d.ReplayOf = 42 }), one,
			Decision{Status: Accepted, HTTPStatus: 202, Reason: "replay of delivery 42", Trigger: TriggerReplay, Queue: []string{"web1"}, Primary: "web1"}},
		{"11 pinned", push, State{Pin: &Pin{Commit: sha, By: "rollback", At: at}, Targets: []string{"web1"}},
			Decision{Status: Ignored, HTTPStatus: 200, Reason: "pinned at aaaaaaa by rollback since 2026-01-02T03:04:05Z; unpin to deploy pushes again"}},
		{"12 no targets", push, State{Self: "web1"},
			Decision{Status: Ignored, HTTPStatus: 200, Reason: NoTargetsReason}},
		{"13 redelivery deployed on the one target", push, State{Targets: []string{"web1"}, Deployed: map[string]int64{"web1": 7}, Redelivery: true},
			Decision{Status: Ignored, HTTPStatus: 200, Reason: "redelivery of a delivery already deployed by deploy 7"}},
		{"13 redelivery deployed on every target", push, State{Targets: []string{"web1", "web2"}, Deployed: map[string]int64{"web1": 7, "web2": 8}, Redelivery: true},
			Decision{Status: Ignored, HTTPStatus: 200, Reason: "redelivery of a delivery already deployed by deploys 7 (web1), 8 (web2)"}},
		{"14 queue only where not deployed", push, State{Targets: []string{"web1", "web2", "web3"}, Deployed: map[string]int64{"web2": 8}, Redelivery: true},
			Decision{Status: Accepted, HTTPStatus: 202, Reason: "queued for deploy", Trigger: TriggerRedelivery, Queue: []string{"web1", "web3"}, Primary: "web1"}},
		{"15 replay beats redelivery", with(func(d *Delivery) { d.ReplayOf = 3 }), State{Targets: []string{"web1"}, Redelivery: true},
			Decision{Status: Accepted, HTTPStatus: 202, Reason: "replay of delivery 3", Trigger: TriggerReplay, Queue: []string{"web1"}, Primary: "web1"}},
		{"15 redelivery", push, State{Targets: []string{"web1"}, Redelivery: true},
			Decision{Status: Accepted, HTTPStatus: 202, Reason: "queued for deploy", Trigger: TriggerRedelivery, Queue: []string{"web1"}, Primary: "web1"}},
		{"16 primary is this node", push, State{Targets: []string{"web1", "web2"}, Self: "web2"},
			Decision{Status: Accepted, HTTPStatus: 202, Reason: "queued for deploy", Trigger: TriggerPush, Queue: []string{"web1", "web2"}, Primary: "web2"}},
		{"16 primary is the first otherwise", push, State{Targets: []string{"web1", "web2"}, Self: "web9"},
			Decision{Status: Accepted, HTTPStatus: 202, Reason: "queued for deploy", Trigger: TriggerPush, Queue: []string{"web1", "web2"}, Primary: "web1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Decide(c.d, c.st); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Decide:\n got %+v\nwant %+v", got, c.want)
			}
			dec, ok := Screen(c.d)
			if ok != (dec.Status == Accepted) || (!ok && !reflect.DeepEqual(dec, c.want)) {
				t.Fatalf("Screen: %+v %v", dec, ok)
			}
		})
	}
}

// TestDecideTargets: a [hooks.NAME] delivery is decided for each target on its own state:
// branch and tag targets, an older tag than the live one, a pin of one target, and
// [skip deploy] (or [deploy skip]) for all.
func TestDecideTargets(t *testing.T) {
	sha := strings.Repeat("a", 40)
	targets := []Target{{Repo: "docs", Branch: "main"}, {Repo: "prod", Tags: "v*"}, {Repo: "staging", Branch: "develop"}}
	d := func(ref, msg string) Delivery {
		return Delivery{Hook: Hook{Repo: "shop"}, Event: "push", Ref: ref, After: sha, Message: msg, Targets: targets}
	}
	one := State{Targets: []string{"web1"}, Self: "web1"}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	state := func(live string, pinned string) func(string) State {
		return func(repo string) State {
			st := one
			if repo == "prod" {
				st.Live, st.Ref = live, ""
			}
			if repo == pinned {
				st.Pin = &Pin{Commit: sha, By: "pin", At: at}
			}
			return st
		}
	}
	for _, c := range []struct {
		name   string
		d      Delivery
		state  func(string) State
		status string
		each   []string
	}{
		{"a branch", d("refs/heads/develop", ""), state("", ""), Accepted, []string{
			"ignored: push to refs/heads/develop; this target deploys refs/heads/main",
			"ignored: push to refs/heads/develop; this target deploys tags matching v*",
			"accepted: queued for deploy"}},
		{"a tag", d("refs/tags/v1.2.0", ""), state("refs/tags/v1.1.0", ""), Accepted, []string{
			"ignored: tag push refs/tags/v1.2.0; this target deploys refs/heads/main",
			"accepted: queued for deploy",
			"ignored: tag push refs/tags/v1.2.0; this target deploys refs/heads/develop"}},
		{"a tag the glob does not match", d("refs/tags/nightly", ""), state("", ""), Ignored, []string{
			"ignored: tag push refs/tags/nightly; this target deploys refs/heads/main",
			"ignored: tag nightly does not match v*",
			"ignored: tag push refs/tags/nightly; this target deploys refs/heads/develop"}},
		{"skip deploy", d("refs/heads/main", "fix [deploy skip]"), state("", ""), Ignored, []string{
			"ignored: [skip deploy]", "ignored: [skip deploy]", "ignored: [skip deploy]"}},
		{"one target pinned", d("refs/heads/main", ""), state("", "docs"), Ignored, []string{
			"ignored: pinned at aaaaaaa by pin since 2026-01-02T03:04:05Z; unpin to deploy pushes again",
			"ignored: push to refs/heads/main; this target deploys tags matching v*",
			"ignored: push to refs/heads/main; this target deploys refs/heads/develop"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := c.state
			if c.name == "a tag" {
				st = func(repo string) State { s := c.state(repo); s.Ref = "refs/tags/v1.2.0"; return s }
			}
			got := DecideEach(c.d, st)
			var each []string
			for _, td := range got.Targets {
				each = append(each, td.Status+": "+td.Reason)
			}
			if got.Status != c.status || !reflect.DeepEqual(each, c.each) {
				t.Fatalf("got %s %q\n%q\nwant %s\n%q", got.Status, got.Reason, each, c.status, c.each)
			}
		})
	}
}

// TestOlderTag: semantic versions (a leading v allowed) are ordered; anything else is not.
func TestOlderTag(t *testing.T) {
	for _, c := range []struct{ ref, live, want string }{
		{"refs/tags/v1.2.0", "refs/tags/v1.3.0", "v1.2.0 is older than live v1.3.0"},
		{"refs/tags/1.9.9", "refs/tags/v1.10.0", "1.9.9 is older than live v1.10.0"},
		{"refs/tags/v2.0.0-rc.1", "refs/tags/v2.0.0", "v2.0.0-rc.1 is older than live v2.0.0"},
		{"refs/tags/v1.3.0", "refs/tags/v1.3.0", ""},
		{"refs/tags/v1.4.0", "refs/tags/v1.3.0", ""},
		{"refs/tags/release-7", "refs/tags/v1.3.0", ""},
		{"refs/tags/v1.2", "refs/tags/v1.3.0", ""},
		{"refs/tags/v1.2.0", "", ""},
		{"refs/tags/v1.2.0", "refs/heads/main", ""},
	} {
		if got := OlderTag(c.ref, c.live); got != c.want {
			t.Errorf("OlderTag(%s, %s) = %q, want %q", c.ref, c.live, got, c.want)
		}
	}
}
