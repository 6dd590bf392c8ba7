package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// post sends body (none when "") to the API and decodes the JSON answer.
func (g *gateway) post(path, body string) (int, map[string]any) {
	g.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(http.MethodPost, g.url+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		g.t.Fatalf("POST %s: %d, not JSON: %q", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// errCode is the code of an error answer.
func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// manualDeploy deploys origin's head through the API and waits for it to succeed.
func (g *gateway) manualDeploy() store.Deploy {
	g.t.Helper()
	code, out := g.post("/api/v1/repos/site/deploy", "")
	if code != http.StatusAccepted {
		g.t.Fatalf("manual deploy: %d %v", code, out)
	}
	dp := g.waitDeploy(id(out["id"]))
	if dp.Status != store.DeploySucceeded {
		g.t.Fatalf("manual deploy %s: %s\n%s", dp.Status, dp.Error, dp.Log)
	}
	return dp
}

func (g *gateway) repoJSON() map[string]any {
	g.t.Helper()
	var out struct {
		Repos []map[string]any `json:"repos"`
	}
	if code := g.api(http.MethodGet, "/api/v1/repos", "", &out); code != http.StatusOK || len(out.Repos) != 1 {
		g.t.Fatalf("GET /api/v1/repos: %d %v", code, out)
	}
	return out.Repos[0]
}

func TestAPIRollbackPinAndUnpin(t *testing.T) {
	g := newGateway(t)
	c1 := testkit.CheckoutHead(t, g.checkout)
	g.origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	c2 := g.manualDeploy().ToCommit
	c3 := g.origin.Commit(map[string]string{"app.txt": "v3\n", "v3.txt": "new\n"}, "v3")
	g.manualDeploy()
	if err := os.WriteFile(filepath.Join(g.checkout, "uploads.local"), []byte("user data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := g.repoJSON(); r["pinned"] != nil {
		t.Fatalf("pinned before any pin: %v", r["pinned"])
	}

	// Without a body: back to the commit live before the live one.
	code, out := g.post("/api/v1/repos/site/rollback", "")
	if code != http.StatusAccepted || out["commit"] != c2 || id(out["deploy_id"]) == 0 {
		t.Fatalf("rollback: %d %v; want 202 with commit %s", code, out, c2)
	}
	dp := g.waitDeploy(id(out["deploy_id"]))
	if dp.Status != store.DeploySucceeded || dp.Trigger != store.TriggerRollback || dp.ToCommit != c2 ||
		testkit.CheckoutHead(t, g.checkout) != c2 || !strings.Contains(dp.Reason, "rollback to "+c2[:7]) {
		t.Fatalf("rollback deploy: %s trigger %s to %s reason %q; HEAD %s\n%s", dp.Status, dp.Trigger, dp.ToCommit,
			dp.Reason, testkit.CheckoutHead(t, g.checkout), dp.Log)
	}
	if _, err := os.Stat(filepath.Join(g.checkout, "v3.txt")); !os.IsNotExist(err) {
		t.Fatal("a file of the rolled-back commit is still there")
	}
	if b, err := os.ReadFile(filepath.Join(g.checkout, "uploads.local")); err != nil || string(b) != "user data\n" {
		t.Fatal("an untracked file did not survive the rollback")
	}
	var dj map[string]any
	g.api(http.MethodGet, "/api/v1/deploys/"+strconv.FormatInt(dp.ID, 10), "", &dj)
	if dj["trigger"] != "rollback" || dj["reason"] != dp.Reason {
		t.Fatalf("deploy JSON: trigger %v reason %v", dj["trigger"], dj["reason"])
	}
	pin, _ := g.repoJSON()["pinned"].(map[string]any)
	if pin["commit"] != c2 || pin["by"] != "rollback" || pin["at"] == nil {
		t.Fatalf("pinned = %v", pin)
	}

	// A rollback while pinned moves the pin; a prefix of 7 is enough.
	code, out = g.post("/api/v1/repos/site/rollback", `{"commit": "`+c1[:7]+`"}`)
	if code != http.StatusAccepted || out["commit"] != c1 {
		t.Fatalf("rollback to a prefix: %d %v", code, out)
	}
	g.waitDeploy(id(out["deploy_id"]))
	if pin, _ := g.repoJSON()["pinned"].(map[string]any); pin["commit"] != c1 || testkit.CheckoutHead(t, g.checkout) != c1 {
		t.Fatalf("pin after the second rollback: %v", pin)
	}

	// Refusals.
	for _, c := range []struct {
		path, body string
		status     int
		code       string
	}{
		{"/api/v1/repos/site/rollback", `{"commit": "0123456789abcdef0123456789abcdef01234567"}`, 422, "unknown_commit"},
		{"/api/v1/repos/site/rollback", `{"commit": "` + c1[:5] + `"}`, 422, "unknown_commit"},
		{"/api/v1/repos/site/rollback", `{"commit": 7}`, 400, "invalid_body"},
		{"/api/v1/repos/site/rollback", `{"sha": "abc"}`, 400, "invalid_body"},
		{"/api/v1/repos/nope/rollback", "", 404, "unknown_repo"},
		{"/api/v1/repos/nope/pin", "", 404, "unknown_repo"},
		{"/api/v1/repos/nope/unpin", "", 404, "unknown_repo"},
		{"/api/v1/repos/nope/reconcile", "", 404, "unknown_repo"},
		{"/api/v1/repos/site/pin", `{"commit": "0123456789abcdef"}`, 422, "unknown_commit"},
		{"/api/v1/repos/site/deploy", "", 409, "pinned"},
	} {
		if code, out := g.post(c.path, c.body); code != c.status || errCode(out) != c.code {
			t.Errorf("POST %s %s: %d %v; want %d %s", c.path, c.body, code, out, c.status, c.code)
		}
	}
	// The refusal says why once: "… is not in the history of the branch at …", not that
	// followed by the same thing in other words.
	_, out = g.post("/api/v1/repos/site/rollback", `{"commit": "0123456789abcdef"}`)
	msg, _ := out["error"].(map[string]any)["message"].(string)
	if !strings.HasPrefix(msg, "0123456789abcdef is not in the history of the branch at ") || strings.Count(msg, "history") != 1 {
		t.Errorf("unknown commit's message: %q", msg)
	}

	// A push while pinned is recorded and ignored; reconcile queues nothing.
	resp, hook := g.send(delivery{event: "push", guid: "pinned-push",
		body: testkit.Push(t, "refs/heads/main", c2, c3, "binkkatal/sample_app")})
	if resp.StatusCode != http.StatusOK || hook["status"] != "ignored" ||
		!strings.HasPrefix(hook["reason"].(string), "pinned at "+c1[:7]) || hook["deploy_id"] != nil {
		t.Fatalf("push while pinned: %d %v", resp.StatusCode, hook)
	}
	code, out = g.post("/api/v1/repos/site/reconcile", "")
	if code != http.StatusOK || out["deploy_id"] != nil || out["origin_commit"] != c3 || out["live_commit"] != c1 ||
		!strings.HasPrefix(out["reason"].(string), "pinned at "+c1[:7]) {
		t.Fatalf("reconcile while pinned: %d %v", code, out)
	}
	r := g.repoJSON()
	if r["origin_commit"] != c3 || r["origin_checked_at"] == nil {
		t.Fatalf("origin fields: %v", r)
	}

	// Unpin deploys origin's head at once.
	code, out = g.post("/api/v1/repos/site/unpin", "")
	if code != http.StatusOK || id(out["deploy_id"]) == 0 {
		t.Fatalf("unpin: %d %v", code, out)
	}
	dp = g.waitDeploy(id(out["deploy_id"]))
	if dp.Trigger != store.TriggerReconcile || dp.Status != store.DeploySucceeded || testkit.CheckoutHead(t, g.checkout) != c3 {
		t.Fatalf("deploy after unpin: %s %s; HEAD %s", dp.Trigger, dp.Status, testkit.CheckoutHead(t, g.checkout))
	}
	if g.repoJSON()["pinned"] != nil {
		t.Fatal("still pinned after unpin")
	}
	// Its reason is the unpin: the push of c3 was delivered (and ignored for the pin).
	if want := "origin main at " + c3[:7] + ", live " + c1[:7] + ": the pin is lifted, so origin's head deploys"; dp.Reason != want {
		t.Fatalf("reason of the deploy after unpin: %q, want %q", dp.Reason, want)
	}

	// Pin without a body holds the live commit; with one, any commit of the history, and
	// neither deploys.
	code, out = g.post("/api/v1/repos/site/pin", "")
	if p, _ := out["pinned"].(map[string]any); code != http.StatusOK || p["commit"] != c3 || p["by"] != "pin" {
		t.Fatalf("pin: %d %v", code, out)
	}
	code, out = g.post("/api/v1/repos/site/pin", `{"commit": "`+c2+`"}`)
	if p, _ := out["pinned"].(map[string]any); code != http.StatusOK || p["commit"] != c2 {
		t.Fatalf("pin c2: %d %v", code, out)
	}
	if testkit.CheckoutHead(t, g.checkout) != c3 {
		t.Fatal("pin moved the checkout")
	}
	code, out = g.post("/api/v1/repos/site/unpin", "")
	if code != http.StatusOK || out["deploy_id"] != nil {
		t.Fatalf("unpin with origin live: %d %v", code, out)
	}
}

// TestUnpinAnswersWithTheDeployAlreadyQueued: a poll (or a push) can land between an
// unpin lifting the pin and the unpin's own look at origin, and queue origin's head first.
// The unpin then answers with that deploy, which `hookgate unpin` waits for, rather than
// "nothing to deploy" (TestEndToEndOutcomes failed so under load). The workers stay idle
// until the end, so the interleaving is set up step by step.
func TestUnpinAnswersWithTheDeployAlreadyQueued(t *testing.T) {
	g := newIdleGateway(t)
	ctx := context.Background()
	c1 := testkit.CheckoutHead(t, g.checkout)
	if code, out := g.post("/api/v1/repos/site/pin", ""); code != http.StatusOK {
		t.Fatalf("pin: %d %v", code, out)
	}
	c2 := g.origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")

	// The unpin's first step, then the poll, then the unpin's check.
	if _, err := g.store.Unpin(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	poll, err := g.mgr.Reconcile(ctx, "site")
	if err != nil || poll.DeployID == 0 {
		t.Fatalf("the poll after the pin was lifted: %+v, %v", poll, err)
	}
	code, out := g.post("/api/v1/repos/site/unpin", "")
	if code != http.StatusOK || id(out["deploy_id"]) != poll.DeployID {
		t.Fatalf("unpin while deploy %d is queued: %d %v; want that deploy", poll.DeployID, code, out)
	}

	// That deploy is the one that brings origin's head.
	g.mgr.Start()
	if dp := g.waitDeploy(poll.DeployID); dp.Status != store.DeploySucceeded || testkit.CheckoutHead(t, g.checkout) != c2 {
		t.Fatalf("deploy %d: %s; HEAD %s (was %s), want origin's %s", dp.ID, dp.Status, testkit.CheckoutHead(t, g.checkout), c1, c2)
	}
	if g.repoJSON()["pinned"] != nil {
		t.Fatal("still pinned after unpin")
	}
}

func TestAPIRollbackWithNothingToRollBackTo(t *testing.T) {
	g := newGateway(t)
	if code, out := g.post("/api/v1/repos/site/rollback", ""); code != http.StatusConflict || errCode(out) != "no_previous_deploy" {
		t.Fatalf("rollback with no deploys: %d %v", code, out)
	}
	g.manualDeploy()
	if code, out := g.post("/api/v1/repos/site/rollback", ""); code != http.StatusConflict || errCode(out) != "no_previous_deploy" {
		t.Fatalf("rollback with one deploy: %d %v", code, out)
	}
}

// TestOriginCheckMetrics: each look-up of origin is counted by its result.
func TestOriginCheckMetrics(t *testing.T) {
	origin := testkit.NewOrigin(t)
	checkout := origin.Clone()
	g := startGateway(t, nil, []gatewaytest.Option{gatewaytest.Repos(gatewaytest.Repo{Path: checkout, Commands: []string{}})},
		func(o *server.Options) { o.Hooks[0].Repository = "" })
	sample := func(result string) float64 {
		_, m := g.scrape(nil)
		return m[`hookgate_origin_checks_total{repo="site",result="`+result+`"}`]
	}
	if sample("in_sync") != 0 || sample("deployed") != 0 {
		t.Fatal("origin check counters do not start at 0")
	}
	g.post("/api/v1/repos/site/reconcile", "")
	origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	g.post("/api/v1/repos/site/reconcile", "") // queued, not claimed: the worker is not started
	g.post("/api/v1/repos/site/reconcile", "") // busy: drift
	testkit.Git(t, checkout, "remote", "set-url", "origin", filepath.Join(t.TempDir(), "gone.git"))
	// The contract: 200 with the check's fields; a failed look-up queues nothing
	// and says why.
	if code, out := g.post("/api/v1/repos/site/reconcile", ""); code != http.StatusOK || out["origin_commit"] != nil ||
		out["deploy_id"] != nil || out["repo"] != "site" || out["origin_error"] == nil || out["origin_error"] == "" {
		t.Fatalf("reconcile with origin gone: %d %v", code, out)
	}
	if r := g.repoJSON(); r["origin_error"] == "" || r["origin_error"] == nil || r["origin_commit"] != nil {
		t.Fatalf("origin fields after a failed look-up: %v", r)
	}
	for result, want := range map[string]float64{"in_sync": 1, "deployed": 1, "drift": 1, "error": 1} {
		if got := sample(result); got != want {
			t.Errorf("hookgate_origin_checks_total{result=%q} = %v, want %v", result, got, want)
		}
	}
}

// TestPageFormsRefuseOtherSites: the rollback, pin and unpin forms, like Deploy now, are
// refused when another site posts them with the operator's browser; from hookgate's own
// pages they work, and a refusal is a page saying why.
func TestPageFormsRefuseOtherSites(t *testing.T) {
	g := newGateway(t)
	g.origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	earlier := g.manualDeploy()
	g.origin.Commit(map[string]string{"app.txt": "v3\n"}, "v3")
	g.manualDeploy()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path, form string, headers map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, g.url+path, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, path := range []string{"/repos/site/rollback", "/repos/site/pin", "/repos/site/unpin"} {
		resp, body := post(path, "commit="+earlier.ToCommit, map[string]string{"Sec-Fetch-Site": "cross-site"})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "came from another site") {
			t.Fatalf("cross-site %s: %d\n%s", path, resp.StatusCode, body)
		}
	}
	if p, err := g.store.GetPin(context.Background(), "site"); err != nil || p != nil {
		t.Fatalf("a cross-site post pinned: %+v %v", p, err)
	}
	same := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": g.url}
	resp, body := post("/repos/site/pin", "", same)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/repos" {
		t.Fatalf("pin: %d\n%s", resp.StatusCode, body)
	}
	resp, body = post("/repos/site/deploy", "", same)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "pinned at") {
		t.Fatalf("Deploy now while pinned: %d\n%s", resp.StatusCode, body)
	}
	resp, body = post("/repos/site/rollback", "commit=0123456789abcdef", same)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "not in the history") {
		t.Fatalf("rollback to an unknown commit: %d\n%s", resp.StatusCode, body)
	}
}

// TestReposPageShowsDriftAndLookUpErrors: the repositories page says when origin is ahead
// of what is live, and when origin could not be asked.
func TestReposPageShowsDriftAndLookUpErrors(t *testing.T) {
	g := newGateway(t)
	if code, out := g.post("/api/v1/repos/site/pin", ""); code != http.StatusOK {
		t.Fatalf("pin: %d %v", code, out)
	}
	ahead := g.origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	if code, out := g.post("/api/v1/repos/site/reconcile", ""); code != http.StatusOK || out["deploy_id"] != nil {
		t.Fatalf("reconcile while pinned: %d %v", code, out)
	}
	page := okPage(t, g.url, "/repos")
	if !strings.Contains(page, "origin ahead: "+ahead[:7]) || !strings.Contains(page, "pinned at ") {
		t.Fatalf("repositories page without the drift or the pin:\n%s", page)
	}
	testkit.Git(t, g.checkout, "remote", "set-url", "origin", filepath.Join(t.TempDir(), "gone.git"))
	g.post("/api/v1/repos/site/reconcile", "")
	if page := okPage(t, g.url, "/repos"); !strings.Contains(page, "origin look-up failed") || strings.Contains(page, "origin ahead") {
		t.Fatalf("repositories page after a failed look-up:\n%s", page)
	}
}
