package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// environmentsGateway is the real gateway (workers not started: what is queued stays
// queued) with one hook, shop, deploying three targets (staging from develop, prod from
// tags v*, docs from main when docs/** changed), and a GitLab hook, lab, of one tag target.
func environmentsGateway(t *testing.T) *gateway {
	g, _ := environmentsGatewayAt(t)
	return g
}

// environmentsGatewayAt is environmentsGateway and its config.toml, for a reload.
func environmentsGatewayAt(t *testing.T) (*gateway, string) {
	t.Helper()
	dir := t.TempDir()
	database := filepath.Join(dir, "hookgate.db")
	if strings.HasPrefix(t.Name(), "TestOnPostgres/") {
		database = pgtest.Database(t)
	}
	cfg := gatewaytest.WriteConfig(t, fmt.Sprintf(`[server]
listen = %q
database = %q
node = %q

[hooks.shop]
secret = %q
repository = "octo/shop"

[repos.staging]
hook = "shop"
path = %q
branch = "develop"

[repos.prod]
hook = "shop"
path = %q
tags = "v*"

[repos.docs]
hook = "shop"
path = %q
paths = ["docs/**"]

[hooks.lab]
secret = %q
provider = "gitlab"

[repos.labprod]
hook = "lab"
path = %q
tags = "v*"
`, gatewaytest.FreeAddr(t), database, testNode, secret, filepath.Join(dir, "staging"), filepath.Join(dir, "prod"),
		filepath.Join(dir, "docs"), secret, filepath.Join(dir, "labprod")))
	gw := gatewaytest.Start(t, cfg, gatewaytest.Manual())
	return &gateway{t: t, store: gw.Store, database: gw.Database, url: gw.URL, srv: gw.G.Server(), mgr: gw.G.Manager()}, cfg
}

// shopPush is the real GitHub push payload for ref with the head commit's message; deleted
// pushes carry all-zero "after" as GitHub sends.
func shopPush(t *testing.T, ref, message string, deleted bool) []byte {
	after := "fd489864e7642b48eaad6e3f155c10e46810ec72"
	if deleted {
		after = strings.Repeat("0", 40)
	}
	var p map[string]any
	if err := json.Unmarshal(testkit.Push(t, ref, "", after, "octo/shop"), &p); err != nil {
		t.Fatal(err)
	}
	p["deleted"] = deleted
	p["head_commit"].(map[string]any)["message"] = message
	b, _ := json.Marshal(p)
	return b
}

// targetsOf is an answer's targets as "repo=status: reason", in order.
func targetsOf(answer map[string]any) []string {
	var out []string
	list, _ := answer["targets"].([]any)
	for _, v := range list {
		m := v.(map[string]any)
		s := fmt.Sprintf("%s=%s: %s", m["repo"], m["status"], m["reason"])
		if id(m["deploy_id"]) != 0 {
			s += " (deploy)"
		}
		out = append(out, s)
	}
	return out
}

// TestHookDeploysSeveralTargets: one delivery through a shared hook is answered and
// recorded once, under its hook, with each target's outcome; a target has no endpoint of
// its own; tag targets take tag pushes (GitLab's tag_push too), refuse an older tag than
// the live one and ignore a tag deletion; [skip deploy] ignores every target.
func TestHookDeploysSeveralTargets(t *testing.T) {
	g := environmentsGateway(t)
	ctx := context.Background()
	push := func(ref, message string, deleted bool, wantStatus int, want ...string) map[string]any {
		t.Helper()
		resp, answer := g.send(delivery{path: "/hooks/shop", event: "push", guid: gatewaytest.NewGUID(), body: shopPush(t, ref, message, deleted)})
		if resp.StatusCode != wantStatus || !reflect.DeepEqual(targetsOf(answer), want) {
			t.Fatalf("push of %s %q: %d %v\n got targets %q\nwant %q", ref, message, resp.StatusCode, answer, targetsOf(answer), want)
		}
		return answer
	}

	resp, answer := g.send(delivery{path: "/hooks/staging", event: "push", guid: "x", body: shopPush(t, "refs/heads/develop", "work", false)})
	if e, _ := answer["error"].(map[string]any); resp.StatusCode != http.StatusNotFound || e["code"] != "unknown_hook" {
		t.Fatalf("POST /hooks/staging (a target bound to a hook): %d %v, want 404 unknown_hook", resp.StatusCode, answer)
	}

	dev := push("refs/heads/develop", "work", false, 202,
		"docs=ignored: push to refs/heads/develop; this target deploys refs/heads/main",
		"prod=ignored: push to refs/heads/develop; this target deploys tags matching v*",
		"staging=queued: queued for deploy (deploy)")
	push("refs/heads/main", "docs: more", false, 202,
		"docs=queued: queued for deploy (deploy)",
		"prod=ignored: push to refs/heads/main; this target deploys tags matching v*",
		"staging=ignored: push to refs/heads/main; this target deploys refs/heads/develop")
	tag := push("refs/tags/v1.1.0", "release", false, 202,
		"docs=ignored: tag push refs/tags/v1.1.0; this target deploys refs/heads/main",
		"prod=queued: queued for deploy (deploy)",
		"staging=ignored: tag push refs/tags/v1.1.0; this target deploys refs/heads/develop")
	prodDeploy := id(tag["targets"].([]any)[1].(map[string]any)["deploy_id"])
	var dp map[string]any
	if code := g.api("GET", fmt.Sprintf("/api/v1/deploys/%d", prodDeploy), "", &dp); code != 200 || dp["repo"] != "prod" || dp["ref"] != "refs/tags/v1.1.0" {
		t.Fatalf("prod's deploy: %d repo %v ref %v, want prod at refs/tags/v1.1.0", code, dp["repo"], dp["ref"])
	}
	// The worker's part, stepped by hand: prod's deploy of v1.1.0 succeeds.
	claimed, err := g.store.ClaimDeploy(ctx, "prod")
	if err != nil || claimed.ID != prodDeploy {
		t.Fatalf("claim prod: %+v %v", claimed, err)
	}
	if err := g.store.FinishDeploy(ctx, claimed.ID, store.Result{Status: store.DeploySucceeded}); err != nil {
		t.Fatal(err)
	}
	older := push("refs/tags/v1.0.1", "backport", false, 200,
		"docs=ignored: tag push refs/tags/v1.0.1; this target deploys refs/heads/main",
		"prod=ignored: v1.0.1 is older than live v1.1.0",
		"staging=ignored: tag push refs/tags/v1.0.1; this target deploys refs/heads/develop")
	if older["status"] != "ignored" {
		t.Fatalf("older tag: status %v, want ignored", older["status"])
	}
	skip := push("refs/heads/develop", "wip [skip deploy]", false, 200,
		"docs=ignored: [skip deploy]", "prod=ignored: [skip deploy]", "staging=ignored: [skip deploy]")
	if skip["reason"] != "[skip deploy]" {
		t.Fatalf("[skip deploy]: reason %v", skip["reason"])
	}
	gone := "refs/tags/v1.1.0 was deleted; nothing to deploy"
	push("refs/tags/v1.1.0", "", true, 200, "docs=ignored: "+gone, "prod=ignored: "+gone, "staging=ignored: "+gone)

	// GitLab's tag event, its real payload, to a tag target.
	body := testkit.Payload(t, "gitlab/tag.json")
	req, _ := http.NewRequest(http.MethodPost, g.url+"/hooks/lab", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	forge.SetDeliveryHeaders(req.Header, forge.ProviderGitLab, "tag_push", gatewaytest.NewGUID(), body, []byte(secret))
	resp, answer = g.do(req)
	if resp.StatusCode != 202 || !reflect.DeepEqual(targetsOf(answer), []string{"labprod=queued: queued for deploy (deploy)"}) {
		t.Fatalf("GitLab tag push: %d %v", resp.StatusCode, answer)
	}

	// The API: each delivery once under its hook, each target's outcome, each deploy's target.
	var list struct {
		Deliveries []struct {
			ID      int64  `json:"id"`
			Hook    string `json:"hook"`
			Repo    string `json:"repo"`
			Targets []struct {
				Repo, Status, Reason string
			} `json:"targets"`
			Deploys []struct {
				Repo     string `json:"repo"`
				DeployID int64  `json:"deploy_id"`
			} `json:"deploys"`
		} `json:"deliveries"`
	}
	if code := g.api("GET", "/api/v1/deliveries?hook=shop", "", &list); code != 200 || len(list.Deliveries) != 6 {
		t.Fatalf("?hook=shop: %d, %d deliveries, want 6", code, len(list.Deliveries))
	}
	first := list.Deliveries[len(list.Deliveries)-1]
	if first.ID != id(dev["delivery_id"]) || first.Hook != "shop" || len(first.Targets) != 3 ||
		len(first.Deploys) != 1 || first.Deploys[0].Repo != "staging" || first.Deploys[0].DeployID != id(dev["deploy_id"]) {
		t.Fatalf("the develop push in the API: %+v", first)
	}
	if code := g.api("GET", "/api/v1/deliveries?hook=lab", "", &list); code != 200 || len(list.Deliveries) != 1 || list.Deliveries[0].Hook != "lab" {
		t.Fatalf("?hook=lab: %d %+v", code, list.Deliveries)
	}
	if code := g.api("GET", "/api/v1/deliveries?repo=docs", "", &list); code != 200 || len(list.Deliveries) != 6 {
		t.Fatalf("?repo=docs: %d, %d deliveries, want the 6 that decided for docs", code, len(list.Deliveries))
	}
	if code := g.api("GET", "/api/v1/deliveries?repo=shop", "", &list); code != 200 || len(list.Deliveries) != 0 {
		t.Fatalf("?repo=shop (a hook, not a target): %d, %d deliveries, want 0", code, len(list.Deliveries))
	}

	// Metrics: each target's outcome under its hook; the delivery counted once, by hook.
	resp, err = http.Get(g.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`hookgate_delivery_targets_total{hook="shop",outcome="queued",repo="staging"} 1`,
		`hookgate_delivery_targets_total{hook="shop",outcome="ignored",repo="staging"} 5`,
		`hookgate_delivery_targets_total{hook="shop",outcome="queued",repo="prod"} 1`,
		`hookgate_delivery_targets_total{hook="lab",outcome="queued",repo="labprod"} 1`,
		`hookgate_deliveries_total{event="push",outcome="accepted",repo="shop"} 3`,
		`hookgate_deliveries_total{event="push",outcome="ignored",repo="shop"} 3`,
	} {
		if !strings.Contains(string(raw), want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}

	// A replay is decided again for each target of the hook.
	var replay struct {
		Hook     string `json:"hook"`
		ReplayOf int64  `json:"replay_of"`
		Targets  []struct {
			Repo, Status, Reason string
		} `json:"targets"`
	}
	if code := g.api("POST", fmt.Sprintf("/api/v1/deliveries/%d/redeliver", id(dev["delivery_id"])), "", &replay); code != 202 ||
		replay.Hook != "shop" || replay.ReplayOf != id(dev["delivery_id"]) || len(replay.Targets) != 3 ||
		replay.Targets[2].Repo != "staging" || replay.Targets[2].Status != "queued" || replay.Targets[1].Status != "ignored" {
		t.Fatalf("replay of the develop push: %d %+v", code, replay)
	}
}

// TestReloadChangesHooksAndTargets: a reload that removes a hook, adds a target to another
// and changes one's tag glob is applied to the next delivery, as for repositories.
func TestReloadChangesHooksAndTargets(t *testing.T) {
	g, cfg := environmentsGatewayAt(t)
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	text = text[:strings.Index(text, "[hooks.lab]")] + "[repos.qa]\nhook = \"shop\"\npath = " +
		fmt.Sprintf("%q", filepath.Join(t.TempDir(), "qa")) + "\nbranch = \"qa\"\n"
	text = strings.Replace(text, `tags = "v*"`, `tags = "release-*"`, 1)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := g.api("POST", "/api/v1/reload", "", nil); code != http.StatusOK {
		t.Fatalf("reload: %d", code)
	}
	body := testkit.Payload(t, "gitlab/tag.json")
	req, _ := http.NewRequest(http.MethodPost, g.url+"/hooks/lab", strings.NewReader(string(body)))
	forge.SetDeliveryHeaders(req.Header, forge.ProviderGitLab, "tag_push", gatewaytest.NewGUID(), body, []byte(secret))
	if resp, answer := g.do(req); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the removed hook lab: %d %v, want 404", resp.StatusCode, answer)
	}
	_, answer := g.send(delivery{path: "/hooks/shop", event: "push", guid: gatewaytest.NewGUID(), body: shopPush(t, "refs/heads/qa", "try", false)})
	if got := targetsOf(answer); len(got) != 4 || got[2] != "qa=queued: queued for deploy (deploy)" {
		t.Fatalf("push of qa after the reload: %q", got)
	}
	_, answer = g.send(delivery{path: "/hooks/shop", event: "push", guid: gatewaytest.NewGUID(), body: shopPush(t, "refs/tags/release-7", "r", false)})
	if got := targetsOf(answer); got[1] != "prod=queued: queued for deploy (deploy)" {
		t.Fatalf("tag release-7 after the glob changed: %q", got)
	}
}
