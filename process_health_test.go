package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
)

// TestEndToEndHealthChecks drives the built binary with a real service that the deploy
// commands start from the checkout (a file server built from the commit's svc/main.go,
// serving the checkout's files): its health answer is the commit's health.txt. A good commit goes verifying → succeeded;
// a bad one fails its check, is rolled back (the service answers healthy again), is marked
// bad and is not deployed again by three polls nor by a redelivery; a newer good push
// deploys; a push during verifying supersedes it; a bad commit whose rollback fails too
// leaves the target pinned by health.
func TestEndToEndHealthChecks(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	origin := testkit.NewOrigin(t)
	dir := t.TempDir()
	// The service is the commit's own Go program, built once here (the build cache makes a
	// rerun quick) rather than by each deploy: the test needs nothing a Go toolchain lacks.
	origin.Commit(map[string]string{"svc/main.go": serviceSource}, "the service")
	if err := os.WriteFile(filepath.Join(dir, "svc.go"), []byte(serviceSource), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", "svc", "svc.go")
	build.Dir = dir // outside this module: the program needs only the standard library
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the service: %v\n%s", err, out)
	}
	checkout := filepath.Join(dir, "site")
	addr, svc := freeAddr(t), freeAddr(t)
	const secret = "e2e-health-secret-1234"
	// The service starts once and serves the checkout as it is; ../nostart keeps it from
	// starting (an outage no commit fixes).
	start := fmt.Sprintf(`[ -f ../nostart ] && exit 0; if [ -f ../svc.pid ] && kill -0 "$(cat ../svc.pid)" 2>/dev/null; then exit 0; fi; `+
		`nohup ../svc %s >/dev/null 2>&1 & echo $! > ../svc.pid`, svc)
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "svc.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`
[server]
listen = %q
database = "data/hookgate.db"
admin_token = %q

[repos.site]
secret = %q
path = "site"
url = %q
poll = "1s"
commands = [%q]
timeout = "1m"

[repos.site.health]
url = "http://%s/health.txt"
expect_body = "healthy"
interval = "100ms"
start_delay = "1s"
deadline = "4s"
healthy_after = 3
probe_timeout = "1s"
`, addr, outcomesToken, secret, origin.Bare, start, svc)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, bin, cfgPath, addr)
	serviceSays := func() string {
		resp, err := http.Get("http://" + svc + "/health.txt")
		if err != nil {
			return "down"
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b))
	}
	guids := 0
	push := func(before, after string) int64 {
		t.Helper()
		guids++
		a := deliver(t, addr, "site", "push", fmt.Sprintf("health-%d", guids), testkit.Push(t, "refs/heads/main", before, after, ""), []byte(secret))
		if a.HTTPStatus != http.StatusAccepted {
			t.Fatalf("push of %s: %+v", short(after), a)
		}
		return a.DeployID
	}
	type deployWithError struct {
		e2eDeploy
		Error string `json:"error"`
	}
	deployOf := func(id int64) deployWithError {
		t.Helper()
		var dp deployWithError
		apiGet(t, addr, fmt.Sprintf("/api/v1/deploys/%d", id), &dp)
		return dp
	}
	// seen waits for deploy id to show status (polled through the API).
	seen := func(id int64, status string) {
		t.Helper()
		testkit.Eventually(t, 30*time.Second, fmt.Sprintf("deploy %d %s", id, status), func() bool { return deployOf(id).Status == status })
	}
	lastAutoRollback := func() e2eDeploy {
		for _, d := range deploysOf(t, addr) {
			if d.Trigger == "auto_rollback" {
				return d
			}
		}
		return e2eDeploy{}
	}

	// A good commit: verifying, then succeeded; the service the commands started is healthy.
	c0 := origin.Head()
	c1 := origin.Commit(map[string]string{"health.txt": "healthy v1\n"}, "v1")
	d1 := push(c0, c1)
	seen(d1, "verifying")
	seen(d1, "succeeded")
	if s := serviceSays(); s != "healthy v1" {
		t.Fatalf("the service answers %q", s)
	}

	// A bad commit: its check fails, the automatic rollback puts v1 back.
	c2 := origin.Commit(map[string]string{"health.txt": "down: config unreadable\n"}, "v2 breaks")
	badGUID := fmt.Sprintf("health-%d", guids+1)
	d2 := push(c1, c2)
	seen(d2, "failed")
	if e := deployOf(d2).Error; !strings.Contains(e, "health check failed: GET http://"+svc+"/health.txt answered 200 without \"healthy\"") {
		t.Fatalf("the failed deploy's error: %q", e)
	}
	testkit.Eventually(t, 30*time.Second, "the automatic rollback to succeed", func() bool {
		d := lastAutoRollback()
		return d.Status == "succeeded" && d.ToCommit == c1
	})
	if s := serviceSays(); s != "healthy v1" || testkit.CheckoutHead(t, checkout) != c1 {
		t.Fatalf("after the rollback the service answers %q at %s", s, short(testkit.CheckoutHead(t, checkout)))
	}
	// Three polls and a redelivery later, the bad commit was not deployed again.
	n := len(deploysOf(t, addr))
	waitChecks(t, addr, 3)
	a := deliver(t, addr, "site", "push", badGUID, testkit.Push(t, "refs/heads/main", c1, c2, ""), []byte(secret))
	if a.HTTPStatus != http.StatusOK || a.Status != "ignored" {
		t.Fatalf("redelivery of the bad push: %+v", a)
	}
	if got := len(deploysOf(t, addr)); got != n || testkit.CheckoutHead(t, checkout) != c1 {
		t.Fatalf("%d deploys after the polls and the redelivery, HEAD %s", got-n, short(testkit.CheckoutHead(t, checkout)))
	}

	// A push during verifying supersedes the check; the newer commit deploys.
	c3 := origin.Commit(map[string]string{"health.txt": "down: warming up\n"}, "v3 slow")
	d3 := push(c2, c3)
	seen(d3, "verifying")
	c4 := origin.Commit(map[string]string{"health.txt": "healthy v4\n"}, "v4")
	d4 := push(c3, c4)
	seen(d3, "superseded")
	seen(d4, "succeeded")
	if s := serviceSays(); s != "healthy v4" {
		t.Fatalf("the service answers %q", s)
	}

	// An outage no commit fixes: the bad commit's rollback fails too, and the target is
	// pinned by health at the commit the rollback tried.
	if err := os.WriteFile(filepath.Join(dir, "nostart"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "svc.pid")); err == nil {
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	c5 := origin.Commit(map[string]string{"health.txt": "down\n"}, "v5")
	d5 := push(c4, c5)
	seen(d5, "failed")
	testkit.Eventually(t, 30*time.Second, "the pin by health", func() bool {
		p := repoOf(t, addr).Pinned
		return p != nil && p.By == "health" && p.Commit == c4
	})
	if d := lastAutoRollback(); d.Status != "failed" || d.ToCommit != c4 {
		t.Fatalf("the second rollback: %+v\n%s", d, g.logs.String())
	}
	// The outage over, unpin resumes: the next good push deploys.
	os.Remove(filepath.Join(dir, "nostart"))
	if code, out := runCLI(t, bin, "unpin", "site", "--config", cfgPath); code != 0 {
		t.Fatalf("hookgate unpin: %d\n%s", code, out)
	}
	c6 := origin.Commit(map[string]string{"health.txt": "healthy v6\n"}, "v6")
	seen(push(c5, c6), "succeeded")
	if s := serviceSays(); s != "healthy v6" {
		t.Fatalf("after the unpin the service answers %q", s)
	}

	// hookgate rollback waits through the rollback's check (start_delay keeps it verifying
	// for a second, longer than the command's look between polls) and says it succeeded.
	code, out := runCLI(t, bin, "rollback", "site", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "succeeded: the checkout is at "+short(c4)) {
		t.Fatalf("hookgate rollback: %d\n%s", code, out)
	}
	if s := serviceSays(); s != "healthy v4" {
		t.Fatalf("after hookgate rollback the service answers %q", s)
	}
	// hookgate unpin waits, like rollback, through the check of the deploy it starts
	// (origin's head, v6, deploys again).
	if code, out := runCLI(t, bin, "unpin", "site", "--config", cfgPath); code != 0 || !strings.Contains(out, "succeeded: the checkout is at "+short(c6)) {
		t.Fatalf("hookgate unpin: %d\n%s", code, out)
	}
	// hookgate logs --follow streams a deploy through its check to the end and exits 0.
	c7 := origin.Commit(map[string]string{"health.txt": "healthy v7\n"}, "v7")
	d7 := push(c6, c7)
	code, out = runCLI(t, bin, "logs", "site", "--follow", "--deploy", strconv.FormatInt(d7, 10), "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "deploy succeeded") {
		t.Fatalf("hookgate logs --follow --deploy %d: %d\n%s", d7, code, out)
	}
}

// serviceSource is the service the deploys start: it serves the files of the directory it
// runs in (the checkout) at the address its argument names.
const serviceSource = `package main

import (
	"log"
	"net/http"
	"os"
)

func main() {
	log.Fatal(http.ListenAndServe(os.Args[1], http.FileServer(http.Dir("."))))
}
`
