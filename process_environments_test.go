package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/internal/testkit"
)

// envTarget is one target's outcome of a delivery, in the hook's answer and in the API.
type envTarget struct {
	Repo     string `json:"repo"`
	Status   string `json:"status"`
	Reason   string `json:"reason"`
	DeployID int64  `json:"deploy_id"`
}

// envAnswer is what POST /hooks/NAME answered a delivery to a shared hook.
type envAnswer struct {
	HTTPStatus int
	DeliveryID int64       `json:"delivery_id"`
	Status     string      `json:"status"`
	Reason     string      `json:"reason"`
	Targets    []envTarget `json:"targets"`
}

// envDelivery is GET /api/v1/deliveries/ID.
type envDelivery struct {
	ID      int64       `json:"id"`
	Hook    string      `json:"hook"`
	Status  string      `json:"status"`
	Reason  string      `json:"reason"`
	Targets []envTarget `json:"targets"`
	Deploys []struct {
		Node     string `json:"node"`
		DeployID int64  `json:"deploy_id"`
		Status   string `json:"status"`
		Repo     string `json:"repo"`
	} `json:"deploys"`
}

// envDeploy is GET /api/v1/deploys/ID.
type envDeploy struct {
	ID         int64  `json:"id"`
	Repo       string `json:"repo"`
	Node       string `json:"node"`
	Status     string `json:"status"`
	Trigger    string `json:"trigger"`
	Ref        string `json:"ref"`
	FromCommit string `json:"from_commit"`
	ToCommit   string `json:"to_commit"`
	Reason     string `json:"reason"`
	Error      string `json:"error"`
}

// envFinished says whether a deploy status is final.
func envFinished(status string) bool {
	switch status {
	case "succeeded", "failed", "skipped", "interrupted":
		return true
	}
	return false
}

// shopPayload is the real GitHub push payload (testdata) rewritten as GitHub sends a push of
// ref to octo/shop: before and after (for an annotated tag, after is the tag object and the
// head commit the commit it points to, as `hookgate send --ref` builds it), the head
// commit's message, and a deletion's all-zero after with no head commit.
func shopPayload(t *testing.T, ref, before, after, commit, message string) []byte {
	t.Helper()
	zero := strings.Repeat("0", 40)
	if before == "" {
		before = zero
	}
	deleted := after == ""
	if deleted {
		after = zero
	}
	var p map[string]any
	if err := json.Unmarshal(testkit.Push(t, ref, before, after, "octo/shop"), &p); err != nil {
		t.Fatal(err)
	}
	p["created"], p["deleted"] = before == zero, deleted
	if deleted {
		p["head_commit"], p["commits"] = nil, []any{}
	} else {
		hc := p["head_commit"].(map[string]any)
		hc["id"], hc["message"] = commit, message
		p["commits"] = []any{hc}
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// postShop signs body with secret as GitHub does and posts it to addr's hook; it returns
// the answer with each target's outcome.
func postShop(t *testing.T, addr, hook string, body []byte, secret string) envAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/hooks/"+hook, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/environments-test")
	forge.SetDeliveryHeaders(req.Header, forge.ProviderGitHub, "push", newGUID(), body, []byte(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := envAnswer{HTTPStatus: resp.StatusCode}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("hook answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return a
}

// outcomes is targets as "repo=queued" or "repo=ignored: reason", in order.
func outcomes(targets []envTarget) []string {
	out := make([]string, len(targets))
	for i, tg := range targets {
		out[i] = tg.Repo + "=" + tg.Status
		if tg.Status != "queued" {
			out[i] += ": " + tg.Reason
		}
	}
	return out
}

// sameOutcomes compares outcomes with want, whose entries ending in "*" match by prefix
// (a pin's reason carries its time).
func sameOutcomes(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if p, ok := strings.CutSuffix(want[i], "*"); ok && strings.HasPrefix(got[i], p) {
			continue
		}
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// TestEndToEndEnvironments drives the built binary with one [hooks.shop] (secret_env) and
// three targets of one bare origin: staging from develop, prod from tags v*, docs from
// main when docs/** changed. Each push is a signed GitHub delivery; after each, the
// answer's status and targets, the delivery in the API (one, under the hook, with every
// target's outcome and the deploys it queued) and every checkout's HEAD and command runs
// are what the push should leave: a docs push deploys docs, a main push elsewhere ends
// docs' deploy skipped with its reason (checkout and commands untouched), tags deploy prod
// and an older one than live is ignored, [skip deploy] and a branch deletion are ignored
// for every target. Then `hookgate rollback prod` and `hookgate pin staging` each leave the
// other targets deploying their next pushes, and `hookgate unpin prod` brings origin's
// newest tag.
func TestEndToEndEnvironments(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	origin := testkit.NewOrigin(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	const secret = "e2e-shop-secret-5678"
	targets := []string{"docs", "prod", "staging"}
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`
[server]
listen = %q
database = "data/hookgate.db"
admin_token = %q

[hooks.shop]
secret_env = "SHOP_WEBHOOK_SECRET"
repository = "octo/shop"
`, addr, outcomesToken)
	for _, name := range targets {
		rule := map[string]string{"staging": `branch = "develop"`, "prod": `tags = "v*"`, "docs": `paths = ["docs/**"]`}[name]
		cfg += fmt.Sprintf(`
[repos.%s]
hook = "shop"
path = %q
url = %q
%s
poll = "0"
commands = ["git rev-parse HEAD >> ../%s.runs"]
timeout = "1m"
`, name, name, origin.Bare, rule, name)
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, bin, cfgPath, addr, "SHOP_WEBHOOK_SECRET="+secret)

	// What each checkout should be at and how often its commands ran, checked after every
	// step: "" is a target never deployed (no checkout, no run).
	head := map[string]string{}
	runs := map[string]int{}
	checkTargets := func(step string) {
		t.Helper()
		for _, name := range targets {
			path := filepath.Join(dir, name)
			if head[name] == "" {
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Fatalf("%s: %s has a checkout (%v), want none yet", step, name, err)
				}
			} else if got := testkit.CheckoutHead(t, path); got != head[name] {
				t.Fatalf("%s: %s's HEAD is %s, want %s\n%s", step, name, short(got), short(head[name]), g.logs.String())
			}
			b, _ := os.ReadFile(filepath.Join(dir, name+".runs"))
			lines := strings.Fields(string(b))
			if len(lines) != runs[name] || (runs[name] > 0 && lines[len(lines)-1] != head[name]) {
				t.Fatalf("%s: %s's commands ran at %q, want %d runs, the last at %s", step, name, lines, runs[name], short(head[name]))
			}
		}
	}
	deploy := func(id int64) envDeploy {
		t.Helper()
		var d envDeploy
		apiGet(t, addr, fmt.Sprintf("/api/v1/deploys/%d", id), &d)
		return d
	}
	finished := func(id int64) envDeploy {
		t.Helper()
		var d envDeploy
		testkit.Eventually(t, 30*time.Second, fmt.Sprintf("deploy %d to finish", id), func() bool {
			d = deploy(id)
			return envFinished(d.Status)
		})
		return d
	}
	// reconcile asks name's worker to compare origin with live now; it returns whether a
	// deploy was queued and why.
	reconcile := func(name string) (queued bool, reason string) {
		t.Helper()
		var out struct {
			DeployID *int64 `json:"deploy_id"`
			Reason   string `json:"reason"`
		}
		if code := api(t, http.MethodPost, "http://"+addr+"/api/v1/repos/"+name+"/reconcile", outcomesToken, &out); code != http.StatusOK {
			t.Fatalf("reconcile %s: %d", name, code)
		}
		return out.DeployID != nil, out.Reason
	}
	// push delivers a push and checks the answer and the recorded delivery against want
	// (target → "queued" or "ignored: reason"); it waits for the deploys it queued and
	// returns them by target.
	push := func(step string, body []byte, wantHTTP int, want ...string) map[string]envDeploy {
		t.Helper()
		a := postShop(t, addr, "shop", body, secret)
		wantStatus := "accepted"
		if wantHTTP == http.StatusOK {
			wantStatus = "ignored"
		}
		if a.HTTPStatus != wantHTTP || a.Status != wantStatus || !sameOutcomes(outcomes(a.Targets), want) {
			t.Fatalf("%s: answered %d %q %q\n targets %q\n   want %d %q", step, a.HTTPStatus, a.Status, a.Reason, outcomes(a.Targets), wantHTTP, want)
		}
		var d envDelivery
		apiGet(t, addr, fmt.Sprintf("/api/v1/deliveries/%d", a.DeliveryID), &d)
		if d.Hook != "shop" || d.Status != a.Status || d.Reason != a.Reason || !sameOutcomes(outcomes(d.Targets), want) {
			t.Fatalf("%s: delivery %d in the API: hook %q status %q reason %q targets %q", step, a.DeliveryID, d.Hook, d.Status, d.Reason, outcomes(d.Targets))
		}
		deploys := map[string]envDeploy{}
		for _, tg := range a.Targets {
			if (tg.Status == "queued") != (tg.DeployID != 0) {
				t.Fatalf("%s: %s is %s with deploy %d", step, tg.Repo, tg.Status, tg.DeployID)
			}
			if tg.DeployID != 0 {
				deploys[tg.Repo] = finished(tg.DeployID)
				if deploys[tg.Repo].Repo != tg.Repo {
					t.Fatalf("%s: deploy %d is %s's, want %s's", step, tg.DeployID, deploys[tg.Repo].Repo, tg.Repo)
				}
			}
		}
		// The delivery lists exactly the deploys it queued, each under its target.
		apiGet(t, addr, fmt.Sprintf("/api/v1/deliveries/%d", a.DeliveryID), &d)
		var listed []string
		for _, dp := range d.Deploys {
			if deploys[dp.Repo].ID != dp.DeployID || dp.Status != deploys[dp.Repo].Status {
				t.Fatalf("%s: delivery lists deploy %d of %s %s; the answer's: %+v", step, dp.DeployID, dp.Repo, dp.Status, deploys[dp.Repo])
			}
			listed = append(listed, dp.Repo)
		}
		if len(listed) != len(deploys) {
			t.Fatalf("%s: the delivery lists deploys of %q, the answer queued %d", step, listed, len(deploys))
		}
		return deploys
	}
	succeeded := func(step string, d envDeploy, ref, commit string) {
		t.Helper()
		if d.Status != "succeeded" || d.Ref != ref || d.ToCommit != commit {
			t.Fatalf("%s: %s's deploy %d: %s %s at %s (%s), want succeeded %s at %s\n%s", step, d.Repo, d.ID, d.Status, d.Ref, short(d.ToCommit), d.Error, ref, short(commit), g.logs.String())
		}
		head[d.Repo] = commit
		runs[d.Repo]++
	}
	onBranch := func(branch string, create bool) {
		args := []string{"checkout", "-q", branch}
		if create {
			args = []string{"checkout", "-q", "-b", branch}
		}
		testkit.Git(t, origin.Seed, args...)
		origin.Branch = branch
	}
	const (
		notMain    = "ignored: push to refs/heads/develop; this target deploys refs/heads/main"
		notTagsDev = "ignored: push to refs/heads/develop; this target deploys tags matching v*"
		notTagsMan = "ignored: push to refs/heads/main; this target deploys tags matching v*"
		notDevelop = "ignored: push to refs/heads/main; this target deploys refs/heads/develop"
	)
	tagPush := func(tag string) (string, string) {
		return "ignored: tag push refs/tags/" + tag + "; this target deploys refs/heads/main",
			"ignored: tag push refs/tags/" + tag + "; this target deploys refs/heads/develop"
	}
	checkTargets("at start")

	// develop deploys staging only.
	c0 := origin.Head()
	onBranch("develop", true)
	d1 := origin.Commit(map[string]string{"app.txt": "staging work\n"}, "staging work")
	got := push("develop", shopPayload(t, "refs/heads/develop", c0, d1, d1, "staging work"), 202,
		"docs="+notMain, "prod="+notTagsDev, "staging=queued")
	succeeded("develop", got["staging"], "refs/heads/develop", d1)
	checkTargets("develop")

	// main touching docs/ deploys docs (nothing live yet: it clones).
	onBranch("main", false)
	m1 := origin.Commit(map[string]string{"docs/index.md": "# Shop\n"}, "docs: start")
	got = push("main with docs", shopPayload(t, "refs/heads/main", c0, m1, m1, "docs: start"), 202,
		"docs=queued", "prod="+notTagsMan, "staging="+notDevelop)
	succeeded("main with docs", got["docs"], "refs/heads/main", m1)
	checkTargets("main with docs")

	// main not touching docs/: docs' deploy ends skipped with its reason, nothing ran.
	m2 := origin.Commit(map[string]string{"app.txt": "1.0\n"}, "app 1.0")
	got = push("main without docs", shopPayload(t, "refs/heads/main", m1, m2, m2, "app 1.0"), 202,
		"docs=queued", "prod="+notTagsMan, "staging="+notDevelop)
	if d := got["docs"]; d.Status != "skipped" || d.Reason != "no change under docs/** since live "+short(m1) ||
		d.FromCommit != m1 || d.ToCommit != m2 {
		t.Fatalf("main without docs: docs' deploy %+v, want skipped %s → %s with its reason", d, short(m1), short(m2))
	}
	if _, err := os.Stat(filepath.Join(dir, "docs", "app.txt")); !os.IsNotExist(err) {
		t.Fatalf("main without docs: the skipped deploy wrote app.txt into docs' checkout (%v)", err)
	}
	// Nor does a reconcile bring it: origin's head was decided (skipped) already.
	if queued, why := reconcile("docs"); queued ||
		why != "in sync: origin main at "+short(m2)+" changed nothing under paths since live "+short(m1)+" (its deploy was skipped)" {
		t.Fatalf("reconcile docs after the skip: queued %v, %q", queued, why)
	}
	checkTargets("main without docs")

	// Tags deploy prod: a lightweight tag, then an annotated one (its commit deploys).
	docsTag, stagingTag := tagPush("v1.0.0")
	origin.Tag("v1.0.0", m2)
	got = push("v1.0.0", shopPayload(t, "refs/tags/v1.0.0", "", m2, m2, "app 1.0"), 202,
		"docs="+docsTag, "prod=queued", "staging="+stagingTag)
	succeeded("v1.0.0", got["prod"], "refs/tags/v1.0.0", m2)
	checkTargets("v1.0.0")
	m3 := origin.Commit(map[string]string{"app.txt": "1.1\n"}, "app 1.1")
	tagObj := origin.AnnotatedTag("v1.1.0", m3, "release 1.1.0")
	docsTag, stagingTag = tagPush("v1.1.0")
	got = push("v1.1.0", shopPayload(t, "refs/tags/v1.1.0", "", tagObj, m3, "app 1.1"), 202,
		"docs="+docsTag, "prod=queued", "staging="+stagingTag)
	succeeded("v1.1.0", got["prod"], "refs/tags/v1.1.0", m3)
	checkTargets("v1.1.0")

	// An older tag than live is no automatic downgrade.
	origin.Tag("v1.0.1", m2)
	docsTag, stagingTag = tagPush("v1.0.1")
	push("v1.0.1", shopPayload(t, "refs/tags/v1.0.1", "", m2, m2, "app 1.0"), 200,
		"docs="+docsTag, "prod=ignored: v1.0.1 is older than live v1.1.0", "staging="+stagingTag)
	// Nor does a reconcile downgrade: origin's newest tag is v1.1.0, live.
	if queued, why := reconcile("prod"); queued || why != "in sync: origin tag v1.1.0 at "+short(m3)+" is live" {
		t.Fatalf("reconcile prod after v1.0.1: queued %v, %q", queued, why)
	}
	checkTargets("v1.0.1")

	// [skip deploy] is ignored for every target.
	onBranch("develop", false)
	d2 := origin.Commit(map[string]string{"app.txt": "staging wip\n"}, "wip [skip deploy]")
	push("[skip deploy]", shopPayload(t, "refs/heads/develop", d1, d2, d2, "wip [skip deploy]"), 200,
		"docs=ignored: [skip deploy]", "prod=ignored: [skip deploy]", "staging=ignored: [skip deploy]")
	checkTargets("[skip deploy]")

	// Deleting develop deploys nothing anywhere.
	testkit.Git(t, origin.Seed, "push", "-q", "origin", ":refs/heads/develop")
	gone := "ignored: refs/heads/develop was deleted; nothing to deploy"
	push("develop deleted", shopPayload(t, "refs/heads/develop", d2, "", "", ""), 200,
		"docs="+gone, "prod="+gone, "staging="+gone)
	checkTargets("develop deleted")

	// Roll prod back (to v1.0.0, the commit live before v1.1.0): prod is pinned there; staging
	// and docs deploy their next pushes, and a newer tag is ignored for prod.
	if code, out := runCLI(t, bin, "rollback", "prod", "--config", cfgPath); code != 0 {
		t.Fatalf("hookgate rollback prod: exit %d\n%s", code, out)
	}
	var prod struct {
		LiveCommit string `json:"live_commit"`
		Pinned     *struct {
			Commit string `json:"commit"`
			By     string `json:"by"`
		} `json:"pinned"`
	}
	testkit.Eventually(t, 30*time.Second, "prod rolled back to v1.0.0", func() bool {
		apiGet(t, addr, "/api/v1/repos/prod", &prod)
		return prod.LiveCommit == m2
	})
	if prod.Pinned == nil || prod.Pinned.Commit != m2 || prod.Pinned.By != "rollback" {
		t.Fatalf("after the rollback prod's pin is %+v, want rollback at %s", prod.Pinned, short(m2))
	}
	head["prod"], runs["prod"] = m2, runs["prod"]+1
	checkTargets("rollback prod")
	d3 := origin.Commit(map[string]string{"app.txt": "staging again\n"}, "staging again")
	got = push("develop after the rollback", shopPayload(t, "refs/heads/develop", "", d3, d3, "staging again"), 202,
		"docs="+notMain, "prod="+notTagsDev, "staging=queued")
	succeeded("develop after the rollback", got["staging"], "refs/heads/develop", d3)
	onBranch("main", false)
	m4 := origin.Commit(map[string]string{"docs/index.md": "# Shop 1.2\n", "app.txt": "1.2\n"}, "1.2 with docs")
	got = push("docs after the rollback", shopPayload(t, "refs/heads/main", m3, m4, m4, "1.2 with docs"), 202,
		"docs=queued", "prod="+notTagsMan, "staging="+notDevelop)
	succeeded("docs after the rollback", got["docs"], "refs/heads/main", m4)
	origin.Tag("v1.2.0", m4)
	docsTag, stagingTag = tagPush("v1.2.0")
	push("v1.2.0 while prod is pinned", shopPayload(t, "refs/tags/v1.2.0", "", m4, m4, "1.2 with docs"), 200,
		"docs="+docsTag, "prod=ignored: pinned at "+short(m2)+" by rollback since *", "staging="+stagingTag)
	checkTargets("after the rollback")

	// Pin staging where it is: its next push is ignored; prod, unpinned, brings origin's
	// newest tag and deploys the next one.
	if code, out := runCLI(t, bin, "pin", "staging", "--config", cfgPath); code != 0 {
		t.Fatalf("hookgate pin staging: exit %d\n%s", code, out)
	}
	onBranch("develop", false)
	d4 := origin.Commit(map[string]string{"app.txt": "staging pinned\n"}, "staging pinned")
	push("develop while staging is pinned", shopPayload(t, "refs/heads/develop", d3, d4, d4, "staging pinned"), 200,
		"docs="+notMain, "prod="+notTagsDev, "staging=ignored: pinned at "+short(d3)+" by pin since *")
	checkTargets("develop while staging is pinned")
	if code, out := runCLI(t, bin, "unpin", "prod", "--config", cfgPath); code != 0 {
		t.Fatalf("hookgate unpin prod: exit %d\n%s", code, out)
	}
	testkit.Eventually(t, 30*time.Second, "prod at v1.2.0 after the unpin", func() bool {
		apiGet(t, addr, "/api/v1/repos/prod", &prod)
		return prod.LiveCommit == m4
	})
	head["prod"], runs["prod"] = m4, runs["prod"]+1
	checkTargets("unpin prod")
	onBranch("main", false)
	m5 := origin.Commit(map[string]string{"app.txt": "1.3\n"}, "app 1.3")
	origin.Tag("v1.3.0", m5)
	docsTag, stagingTag = tagPush("v1.3.0")
	got = push("v1.3.0 while staging is pinned", shopPayload(t, "refs/tags/v1.3.0", "", m5, m5, "app 1.3"), 202,
		"docs="+docsTag, "prod=queued", "staging="+stagingTag)
	succeeded("v1.3.0 while staging is pinned", got["prod"], "refs/tags/v1.3.0", m5)
	checkTargets("v1.3.0 while staging is pinned")
}

// TestEnvironmentsFleetOnPostgres: two in-process gateways (web1, web2) on one PostgreSQL
// database and one bare origin, each with checkouts of its own, share [hooks.shop]:
// staging (develop) is deployed by web1 only, prod (tags v*) by both. A develop push sent
// to web2, which does not deploy staging, is recorded there and deployed on web1 alone; a
// tag push sent to web1 deploys prod on both nodes. Each node's checkouts are at the
// commits their targets should be, and the delivery lists its deploys per target and node.
func TestEnvironmentsFleetOnPostgres(t *testing.T) {
	database := pgtest.Database(t)
	origin := testkit.NewOrigin(t)
	const secret = "fleet-shop-secret-4321"
	nodes := []string{"web1", "web2"}
	dirs, addrs := map[string]string{}, map[string]string{}
	for _, node := range nodes {
		dirs[node], addrs[node] = t.TempDir(), freeAddr(t)
		cfg := fmt.Sprintf(`[server]
listen = %q
database = %q
node = %q
admin_token = %q

[hooks.shop]
secret = %q
repository = "octo/shop"

[repos.staging]
hook = "shop"
path = %q
url = %q
branch = "develop"
nodes = ["web1"]
poll = "0"
commands = ["git rev-parse HEAD >> ../staging.runs"]

[repos.prod]
hook = "shop"
path = %q
url = %q
tags = "v*"
nodes = ["web1", "web2"]
poll = "0"
commands = ["git rev-parse HEAD >> ../prod.runs"]
`, addrs[node], database, node, outcomesToken, secret, filepath.Join(dirs[node], "staging"), origin.Bare,
			filepath.Join(dirs[node], "prod"), origin.Bare)
		path := filepath.Join(dirs[node], "config.toml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		gatewaytest.Start(t, path)
	}
	// at says what each node's checkouts hold: target → commit, "" for none at all.
	at := func(step, node string, want map[string]string) {
		t.Helper()
		for _, name := range []string{"prod", "staging"} {
			path := filepath.Join(dirs[node], name)
			b, _ := os.ReadFile(filepath.Join(dirs[node], name+".runs"))
			ran := strings.Fields(string(b))
			if want[name] == "" {
				if _, err := os.Stat(path); !os.IsNotExist(err) || len(ran) != 0 {
					t.Fatalf("%s: %s has a checkout of %s (%v) or ran %q, want none", step, node, name, err, ran)
				}
				continue
			}
			if got := testkit.CheckoutHead(t, path); got != want[name] || len(ran) == 0 || ran[len(ran)-1] != want[name] {
				t.Fatalf("%s: %s's %s is at %s, its commands ran at %q; want %s", step, node, name, short(got), ran, short(want[name]))
			}
		}
	}
	// deployed sends a push to node and waits for every deploy the delivery lists to finish;
	// it returns the answer and the deploys as "target@node status ref to_commit", sorted.
	deployed := func(step, node string, body []byte) (envAnswer, []string) {
		t.Helper()
		a := postShop(t, addrs[node], "shop", body, secret)
		var d envDelivery
		var out []string
		// Polled with a deadline; a deploy never finished (queued for a node that does not
		// deploy its target) is named when the deadline passes.
		finishedAll := func() bool {
			apiGet(t, addrs["web1"], fmt.Sprintf("/api/v1/deliveries/%d", a.DeliveryID), &d)
			out = out[:0]
			done := true
			for _, dp := range d.Deploys {
				var full envDeploy
				apiGet(t, addrs[dp.Node], fmt.Sprintf("/api/v1/deploys/%d", dp.DeployID), &full)
				done = done && envFinished(full.Status)
				if full.Repo != dp.Repo || full.Node != dp.Node {
					t.Fatalf("%s: the delivery lists deploy %d as %s@%s; it is %s@%s", step, dp.DeployID, dp.Repo, dp.Node, full.Repo, full.Node)
				}
				out = append(out, fmt.Sprintf("%s@%s %s %s %s", dp.Repo, dp.Node, full.Status, full.Ref, short(full.ToCommit)))
			}
			return done
		}
		for deadline := time.Now().Add(30 * time.Second); !finishedAll(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: deploys unfinished after 30s: %q", step, out)
			}
		}
		slices.Sort(out)
		// The answer's deploy ids are the answering node's (other nodes' are in the API).
		for _, tg := range a.Targets {
			mine := int64(0)
			for _, dp := range d.Deploys {
				if dp.Repo == tg.Repo && dp.Node == node {
					mine = dp.DeployID
				}
			}
			if tg.DeployID != mine {
				t.Fatalf("%s: %s answered %s's deploy %d; the delivery lists %d on %s", step, node, tg.Repo, tg.DeployID, mine, node)
			}
		}
		if d.Hook != "shop" || !reflect.DeepEqual(outcomes(d.Targets), outcomes(a.Targets)) {
			t.Fatalf("%s: the delivery in the API: hook %q targets %q; answered %q", step, d.Hook, outcomes(d.Targets), outcomes(a.Targets))
		}
		return a, out
	}

	c0 := origin.Head()
	testkit.Git(t, origin.Seed, "checkout", "-q", "-b", "develop")
	origin.Branch = "develop"
	d1 := origin.Commit(map[string]string{"app.txt": "staging\n"}, "staging work")

	// Sent to web2, which does not deploy staging: recorded there, deployed on web1 alone.
	a, deploys := deployed("develop via web2", "web2", shopPayload(t, "refs/heads/develop", c0, d1, d1, "staging work"))
	want := []string{"prod=ignored: push to refs/heads/develop; this target deploys tags matching v*", "staging=queued"}
	if a.HTTPStatus != 202 || !reflect.DeepEqual(outcomes(a.Targets), want) ||
		!reflect.DeepEqual(deploys, []string{"staging@web1 succeeded refs/heads/develop " + short(d1)}) {
		t.Fatalf("develop via web2: %d %q, deploys %q", a.HTTPStatus, outcomes(a.Targets), deploys)
	}
	at("develop via web2", "web1", map[string]string{"staging": d1})
	at("develop via web2", "web2", map[string]string{})

	// A tag sent to web1 deploys prod on both nodes, its annotated tag peeled.
	testkit.Git(t, origin.Seed, "checkout", "-q", "main")
	origin.Branch = "main"
	m1 := origin.Commit(map[string]string{"app.txt": "1.0\n"}, "app 1.0")
	tagObj := origin.AnnotatedTag("v1.0.0", m1, "release 1.0.0")
	a, deploys = deployed("v1.0.0 via web1", "web1", shopPayload(t, "refs/tags/v1.0.0", "", tagObj, m1, "app 1.0"))
	want = []string{"prod=queued", "staging=ignored: tag push refs/tags/v1.0.0; this target deploys refs/heads/develop"}
	if a.HTTPStatus != 202 || !reflect.DeepEqual(outcomes(a.Targets), want) || !reflect.DeepEqual(deploys, []string{
		"prod@web1 succeeded refs/tags/v1.0.0 " + short(m1), "prod@web2 succeeded refs/tags/v1.0.0 " + short(m1)}) {
		t.Fatalf("v1.0.0 via web1: %d %q, deploys %q", a.HTTPStatus, outcomes(a.Targets), deploys)
	}
	at("v1.0.0 via web1", "web1", map[string]string{"staging": d1, "prod": m1})
	at("v1.0.0 via web1", "web2", map[string]string{"prod": m1})

	// An older tag, sent to web2, is ignored for prod on both nodes (the live tag is each
	// node's, and both are at v1.0.0).
	origin.Tag("v0.9.0", c0)
	a, deploys = deployed("v0.9.0 via web2", "web2", shopPayload(t, "refs/tags/v0.9.0", "", c0, c0, "initial commit"))
	want = []string{"prod=ignored: v0.9.0 is older than live v1.0.0", "staging=ignored: tag push refs/tags/v0.9.0; this target deploys refs/heads/develop"}
	if a.HTTPStatus != 200 || !reflect.DeepEqual(outcomes(a.Targets), want) || len(deploys) != 0 {
		t.Fatalf("v0.9.0 via web2: %d %q, deploys %q", a.HTTPStatus, outcomes(a.Targets), deploys)
	}
	at("v0.9.0 via web2", "web1", map[string]string{"staging": d1, "prod": m1})
	at("v0.9.0 via web2", "web2", map[string]string{"prod": m1})
}
