package store

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/policy"
)

// shopTargets are one hook's three targets: staging from develop, prod from tags v*, docs
// from main.
var shopTargets = []policy.Target{
	{Repo: "staging", Branch: "develop"}, {Repo: "prod", Tags: "v*"}, {Repo: "docs", Branch: "main"},
}

// hookPush is a validly signed push through hook "shop", decided by the store (Input set)
// as the server hands it over.
func hookPush(guid, ref, message string) *Delivery {
	d := push("shop", guid)
	d.Status, d.HTTPStatus = "", 0
	d.Ref, d.Message = ref, message
	d.Input = &policy.Delivery{Hook: policy.Hook{Repo: "shop"}, Event: "push", Ref: ref,
		After: d.After, Message: message, Targets: shopTargets}
	return d
}

// TestHookDeliveryRecordsEachTarget: one delivery through a hook of three targets is one
// row under the hook, with each target's outcome, its deploys naming their target; a tag
// target's deploy carries refs/tags/NAME, moves to a newer tag it is joined by, and an
// older tag than the live one is ignored; [skip deploy] and a tag deletion ignore every
// target. Both engines.
func TestHookDeliveryRecordsEachTarget(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		record := func(d *Delivery) *Delivery {
			t.Helper()
			if err := s.RecordDelivery(ctx, d); err != nil {
				t.Fatal(err)
			}
			return d
		}
		outcome := func(d *Delivery) string {
			var parts []string
			for _, o := range d.Targets {
				parts = append(parts, o.Repo+"="+o.Status+":"+o.Reason)
			}
			return strings.Join(parts, " | ")
		}

		dev := record(hookPush("g1", "refs/heads/develop", "work"))
		if dev.Status != DeliveryAccepted || dev.HTTPStatus != 202 || dev.Hook != "shop" || dev.DeployID == 0 {
			t.Fatalf("develop push: %s %d hook %q deploy %d", dev.Status, dev.HTTPStatus, dev.Hook, dev.DeployID)
		}
		want := "staging=queued:queued for deploy | prod=ignored:push to refs/heads/develop; this target deploys tags matching v* | docs=ignored:push to refs/heads/develop; this target deploys refs/heads/main"
		if got := outcome(dev); got != want {
			t.Fatalf("develop push outcomes:\n got %s\nwant %s", got, want)
		}
		got, err := s.Delivery(ctx, dev.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Hook != "shop" || len(got.Targets) != 3 || len(got.Deploys) != 1 || got.Deploys[0].Repo != "staging" {
			t.Fatalf("stored: hook %q targets %+v deploys %+v", got.Hook, got.Targets, got.Deploys)
		}
		if got.Targets[0].Repo != "docs" || got.Targets[1].Repo != "prod" || got.Targets[1].Status != TargetIgnored {
			t.Fatalf("stored targets, by name: %+v", got.Targets)
		}

		tag := record(hookPush("g2", "refs/tags/v1.1.0", "release"))
		if tag.Status != DeliveryAccepted || tag.Targets[1].Status != TargetQueued {
			t.Fatalf("tag push: %s %s", tag.Status, outcome(tag))
		}
		dp, err := s.ClaimDeploy(ctx, "prod")
		if err != nil || dp.Ref != "refs/tags/v1.1.0" {
			t.Fatalf("prod's deploy: %+v %v", dp, err)
		}
		if err := s.FinishDeploy(ctx, dp.ID, Result{Status: DeploySucceeded}); err != nil {
			t.Fatal(err)
		}

		older := record(hookPush("g3", "refs/tags/v1.0.1", "fix"))
		if older.Status != DeliveryIgnored || older.HTTPStatus != 200 || older.Targets[1].Reason != "v1.0.1 is older than live v1.1.0" {
			t.Fatalf("older tag: %s %d %s", older.Status, older.HTTPStatus, outcome(older))
		}

		newer := record(hookPush("g4", "refs/tags/v1.2.0", "release"))
		joined := record(hookPush("g5", "refs/tags/v1.3.0", "release"))
		back := record(hookPush("g6", "refs/tags/v1.2.5", "release"))
		if newer.DeployID == 0 || joined.DeployID != newer.DeployID || back.DeployID != newer.DeployID {
			t.Fatalf("tag pushes while one is queued: deploys %d, %d, %d, want one", newer.DeployID, joined.DeployID, back.DeployID)
		}
		if dp, err := s.Deploy(ctx, newer.DeployID); err != nil || dp.Ref != "refs/tags/v1.3.0" {
			t.Fatalf("the joined tag deploy: ref %q (%v), want the newest pushed tag refs/tags/v1.3.0", dp.Ref, err)
		}

		skip := record(hookPush("g7", "refs/heads/main", "docs: typo [skip deploy]"))
		if skip.Status != DeliveryIgnored || skip.Reason != "[skip deploy]" || skip.DeployID != 0 ||
			outcome(skip) != "staging=ignored:[skip deploy] | prod=ignored:[skip deploy] | docs=ignored:[skip deploy]" {
			t.Fatalf("[skip deploy]: %s %q %s", skip.Status, skip.Reason, outcome(skip))
		}

		del := hookPush("g8", "refs/tags/v1.3.0", "")
		del.Input.Deleted = true
		record(del)
		if del.Status != DeliveryIgnored || del.Reason != "refs/tags/v1.3.0 was deleted; nothing to deploy" {
			t.Fatalf("tag deletion: %s %q", del.Status, del.Reason)
		}

		// A redelivery is per target: staging's deploy of g1 succeeded, so its copy
		// deploys nothing again.
		st, err := s.ClaimDeploy(ctx, "staging")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishDeploy(ctx, st.ID, Result{Status: DeploySucceeded}); err != nil {
			t.Fatal(err)
		}
		again := record(hookPush("g1", "refs/heads/develop", "work"))
		if !again.Redelivery || again.Status != DeliveryIgnored ||
			again.Targets[0].Reason != "redelivery of a delivery already deployed by deploy "+itoa(st.ID) {
			t.Fatalf("redelivery: %v %s %s", again.Redelivery, again.Status, outcome(again))
		}

		// A pin holds its target only: docs pinned, a push of develop and one of main.
		if _, err := s.SetPin(ctx, "docs", strings.Repeat("b", 40), "pin"); err != nil {
			t.Fatal(err)
		}
		main := record(hookPush("g10", "refs/heads/main", "docs"))
		if main.Status != DeliveryIgnored || !strings.HasPrefix(main.Targets[2].Reason, "pinned at bbbbbbb by pin since ") {
			t.Fatalf("push of main, docs pinned: %s %s", main.Status, outcome(main))
		}
		dev2 := record(hookPush("g11", "refs/heads/develop", "more"))
		if dev2.Status != DeliveryAccepted || dev2.Targets[0].Status != TargetQueued {
			t.Fatalf("push of develop, docs pinned: %s %s", dev2.Status, outcome(dev2))
		}

		// The listings: by hook, and by target (the deliveries that decided for it).
		list, err := s.ListDeliveries(ctx, DeliveryFilter{Hook: "shop", Page: Page{Limit: 50}})
		if err != nil || len(list) != 11 {
			t.Fatalf("?hook=shop: %d deliveries (%v), want 11", len(list), err)
		}
		if n := len(list[len(list)-1].Targets); n != 3 {
			t.Fatalf("listed delivery has %d targets, want 3", n)
		}
		legacy := record(push("site", "g9"))
		if legacy.Hook != "site" {
			t.Fatalf("a repository's own hook: hook %q, want site", legacy.Hook)
		}
		for _, c := range []struct {
			repo string
			n    int
		}{{"prod", 11}, {"site", 1}, {"shop", 0}} {
			list, err := s.ListDeliveries(ctx, DeliveryFilter{Repo: c.repo, Page: Page{Limit: 50}})
			if err != nil || len(list) != c.n {
				t.Fatalf("?repo=%s: %d deliveries (%v), want %d", c.repo, len(list), err, c.n)
			}
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
