package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// TestCrashLoopEndsFailed kills the real binary with SIGKILL twice while the same work of
// one repository runs, as a deploy that makes the gateway run out of memory does. The
// first restart queues it again; the second fails it ("interrupted by a crash 2 times; not
// retried") and notifies, instead of queuing it a third time, and another repository's
// deploy runs after that restart.
func TestCrashLoopEndsFailed(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	origin, blogOrigin := testkit.NewOrigin(t), testkit.NewOrigin(t)
	checkout, blogCheckout := origin.Clone(), blogOrigin.Clone()
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	release := filepath.Join(dir, "RELEASE")
	t.Cleanup(func() { os.WriteFile(release, nil, 0o644) })
	const notifySecret = "crashloop-n0tify-s3cret"
	rcv, rcvURL := newReceiver(t, []byte(notifySecret))
	addr := freeAddr(t)
	secret := []byte("crashloop-secret-7d21")
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`
[server]
listen = %q
database = %q
node = "crash-1"
shutdown_timeout = "5s"
workers = 2

[repos.site]
secret = %q
path = %q
branch = "main"
commands = ["echo $HOOKGATE_DEPLOY >> %s; while [ ! -f %s ]; do sleep 0.05; done"]
timeout = "2m"

[repos.blog]
secret = %q
path = %q
branch = "main"
commands = ["true"]
timeout = "2m"

[[notify]]
name = "ops"
type = "webhook"
url = %q
secret_env = "TEST_NOTIFY_SECRET"
`, addr, filepath.Join(dir, "hookgate.db"), secret, checkout, started, release, secret, blogCheckout, rcvURL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := "TEST_NOTIFY_SECRET=" + notifySecret
	ctx := context.Background()
	// runningDeploy waits for the nth start of site's command and returns its deploy id.
	runningDeploy := func(n int) int64 {
		t.Helper()
		var ids []string
		testkit.Eventually(t, 60*time.Second, fmt.Sprintf("site's command to start for the %d. time", n), func() bool {
			b, _ := os.ReadFile(started)
			ids = strings.Fields(string(bytes.TrimSpace(b)))
			return len(ids) >= n
		})
		id, err := strconv.ParseInt(ids[n-1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	gw := startGateway(t, bin, cfgPath, addr, env)
	base := testkit.CheckoutHead(t, checkout)
	head := origin.Commit(map[string]string{"v.txt": "1\n"}, "v1")
	if a := deliver(t, addr, "site", "push", "crashloop-1", testkit.Push(t, "refs/heads/main", base, head, ""), secret); a.HTTPStatus != http.StatusAccepted {
		t.Fatalf("push: %+v", a)
	}
	first := runningDeploy(1)
	if err := gw.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("the gateway exited cleanly after SIGKILL?")
	}

	// First restart: the cut-off deploy is queued again, and runs, and is killed again.
	gw = startGateway(t, bin, cfgPath, addr, env)
	second := runningDeploy(2)
	if second == first {
		t.Fatalf("the same deploy %d ran twice", first)
	}
	if err := gw.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("the gateway exited cleanly after SIGKILL?")
	}

	// Second restart: the recovery deploy is failed, not queued a third time.
	gw = startGateway(t, bin, cfgPath, addr, env)
	st, err := store.Open(ctx, filepath.Join(dir, "hookgate.db"), store.WithNode("crash-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if dp, err := st.Deploy(ctx, first); err != nil || dp.Status != store.DeployInterrupted {
		t.Fatalf("deploy %d cut off by the first crash is %q (%v), want interrupted", first, dp.Status, err)
	}
	dp, err := st.Deploy(ctx, second)
	if err != nil || dp.Status != store.DeployFailed || !strings.Contains(dp.Error, "interrupted by a crash 2 times; not retried") {
		t.Fatalf("deploy %d cut off by the second crash is %q %q (%v), want failed: interrupted by a crash 2 times; not retried", second, dp.Status, dp.Error, err)
	}
	if q, err := st.QueuedRepos(ctx); err != nil || len(q) != 0 {
		t.Fatalf("queued after the second restart: %v (%v), want nothing", q, err)
	}
	m := rcv.next(t)
	if m.Event != "deploy.failure" || m.Repo != "site" || m.Deploy.ID != second || !strings.Contains(m.Deploy.Error, "crash 2 times") {
		t.Fatalf("notification %+v, want site's deploy %d failed by the crashes", m, second)
	}

	// The other repository keeps deploying.
	blogBase := testkit.CheckoutHead(t, blogCheckout)
	blogHead := blogOrigin.Commit(map[string]string{"post.txt": "1\n"}, "post")
	a := deliver(t, addr, "blog", "push", "crashloop-blog", testkit.Push(t, "refs/heads/main", blogBase, blogHead, ""), secret)
	if a.HTTPStatus != http.StatusAccepted {
		t.Fatalf("blog push: %+v", a)
	}
	testkit.Eventually(t, 60*time.Second, "blog's deploy to succeed", func() bool {
		dp, err := st.Deploy(ctx, a.DeployID)
		return err == nil && dp.Status == store.DeploySucceeded
	})
	if got := testkit.CheckoutHead(t, blogCheckout); got != blogHead {
		t.Fatalf("blog at %s, want %s", short(got), short(blogHead))
	}
	if b, _ := os.ReadFile(started); len(strings.Fields(string(b))) != 2 {
		t.Fatalf("site's command started %d times, want 2:\n%s", len(strings.Fields(string(b))), b)
	}
	if err := gw.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("gateway exited with %v\n%s", err, gw.logs.String())
	}
}
