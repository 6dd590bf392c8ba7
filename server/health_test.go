package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// healthGateway is a whole gateway whose site has a [repos.site.health] url: a service
// that answers 200 when the checkout's health.txt says ok, 503 otherwise.
func healthGateway(t *testing.T, more string) *gatewaytest.Gateway {
	t.Helper()
	var checkout atomic.Value
	checkout.Store("")
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := os.ReadFile(filepath.Join(checkout.Load().(string), "health.txt"))
		if strings.TrimSpace(string(b)) != "ok" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		w.Write(b)
	}))
	t.Cleanup(svc.Close)
	opts := []gatewaytest.Option{gatewaytest.Repos(gatewaytest.Repo{
		Commands: []string{"echo deployed $HOOKGATE_COMMIT"},
		TOML: fmt.Sprintf("[repos.site.health]\nurl = %q\ninterval = \"20ms\"\ndeadline = \"500ms\"\n%s",
			svc.URL+"/healthz", more),
	})}
	if strings.HasPrefix(t.Name(), "TestOnPostgres/") {
		opts = append(opts, gatewaytest.Postgres())
	}
	g := gatewaytest.New(t, opts...)
	checkout.Store(g.Checkout["site"])
	return g
}

// pushAndWait pushes files as a new commit, delivers the push and waits for its deploy to end.
func pushAndWait(t *testing.T, g *gatewaytest.Gateway, files map[string]string) store.Deploy {
	t.Helper()
	before := g.Origin["site"].Head()
	after := g.Origin["site"].Commit(files, "change")
	resp, out := g.Send(gatewaytest.Delivery{Body: testkit.Push(t, "refs/heads/main", before, after, gatewaytest.Repository)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push answered %d %v", resp.StatusCode, out)
	}
	return waitEnd(t, g, int64(out["deploy_id"].(float64)))
}

func waitEnd(t *testing.T, g *gatewaytest.Gateway, id int64) store.Deploy {
	t.Helper()
	var dp store.Deploy
	testkit.Eventually(t, 30*time.Second, fmt.Sprintf("deploy %d to end", id), func() bool {
		var err error
		dp, err = g.Store.Deploy(context.Background(), id)
		return err == nil && dp.Status != store.DeployQueued && dp.Status != store.DeployRunning && dp.Status != store.DeployVerifying
	})
	return dp
}

func getBody(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type deployHealth struct {
	Status     string `json:"status"`
	Trigger    string `json:"trigger"`
	RollbackOf int64  `json:"rollback_of"`
	Health     *struct {
		Result string `json:"result"`
		Probes []struct {
			Code   int    `json:"code"`
			Passed bool   `json:"passed"`
			Output string `json:"output"`
			Error  string `json:"error"`
			Kind   string `json:"kind"`
		} `json:"probes"`
	} `json:"health"`
}

func apiDeploy(t *testing.T, g *gatewaytest.Gateway, id int64) deployHealth {
	t.Helper()
	code, b := getBody(t, fmt.Sprintf("%s/api/v1/deploys/%d", g.URL, id))
	var out deployHealth
	if code != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("GET deploy %d: %d %s", id, code, b)
	}
	return out
}

func TestHealthCheckInTheAPIAndOnThePage(t *testing.T) {
	g := healthGateway(t, "")
	good := pushAndWait(t, g, map[string]string{"health.txt": "ok\n"})
	if good.Status != store.DeploySucceeded {
		t.Fatalf("good deploy: %s %q\n%s", good.Status, good.Error, good.Log)
	}
	got := apiDeploy(t, g, good.ID)
	if got.Health == nil || got.Health.Result != "passed" || len(got.Health.Probes) != 1 || got.Health.Probes[0].Code != 200 ||
		got.Health.Probes[0].Output != "ok\n" || got.Health.Probes[0].Kind != "url" {
		t.Fatalf("API of the good deploy: %+v", got.Health)
	}
	bad := pushAndWait(t, g, map[string]string{"health.txt": "database unreachable\n"})
	if bad.Status != store.DeployFailed || !strings.HasPrefix(bad.Error, "health check failed: GET ") {
		t.Fatalf("bad deploy: %s %q", bad.Status, bad.Error)
	}
	got = apiDeploy(t, g, bad.ID)
	if got.Health == nil || got.Health.Result != "failed" || len(got.Health.Probes) < 2 || got.Health.Probes[0].Code != 503 ||
		got.Health.Probes[0].Output != "database unreachable\n" || !strings.Contains(got.Health.Probes[0].Error, "answered 503") {
		t.Fatalf("API of the bad deploy: %+v", got.Health)
	}
	// The page shows the probes, with the service's answer, beside the output.
	code, page := getBody(t, fmt.Sprintf("%s/deploys/%d", g.URL, bad.ID))
	if code != http.StatusOK || !strings.Contains(string(page), "Health check") ||
		!strings.Contains(string(page), "database unreachable") || !strings.Contains(string(page), "HTTP 503") ||
		!strings.Contains(string(page), "deployed "+bad.ToCommit) {
		t.Fatalf("deploy page %d lacks the probes or the output:\n%s", code, page)
	}
	// The automatic rollback runs at once and names the failed deploy.
	var rollbackID int64
	testkit.Eventually(t, 30*time.Second, "the automatic rollback", func() bool {
		list, err := g.Store.ListDeploys(context.Background(), store.DeployFilter{Repo: "site", Trigger: store.TriggerAutoRollback})
		if err == nil && len(list) == 1 {
			rollbackID = list[0].ID
		}
		return rollbackID != 0
	})
	rb := waitEnd(t, g, rollbackID)
	if rb.Status != store.DeploySucceeded || rb.ToCommit != good.ToCommit {
		t.Fatalf("rollback: %s to %s %q", rb.Status, rb.ToCommit, rb.Error)
	}
	if got := apiDeploy(t, g, rollbackID); got.RollbackOf != bad.ID || got.Trigger != "auto_rollback" || got.Health.Result != "passed" {
		t.Fatalf("API of the rollback: %+v", got)
	}
	code, b := getBody(t, fmt.Sprintf("%s/metrics", g.URL))
	if code != http.StatusOK || !strings.Contains(string(b), `hookgate_health_checks_total{repo="site",result="failed"} 1`) ||
		!strings.Contains(string(b), `hookgate_health_checks_total{repo="site",result="passed"} 2`) ||
		!strings.Contains(string(b), `hookgate_rollbacks_total{repo="site",result="succeeded"} 1`) ||
		!strings.Contains(string(b), `hookgate_verify_duration_seconds_count{repo="site"} 3`) {
		t.Fatalf("metrics %d:\n%s", code, grepLines(string(b), "hookgate_"))
	}
}

// apiDo calls the API with an optional JSON body and decodes the answer into out.
func apiDo(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %q", method, url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

func TestBadCommitIsNotDeployedAgainUnlessForced(t *testing.T) {
	g := healthGateway(t, "")
	good := pushAndWait(t, g, map[string]string{"health.txt": "ok\n"})
	before := g.Origin["site"].Head()
	badCommit := g.Origin["site"].Commit(map[string]string{"health.txt": "broken\n"}, "broken")
	body := testkit.Push(t, "refs/heads/main", before, badCommit, gatewaytest.Repository)
	guid := gatewaytest.NewGUID()
	resp, out := g.Send(gatewaytest.Delivery{GUID: guid, Body: body})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push answered %d %v", resp.StatusCode, out)
	}
	bad := waitEnd(t, g, int64(out["deploy_id"].(float64)))
	reason := fmt.Sprintf("commit %s failed its health check (deploy %d)", badCommit[:7], bad.ID)
	var rollback int64
	testkit.Eventually(t, 30*time.Second, "the automatic rollback to end", func() bool {
		list, _ := g.Store.ListDeploys(context.Background(), store.DeployFilter{Repo: "site", Trigger: store.TriggerAutoRollback})
		if len(list) == 1 && list[0].Status == store.DeploySucceeded {
			rollback = list[0].ID
		}
		return rollback != 0
	})
	base := g.URL + "/api/v1/repos/site"

	var repo struct {
		BadCommits []struct {
			Commit   string `json:"commit"`
			DeployID int64  `json:"deploy_id"`
			Reason   string `json:"reason"`
		} `json:"bad_commits"`
		Count int `json:"bad_commits_count"`
	}
	if code := apiDo(t, "GET", base, "", &repo); code != 200 || len(repo.BadCommits) != 1 || repo.Count != 1 ||
		repo.BadCommits[0].Commit != badCommit || repo.BadCommits[0].DeployID != bad.ID || repo.BadCommits[0].Reason != reason {
		t.Fatalf("GET repo: %d %+v", code, repo)
	}
	// A poll finds origin at the bad commit and leaves it.
	var rec map[string]any
	if code := apiDo(t, "POST", base+"/reconcile", "", &rec); code != 200 || rec["deploy_id"] != nil ||
		!strings.Contains(rec["reason"].(string), reason) {
		t.Fatalf("reconcile: %d %v", code, rec)
	}
	// A redelivery of the bad push is recorded and ignored, saying why.
	resp, out = g.Send(gatewaytest.Delivery{GUID: guid, Body: body})
	if resp.StatusCode != http.StatusOK || out["status"] != "ignored" || out["reason"] != reason {
		t.Fatalf("redelivery: %d %v", resp.StatusCode, out)
	}
	// An operator is asked to force it.
	var refusal struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if code := apiDo(t, "POST", base+"/deploy", "", &refusal); code != http.StatusConflict || refusal.Error.Code != "bad_commit" {
		t.Fatalf("manual deploy of the bad head: %d %v", code, refusal)
	}
	if code := apiDo(t, "POST", base+"/rollback", `{"commit": "`+badCommit+`"}`, &refusal); code != http.StatusConflict || refusal.Error.Code != "bad_commit" {
		t.Fatalf("rollback to the bad commit: %d %v", code, refusal)
	}
	if testkit.CheckoutHead(t, g.Checkout["site"]) != good.ToCommit {
		t.Fatal("the checkout left the good commit")
	}
	// The repositories page lists it with its Clear button.
	if code, page := getBody(t, g.URL+"/repos"); code != 200 || !strings.Contains(string(page), `data-bad="`+badCommit+`"`) ||
		!strings.Contains(string(page), `action="/repos/site/bad/`+badCommit+`/clear"`) || !strings.Contains(string(page), reason) {
		t.Fatalf("repositories page %d lacks the bad commit:\n%s", code, page)
	}
	// Cleared, it is an ordinary commit again; an unknown one is a 404.
	if code := apiDo(t, "DELETE", base+"/bad/"+badCommit[:7], "", nil); code != http.StatusNoContent {
		t.Fatalf("clear: %d", code)
	}
	if code := apiDo(t, "DELETE", base+"/bad/"+badCommit, "", nil); code != http.StatusNotFound {
		t.Fatalf("clear twice: %d", code)
	}
	// A push of another commit deploys as usual.
	fixed := pushAndWait(t, g, map[string]string{"health.txt": "ok\n", "fix.txt": "1\n"})
	if fixed.Status != store.DeploySucceeded {
		t.Fatalf("the fix: %s %q", fixed.Status, fixed.Error)
	}
	// The check on demand: healthy, its probe recorded; a target without a check is refused.
	var v struct {
		Healthy bool `json:"healthy"`
		Probes  []struct {
			Code int `json:"code"`
		} `json:"probes"`
	}
	if code := apiDo(t, "POST", base+"/verify", "", &v); code != 200 || !v.Healthy || len(v.Probes) != 1 || v.Probes[0].Code != 200 {
		t.Fatalf("verify: %d %+v", code, v)
	}
}

func TestForcedManualDeployOfABadCommit(t *testing.T) {
	g := healthGateway(t, "on_failure = \"fail\"\n")
	pushAndWait(t, g, map[string]string{"health.txt": "ok\n"})
	bad := pushAndWait(t, g, map[string]string{"health.txt": "broken\n"})
	if bad.Status != store.DeployFailed {
		t.Fatalf("bad deploy: %s", bad.Status)
	}
	// on_failure = "fail": marked bad, nothing rolled back.
	if list, _ := g.Store.ListDeploys(context.Background(), store.DeployFilter{Repo: "site", Trigger: store.TriggerAutoRollback}); len(list) != 0 {
		t.Fatalf("on_failure = fail rolled back: %+v", list)
	}
	var dp map[string]any
	if code := apiDo(t, "POST", g.URL+"/api/v1/repos/site/deploy", `{"force": true}`, &dp); code != http.StatusAccepted {
		t.Fatalf("forced deploy: %d %v", code, dp)
	}
	forced := waitEnd(t, g, int64(dp["id"].(float64)))
	if forced.ToCommit != bad.ToCommit || forced.Status != store.DeployFailed {
		t.Fatalf("the forced deploy did not deploy the bad commit: %s to %s", forced.Status, forced.ToCommit)
	}
}

func TestHealthNotifications(t *testing.T) {
	type message struct {
		Event  string `json:"event"`
		Deploy struct {
			ID      int64  `json:"id"`
			Trigger string `json:"trigger"`
			Error   string `json:"error"`
		} `json:"deploy"`
	}
	got := make(chan message, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m message
		json.NewDecoder(r.Body).Decode(&m)
		got <- m
	}))
	t.Cleanup(recv.Close)
	g := healthGateway(t, fmt.Sprintf("\n[[repos.site.notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = %q\nsecret = \"notify-secret\"\n", recv.URL))
	good := pushAndWait(t, g, map[string]string{"health.txt": "ok\n"})
	bad := pushAndWait(t, g, map[string]string{"health.txt": "broken\n"})
	next := func() message {
		t.Helper()
		select {
		case m := <-got:
			return m
		case <-time.After(30 * time.Second):
			t.Fatal("no notification")
		}
		return message{}
	}
	m := next()
	if m.Event != "deploy.failure" || m.Deploy.ID != bad.ID || !strings.HasPrefix(m.Deploy.Error, "health check failed: ") ||
		!strings.Contains(m.Deploy.Error, "rolling back to "+good.ToCommit[:7]) {
		t.Fatalf("failure notification: %+v", m)
	}
	m = next()
	if m.Event != "deploy.recovery" || m.Deploy.Trigger != store.TriggerAutoRollback {
		t.Fatalf("recovery notification: %+v", m)
	}
}

// TestBrowserHealthChecks: in Chromium, the deploy page of a deploy whose check failed
// shows its probes with the service's answer, and the repositories page lists the bad
// commit with a Clear button that clears it.
func TestBrowserHealthChecks(t *testing.T) {
	ctx := browser(t)
	g := healthGateway(t, "")
	pushAndWait(t, g, map[string]string{"health.txt": "ok\n"})
	bad := pushAndWait(t, g, map[string]string{"health.txt": "maintenance\n"})
	if bad.Status != store.DeployFailed {
		t.Fatalf("bad deploy: %s", bad.Status)
	}
	step(t, ctx, "open the failed deploy", chromedp.Navigate(fmt.Sprintf("%s/deploys/%d", g.URL, bad.ID)),
		chromedp.WaitVisible(chromedp.CSS(`section.health`)))
	rows := eval[int](t, ctx, `document.querySelectorAll("section.health tbody tr").length`)
	first := eval[string](t, ctx, `document.querySelector("section.health tbody tr").innerText`)
	if rows < 2 || !strings.Contains(first, "HTTP 503") || !strings.Contains(first, "maintenance") {
		t.Fatalf("%d probe rows; the first reads %q", rows, first)
	}
	if out := eval[string](t, ctx, `document.querySelector("pre.log").innerText`); !strings.Contains(out, "deployed "+bad.ToCommit) {
		t.Fatalf("the command output is not beside the probes: %q", out)
	}
	step(t, ctx, "open the repositories", chromedp.Navigate(g.URL+"/repos"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`li[data-bad="%s"]`, bad.ToCommit))))
	step(t, ctx, "press Clear", chromedp.Click(chromedp.CSS(fmt.Sprintf(`li[data-bad="%s"] button`, bad.ToCommit))))
	waitFor(t, ctx, "the bad commit to be gone", `location.pathname === "/repos" && document.readyState === "complete" && document.querySelector("li[data-bad]") === null`)
	if bads, err := g.Store.BadCommits(context.Background(), "site"); err != nil || len(bads) != 0 {
		t.Fatalf("after Clear: %+v, %v", bads, err)
	}
}

// TestVerifyWhileADeployRuns: POST /verify while the target's deploy runs its commands
// answers 409 deploy_running naming the deploy, and runs once the deploy ended.
func TestVerifyWhileADeployRuns(t *testing.T) {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(svc.Close)
	gate := filepath.Join(t.TempDir(), "go")
	g := gatewaytest.New(t, gatewaytest.Repos(gatewaytest.Repo{
		// The deploy runs until the test lets it end.
		Commands: []string{fmt.Sprintf("while [ ! -e %q ]; do sleep 0.02; done", gate)},
		TOML:     fmt.Sprintf("[repos.site.health]\nurl = %q\ninterval = \"20ms\"\n", svc.URL+"/healthz"),
	}))
	before := g.Origin["site"].Head()
	after := g.Origin["site"].Commit(map[string]string{"a.txt": "1\n"}, "change")
	resp, out := g.Send(gatewaytest.Delivery{Body: testkit.Push(t, "refs/heads/main", before, after, gatewaytest.Repository)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push answered %d %v", resp.StatusCode, out)
	}
	id := int64(out["deploy_id"].(float64))
	testkit.Eventually(t, 30*time.Second, "the deploy to run", func() bool {
		dp, err := g.Store.Deploy(context.Background(), id)
		return err == nil && dp.Status == store.DeployRunning
	})
	var refusal struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	base := g.URL + "/api/v1/repos/site"
	if code := apiDo(t, "POST", base+"/verify", "", &refusal); code != http.StatusConflict || refusal.Error.Code != "deploy_running" ||
		!strings.Contains(refusal.Error.Message, fmt.Sprintf("deploy %d ", id)) {
		t.Fatalf("verify during a deploy: %d %+v", code, refusal)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if dp := waitEnd(t, g, id); dp.Status != store.DeploySucceeded {
		t.Fatalf("deploy: %s %q", dp.Status, dp.Error)
	}
	var v struct {
		Healthy bool `json:"healthy"`
	}
	if code := apiDo(t, "POST", base+"/verify", "", &v); code != http.StatusOK || !v.Healthy {
		t.Fatalf("verify after the deploy: %d %+v", code, v)
	}
}

// TestFailedRollbackSaysWhyItIsPinned: when the automatic rollback fails too, the pin by
// health carries the rollback's deploy and its error, in GET /api/v1/repos/NAME and on the
// repositories page, so the operator knows why before unpinning.
func TestFailedRollbackSaysWhyItIsPinned(t *testing.T) {
	var checkout atomic.Value
	checkout.Store("")
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := os.ReadFile(filepath.Join(checkout.Load().(string), "health.txt"))
		if strings.TrimSpace(string(b)) != "ok" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		w.Write(b)
	}))
	t.Cleanup(svc.Close)
	opts := []gatewaytest.Option{gatewaytest.Repos(gatewaytest.Repo{
		// The rollback's own commands fail: the old release cannot start again.
		Commands: []string{`if [ "$HOOKGATE_TRIGGER" = auto_rollback ]; then echo "migration 12 cannot be undone" >&2; exit 3; fi`},
		TOML:     fmt.Sprintf("[repos.site.health]\nurl = %q\ninterval = \"20ms\"\ndeadline = \"300ms\"\n", svc.URL+"/healthz"),
	})}
	if strings.HasPrefix(t.Name(), "TestOnPostgres/") {
		opts = append(opts, gatewaytest.Postgres())
	}
	g := gatewaytest.New(t, opts...)
	checkout.Store(g.Checkout["site"])
	good := pushAndWait(t, g, map[string]string{"health.txt": "ok\n"})
	bad := pushAndWait(t, g, map[string]string{"health.txt": "broken\n"})
	if good.Status != store.DeploySucceeded || bad.Status != store.DeployFailed {
		t.Fatalf("deploys: %s, %s", good.Status, bad.Status)
	}
	var rb store.Deploy
	testkit.Eventually(t, 30*time.Second, "the automatic rollback to fail", func() bool {
		list, _ := g.Store.ListDeploys(context.Background(), store.DeployFilter{Repo: "site", Trigger: store.TriggerAutoRollback})
		if len(list) == 1 && list[0].Status == store.DeployFailed {
			rb = list[0]
		}
		return rb.ID != 0
	})
	var repo struct {
		Pinned struct {
			Commit   string `json:"commit"`
			By       string `json:"by"`
			Reason   string `json:"reason"`
			DeployID int64  `json:"deploy_id"`
		} `json:"pinned"`
	}
	if code := apiDo(t, "GET", g.URL+"/api/v1/repos/site", "", &repo); code != 200 || repo.Pinned.By != store.PinnedByHealth ||
		repo.Pinned.Commit != good.ToCommit || repo.Pinned.DeployID != rb.ID ||
		!strings.Contains(repo.Pinned.Reason, fmt.Sprintf("after deploy %d failed its health check", bad.ID)) ||
		!strings.Contains(repo.Pinned.Reason, rb.Error) || rb.Error == "" {
		t.Fatalf("GET repo: %d %+v; the rollback: %d %q", code, repo.Pinned, rb.ID, rb.Error)
	}
	code, page := getBody(t, g.URL+"/repos")
	if code != 200 || !strings.Contains(string(page), "data-pin-reason") ||
		!strings.Contains(string(page), fmt.Sprintf(`<a href="/deploys/%d">`, rb.ID)) {
		t.Fatalf("repositories page %d lacks why it is pinned:\n%s", code, page)
	}
}
