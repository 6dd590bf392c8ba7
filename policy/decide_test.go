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
