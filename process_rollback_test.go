package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
)

const outcomesToken = "e2e-admin-token-0123456789abcdef"

// apiGet reads the running gateway's API as the operator.
func apiGet(t *testing.T, addr, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+outcomesToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

type e2eDeploy struct {
	ID       int64  `json:"id"`
	Status   string `json:"status"`
	Trigger  string `json:"trigger"`
	ToCommit string `json:"to_commit"`
	Reason   string `json:"reason"`
}

func deploysOf(t *testing.T, addr string) []e2eDeploy {
	t.Helper()
	var out struct {
		Deploys []e2eDeploy `json:"deploys"`
	}
	apiGet(t, addr, "/api/v1/deploys?repo=site&limit=500", &out)
	return out.Deploys
}

type e2eRepo struct {
	OriginCommit    *string    `json:"origin_commit"`
	OriginCheckedAt *time.Time `json:"origin_checked_at"`
	LiveCommit      string     `json:"live_commit"`
	QueuedDeployID  *int64     `json:"queued_deploy_id"`
	RunningDeployID *int64     `json:"running_deploy_id"`
	Pinned          *struct {
		Commit string `json:"commit"`
		By     string `json:"by"`
	} `json:"pinned"`
}

func repoOf(t *testing.T, addr string) e2eRepo {
	t.Helper()
	var out struct {
		Repos []e2eRepo `json:"repos"`
	}
	apiGet(t, addr, "/api/v1/repos", &out)
	return out.Repos[0]
}

// waitChecks waits until origin has been looked up n more times.
func waitChecks(t *testing.T, addr string, n int) {
	t.Helper()
	seen := map[time.Time]bool{}
	testkit.Eventually(t, time.Duration(n+1)*5*time.Second, fmt.Sprintf("%d looks at origin", n), func() bool {
		if at := repoOf(t, addr).OriginCheckedAt; at != nil {
			seen[*at] = true
		}
		return len(seen) > n
	})
}

// TestEndToEndOutcomes drives the built binary against a real bare origin: pushes made
// while the gateway was down are deployed by the start-up reconcile; a failing head is
// attempted once across polls; `hookgate rollback` rolls back and pins; a push while
// pinned is recorded as ignored; the pin survives a restart; `hookgate unpin` deploys
// origin's head.
func TestEndToEndOutcomes(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	origin := testkit.NewOrigin(t)
	dir := t.TempDir()
	checkout := filepath.Join(dir, "site")
	addr := freeAddr(t)
	// The secret reaches the gateway only: the CLI runs without it, as an operator's
	// shell would, and must still reach the API.
	const secret = "e2e-outcomes-secret-1234"
	cfgPath := filepath.Join(dir, "config.toml")
	// poll = "1h" first: only the start-up check can deploy what was missed.
	writeCfg := func(poll string) {
		cfg := fmt.Sprintf(`
[server]
listen = %q
database = "data/hookgate.db"
admin_token = %q

[repos.site]
secret_env = "E2E_OUTCOMES_SECRET"
path = "site"
url = %q
branch = "main"
poll = %q
commands = ["test ! -f fail.txt", "echo $HOOKGATE_TRIGGER > ../trigger.txt"]
timeout = "1m"
`, addr, outcomesToken, origin.Bare, poll)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("1h")
	// atHead reads HEAD with git while the gateway may be writing the branch's ref (it
	// is rewritten in place), so a read that fails counts as "not yet".
	atHead := func(want string) func() bool {
		return func() bool {
			out, err := exec.Command("git", "-C", checkout, "rev-parse", "HEAD").Output()
			return err == nil && strings.TrimSpace(string(out)) == want
		}
	}

	// First start: nothing is cloned until a push (the start-up check has nothing live to
	// compare with).
	c1 := origin.Head()
	g := startGateway(t, bin, cfgPath, addr, "E2E_OUTCOMES_SECRET="+secret)
	waitChecks(t, addr, 0)
	if _, err := os.Stat(checkout); !os.IsNotExist(err) {
		t.Fatalf("the start-up check cloned a repository nothing was deployed to: %v", err)
	}
	// send signs with the secret, so it needs it, unlike rollback, pin and unpin.
	t.Setenv("E2E_OUTCOMES_SECRET", secret)
	code, out := runCLI(t, bin, "send", "site", "--config", cfgPath)
	os.Unsetenv("E2E_OUTCOMES_SECRET")
	if code != 0 {
		t.Fatalf("hookgate send: %d\n%s", code, out)
	}
	testkit.Eventually(t, 30*time.Second, "the first push to clone origin's head", atHead(c1))
	testkit.Eventually(t, 30*time.Second, "the first deploy to be recorded", func() bool { return repoOf(t, addr).LiveCommit == c1 })
	before := len(deploysOf(t, addr))
	if err := g.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v\n%s", err, g.logs.String())
	}

	// Two pushes while the gateway is down: nobody receives their webhooks.
	origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	c3 := origin.Commit(map[string]string{"app.txt": "v3\n"}, "v3")
	g = startGateway(t, bin, cfgPath, addr, "E2E_OUTCOMES_SECRET="+secret)
	testkit.Eventually(t, 15*time.Second, "the missed pushes to be deployed", atHead(c3))
	testkit.Eventually(t, 15*time.Second, "the reconcile deploy to be recorded", func() bool { return repoOf(t, addr).LiveCommit == c3 })
	dps := deploysOf(t, addr)
	if len(dps)-before > 1 {
		t.Fatalf("%d deploys after the restart, want one: %+v", len(dps)-before, dps)
	}
	want := fmt.Sprintf("origin main at %s, live %s: a push was not delivered", c3[:7], c1[:7])
	if d := dps[0]; d.Trigger != "reconcile" || d.Status != "succeeded" || d.ToCommit != c3 || d.Reason != want {
		t.Fatalf("the deploy after the restart: %+v; want a reconcile to %s because %q", d, c3[:7], want)
	}

	// Poll every second from now on: a reload (SIGHUP) applies it at once.
	writeCfg("1s")
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitChecks(t, addr, 2)

	// A head whose deploy fails is attempted once, however many polls follow.
	bad := origin.Commit(map[string]string{"fail.txt": "x\n"}, "breaks the deploy")
	testkit.Eventually(t, 15*time.Second, "the failing head to be attempted", func() bool {
		d := deploysOf(t, addr)[0]
		return d.ToCommit == bad && d.Status == "failed"
	})
	waitChecks(t, addr, 4)
	attempts := 0
	for _, d := range deploysOf(t, addr) {
		if d.ToCommit == bad {
			attempts++
		}
	}
	if attempts != 1 {
		t.Fatalf("the failing head was attempted %d times across 4 polls, want once", attempts)
	}

	// hookgate rollback: back to the commit live before the live one, pinned there; an
	// untracked file and an ignored one (.env is in origin's .gitignore) survive.
	if err := os.WriteFile(filepath.Join(checkout, "uploads.local"), []byte("user data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(checkout, ".env"), []byte("SECRET=local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = runCLI(t, bin, "rollback", "site", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "pinned at "+c1[:7]) || !strings.Contains(out, "succeeded") {
		t.Fatalf("hookgate rollback: exit %d\n%s", code, out)
	}
	if testkit.CheckoutHead(t, checkout) != c1 {
		t.Fatalf("after rollback HEAD is %s, want %s", testkit.CheckoutHead(t, checkout), c1)
	}
	if b, err := os.ReadFile(filepath.Join(checkout, "uploads.local")); err != nil || string(b) != "user data\n" {
		t.Fatal("the untracked file did not survive the rollback")
	}
	if b, err := os.ReadFile(filepath.Join(checkout, ".env")); err != nil || string(b) != "SECRET=local\n" {
		t.Fatal("the ignored file did not survive the rollback")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "trigger.txt")); string(b) != "rollback\n" {
		t.Fatalf("HOOKGATE_TRIGGER = %q, want rollback", b)
	}
	if p := repoOf(t, addr).Pinned; p == nil || p.Commit != c1 || p.By != "rollback" {
		t.Fatalf("pinned = %+v", p)
	}

	// A push while pinned is recorded and ignored.
	fixed := origin.Commit(map[string]string{"fail.txt": ""}, "fix")
	a := deliver(t, addr, "site", "push", "pinned-push-1", testkit.Push(t, "refs/heads/main", bad, fixed, "acme/site"), []byte(secret))
	if a.HTTPStatus != http.StatusOK || a.Status != "ignored" || a.DeployID != 0 {
		t.Fatalf("push while pinned: %+v", a)
	}
	var rec struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
		After  string `json:"after"`
	}
	apiGet(t, addr, fmt.Sprintf("/api/v1/deliveries/%d", a.DeliveryID), &rec)
	if rec.Status != "ignored" || !strings.HasPrefix(rec.Reason, "pinned at "+c1[:7]) || rec.After != fixed {
		t.Fatalf("the push while pinned is recorded as %+v", rec)
	}

	// A restart keeps the pin, and the start-up check deploys nothing.
	if err := g.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v\n%s", err, g.logs.String())
	}
	g = startGateway(t, bin, cfgPath, addr, "E2E_OUTCOMES_SECRET="+secret)
	n := len(deploysOf(t, addr))
	waitChecks(t, addr, 2)
	r := repoOf(t, addr)
	if r.Pinned == nil || r.Pinned.Commit != c1 || len(deploysOf(t, addr)) != n || testkit.CheckoutHead(t, checkout) != c1 {
		t.Fatalf("after a restart: pinned %+v, %d new deploys, HEAD %s", r.Pinned, len(deploysOf(t, addr))-n, testkit.CheckoutHead(t, checkout))
	}
	if r.OriginCommit == nil || *r.OriginCommit != fixed {
		t.Fatalf("origin_commit = %v, want %s", r.OriginCommit, fixed)
	}

	// Refusals exit non-zero and say why.
	if code, out := runCLI(t, bin, "pin", "site", "0123456789abcdef", "--config", cfgPath); code == 0 || !strings.Contains(out, "unknown_commit") {
		t.Fatalf("hookgate pin of an unknown commit: exit %d\n%s", code, out)
	}

	// hookgate unpin deploys origin's head. The poll (every second) may queue that deploy
	// before the unpin looks at origin: the unpin then waits for the poll's deploy, or,
	// when that one is already over, finds origin's head live.
	code, out = runCLI(t, bin, "unpin", "site", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "unpinned") ||
		!strings.Contains(out, "succeeded") && !strings.Contains(out, "in sync: origin main at "+fixed[:7]+" is live") {
		t.Fatalf("hookgate unpin: exit %d\n%s", code, out)
	}
	if testkit.CheckoutHead(t, checkout) != fixed || repoOf(t, addr).Pinned != nil {
		t.Fatalf("after unpin HEAD is %s, want origin's %s", testkit.CheckoutHead(t, checkout), fixed)
	}
	if code, out := runCLI(t, bin, "pin", "site", "--config", cfgPath); code != 0 || !strings.Contains(out, "pinned at "+fixed[:7]) {
		t.Fatalf("hookgate pin: exit %d\n%s", code, out)
	}
	if strings.Contains(g.logs.String(), outcomesToken) || strings.Contains(g.logs.String(), secret) {
		t.Fatal("a secret appears in the gateway's log")
	}
}
