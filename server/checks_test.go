package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	hookgate "github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/internal/forgetest"
	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/reporter"
)

const checksToken = "ghp_checksT0ken"

// checksGateway runs a gateway with one worker slot and two targets on forge: "site",
// which requires the checks ci/build and test (timeout as given), and "blog", which
// requires none. The checker looks every 20 ms instead of 10 s to 60 s.
func checksGateway(t *testing.T, forge *forgetest.Forge, timeout string) *gatewaytest.Gateway {
	t.Helper()
	return gatewaytest.New(t, gatewaytest.Workers(1), gatewaytest.Env("HG_FORGE_TOKEN="+checksToken), checksOptions(),
		gatewaytest.Repos(
			gatewaytest.Repo{Name: "site", TOML: fmt.Sprintf("report = \"gh\"\nrequire_checks = [\"ci/build\", \"test\"]\nchecks_timeout = %q", timeout)},
			gatewaytest.Repo{Name: "blog", TOML: fmt.Sprintf(`report = "gh"

[forges.gh]
type = "github"
api_url = %q
token_env = "HG_FORGE_TOKEN"
`, forge.APIURL())}))
}

func checksOptions() gatewaytest.Option {
	return gatewaytest.Options(func(o *hookgate.Options) {
		o.Checks = reporter.CheckOptions{First: 20 * time.Millisecond, Max: 20 * time.Millisecond}
	})
}

// pushTo sends a push of a new commit on target's origin and returns the commit and the
// deploy it joined.
func pushTo(t *testing.T, gw *gatewaytest.Gateway, target, content string) (string, int64) {
	t.Helper()
	before := gw.Origin[target].Head()
	after := gw.Origin[target].Commit(map[string]string{"index.html": content}, content)
	resp, out := gw.Send(gatewaytest.Delivery{Repo: target, Body: testkit.Push(t, "refs/heads/main", before, after, gatewaytest.Repository)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push to %s answered %d %v", target, resp.StatusCode, out)
	}
	return after, int64(out["deploy_id"].(float64))
}

type deployState struct {
	Status     string
	Error      string
	ToCommit   string `json:"to_commit"`
	WaitingFor string `json:"waiting_for"`
}

func getDeploy(t *testing.T, gw *gatewaytest.Gateway, id int64) deployState {
	t.Helper()
	var dp deployState
	if code := gatewaytest.API(t, "GET", fmt.Sprintf("%s/api/v1/deploys/%d", gw.URL, id), "", &dp); code != 200 {
		t.Fatalf("GET deploy %d: %d", id, code)
	}
	return dp
}

func waitStatus(t *testing.T, gw *gatewaytest.Gateway, id int64, status string) deployState {
	t.Helper()
	var dp deployState
	testkit.Eventually(t, 30*time.Second, fmt.Sprintf("deploy %d to be %s", id, status), func() bool {
		dp = getDeploy(t, gw, id)
		return dp.Status == status
	})
	return dp
}

// TestDeployWaitsForGreenChecks: a push to a target with require_checks waits, shown as
// waiting with what it waits for and reported pending, while another target of the same
// one-slot gateway deploys; once every required check (a commit status and a check run)
// is green it deploys exactly its commit.
func TestDeployWaitsForGreenChecks(t *testing.T) {
	forge := forgetest.New(t, forgetest.GitHub, checksToken)
	gw := checksGateway(t, forge, "30m")
	after, id := pushTo(t, gw, "site", "v2\n")
	dp := waitStatus(t, gw, id, "waiting")
	if dp.ToCommit != after {
		t.Fatalf("waiting deploy's commit %q, want %s", dp.ToCommit, after)
	}
	testkit.Eventually(t, 30*time.Second, "waiting_for to name both checks", func() bool {
		w := getDeploy(t, gw, id).WaitingFor
		return strings.Contains(w, "ci/build (not reported yet)") && strings.Contains(w, "test (not reported yet)")
	})
	testkit.Eventually(t, 30*time.Second, "the forge to show the wait", func() bool {
		s := forge.Latest(gatewaytest.Repository, after, "hookgate/site")
		return s.State == "pending" && s.Description == "waiting for checks"
	})
	if page := getText(t, fmt.Sprintf("%s/deploys/%d", gw.URL, id)); !strings.Contains(page, "Waiting for the forge") || !strings.Contains(page, "ci/build (not reported yet)") {
		t.Fatalf("the deploy page does not say it waits:\n%s", page)
	}

	// The other target deploys meanwhile: the wait holds no worker slot (there is one).
	blogAfter, blogID := pushTo(t, gw, "blog", "b2\n")
	waitStatus(t, gw, blogID, "succeeded")
	if head := testkit.CheckoutHead(t, gw.Checkout["blog"]); head != blogAfter {
		t.Fatalf("blog at %s, want %s", head, blogAfter)
	}

	forge.SetStatus(gatewaytest.Repository, after, forgetest.Status{Context: "ci/build", State: "success"})
	forge.SetCheckRun(gatewaytest.Repository, after, forgetest.CheckRun{Name: "test", Status: "in_progress"})
	testkit.Eventually(t, 30*time.Second, "waiting_for to name only the running check run", func() bool {
		return getDeploy(t, gw, id).WaitingFor == "checks: test (in_progress)"
	})
	if dp := getDeploy(t, gw, id); dp.Status != "waiting" {
		t.Fatalf("deploy %s with a check still running", dp.Status)
	}
	// A newer commit on origin that nobody checked: the deploy must not take it.
	gw.Origin["site"].Commit(map[string]string{"index.html": "unchecked\n"}, "unchecked")
	forge.SetCheckRun(gatewaytest.Repository, after, forgetest.CheckRun{Name: "test", Status: "completed", Conclusion: "success"})
	waitStatus(t, gw, id, "succeeded")
	if head := testkit.CheckoutHead(t, gw.Checkout["site"]); head != after {
		t.Fatalf("site at %s, want the checked commit %s", head, after)
	}
	testkit.Eventually(t, 30*time.Second, "the forge to show success", func() bool {
		return forge.Latest(gatewaytest.Repository, after, "hookgate/site").State == "success"
	})
}

// TestRedCheckFailsTheDeploy: a required check that fails ends the waiting deploy failed,
// naming it, and the forge shows the failure; nothing is deployed.
func TestRedCheckFailsTheDeploy(t *testing.T) {
	forge := forgetest.New(t, forgetest.GitHub, checksToken)
	gw := checksGateway(t, forge, "30m")
	before := gw.Origin["site"].Head()
	after, id := pushTo(t, gw, "site", "v2\n")
	waitStatus(t, gw, id, "waiting")
	forge.SetStatus(gatewaytest.Repository, after, forgetest.Status{Context: "ci/build", State: "success"})
	forge.SetCheckRun(gatewaytest.Repository, after, forgetest.CheckRun{Name: "test", Status: "completed", Conclusion: "failure"})
	if dp := waitStatus(t, gw, id, "failed"); dp.Error != "check test failed" {
		t.Fatalf("error %q, want check test failed", dp.Error)
	}
	testkit.Eventually(t, 30*time.Second, "the forge to show the failure", func() bool {
		s := forge.Latest(gatewaytest.Repository, after, "hookgate/site")
		return s.State == "failure" && s.Description == "failed: check test failed"
	})
	if head := testkit.CheckoutHead(t, gw.Checkout["site"]); head != before {
		t.Fatalf("site moved to %s after a red check", head)
	}
}

// TestChecksTimeout: checks still pending when checks_timeout passes end the deploy
// failed.
func TestChecksTimeout(t *testing.T) {
	forge := forgetest.New(t, forgetest.GitHub, checksToken)
	gw := checksGateway(t, forge, "1s")
	after, id := pushTo(t, gw, "site", "v2\n")
	forge.SetStatus(gatewaytest.Repository, after, forgetest.Status{Context: "ci/build", State: "pending"})
	if dp := waitStatus(t, gw, id, "failed"); dp.Error != "checks still pending after 1s" {
		t.Fatalf("error %q", dp.Error)
	}
}

// TestNewerPushSupersedesAWaitingDeploy: a push of a newer commit supersedes the deploy
// still waiting for the older one's checks, and the forge shows the older commit
// superseded; the newer one deploys once green.
func TestNewerPushSupersedesAWaitingDeploy(t *testing.T) {
	forge := forgetest.New(t, forgetest.GitHub, checksToken)
	gw := checksGateway(t, forge, "30m")
	first, firstID := pushTo(t, gw, "site", "v2\n")
	waitStatus(t, gw, firstID, "waiting")
	second, secondID := pushTo(t, gw, "site", "v3\n")
	if secondID == firstID {
		t.Fatal("the newer push joined the older commit's waiting deploy")
	}
	if dp := waitStatus(t, gw, firstID, "superseded"); dp.Error != "superseded by "+second[:7] {
		t.Fatalf("error %q", dp.Error)
	}
	testkit.Eventually(t, 30*time.Second, "the forge to show the older commit superseded", func() bool {
		s := forge.Latest(gatewaytest.Repository, first, "hookgate/site")
		return s.State == "error" && s.Description == "superseded by "+second[:7]
	})
	for _, c := range []string{"ci/build", "test"} {
		forge.SetStatus(gatewaytest.Repository, second, forgetest.Status{Context: c, State: "success"})
	}
	waitStatus(t, gw, secondID, "succeeded")
	if head := testkit.CheckoutHead(t, gw.Checkout["site"]); head != second {
		t.Fatalf("site at %s, want %s", head, second)
	}
}

// TestWaitingSurvivesARestart: a deploy waiting when the gateway stops is still waiting
// after it starts again, and deploys once its checks are green.
func TestWaitingSurvivesARestart(t *testing.T) {
	forge := forgetest.New(t, forgetest.GitHub, checksToken)
	gw := checksGateway(t, forge, "30m")
	after, id := pushTo(t, gw, "site", "v2\n")
	waitStatus(t, gw, id, "waiting")
	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	again := gatewaytest.Start(t, gw.Path, gatewaytest.Env("HG_FORGE_TOKEN="+checksToken), checksOptions())
	calls := len(forge.Called())
	testkit.Eventually(t, 30*time.Second, "the restarted gateway to look at the checks", func() bool {
		for _, c := range forge.Called()[calls:] {
			if strings.HasSuffix(c, "/commits/"+after+"/check-runs") {
				return true
			}
		}
		return false
	})
	if dp := getDeploy(t, again, id); dp.Status != "waiting" {
		t.Fatalf("after the restart the deploy is %s", dp.Status)
	}
	for _, c := range []string{"ci/build", "test"} {
		forge.SetStatus(gatewaytest.Repository, after, forgetest.Status{Context: c, State: "success"})
	}
	waitStatus(t, again, id, "succeeded")
	if head := testkit.CheckoutHead(t, gw.Checkout["site"]); head != after {
		t.Fatalf("site at %s, want %s", head, after)
	}
}

// TestManualDeployWaitsUnlessForced: a manual deploy of a target with require_checks
// waits for the checks of origin's head; {"force": true} deploys at once; any other body
// is a 400.
func TestManualDeployWaitsUnlessForced(t *testing.T) {
	forge := forgetest.New(t, forgetest.GitHub, checksToken)
	gw := checksGateway(t, forge, "30m")
	head := gw.Origin["site"].Commit(map[string]string{"index.html": "manual\n"}, "manual")
	post := func(body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(gw.URL+"/api/v1/repos/site/deploy", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, out := post("")
	if code != http.StatusAccepted || out["status"] != "waiting" || out["to_commit"] != head || out["trigger"] != "manual" {
		t.Fatalf("manual deploy: %d %v, want 202 waiting for %s", code, out, head)
	}
	waiting := int64(out["id"].(float64))
	if code, out := post(`{"force": "yes"}`); code != http.StatusBadRequest || fmt.Sprint(out["error"]) != `map[code:invalid_body message:the body must be {"force": true}, {"force": false} or empty]` {
		t.Fatalf("bad body: %d %v", code, out)
	}
	code, out = post(`{"force": true}`)
	if code != http.StatusAccepted || out["status"] != "queued" {
		t.Fatalf("forced manual deploy: %d %v, want 202 queued", code, out)
	}
	waitStatus(t, gw, int64(out["id"].(float64)), "succeeded")
	if got := testkit.CheckoutHead(t, gw.Checkout["site"]); got != head {
		t.Fatalf("site at %s, want %s", got, head)
	}
	if dp := getDeploy(t, gw, waiting); dp.Status != "waiting" {
		t.Fatalf("the unforced manual deploy is %s, want still waiting", dp.Status)
	}
}
