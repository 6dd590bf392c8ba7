package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// TestCrashLosesNoAcknowledgedDelivery kills the real binary with SIGKILL while a deploy
// runs and deliveries wait behind it.
//
//   - Committed before answered: the moment each 2xx answer arrives, and before the next
//     delivery is sent, the test reads that delivery from the database file through a
//     connection of its own; the last answer is followed at once by the kill, and every
//     answered delivery must be in the file afterwards.
//   - Re-queued after a crash: with workers = 1, site's deploy runs while blog's waits;
//     site has no other deploy queued when the gateway is killed, so after the restart
//     only the start-up's re-queue can deploy it again. A recovery deploy of site must run
//     and bring it to origin's newest commit (one made after the crash, so no push could
//     have asked for it), and blog's queued deploy must run with its three pushes.
func TestCrashLosesNoAcknowledgedDelivery(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testCrashLosesNoAcknowledgedDelivery(t, filepath.Join(t.TempDir(), "data", "hookgate.db"))
	})
	if pgtest.Enabled(t) {
		t.Run("postgres", func(t *testing.T) { testCrashLosesNoAcknowledgedDelivery(t, pgtest.Database(t)) })
	}
}

// testCrashLosesNoAcknowledgedDelivery runs the crash on dbPath, a SQLite file's path or a
// PostgreSQL URL; the URL reaches the gateway through database_env. On PostgreSQL a second
// gateway started on the same database meanwhile is refused at once, and the restart after
// SIGKILL is not: the server dropped the killed one's lock with its connection.
func testCrashLosesNoAcknowledgedDelivery(t *testing.T, dbPath string) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	origin, blogOrigin := testkit.NewOrigin(t), testkit.NewOrigin(t)
	checkout, blogCheckout := origin.Clone(), blogOrigin.Clone()
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	release := filepath.Join(dir, "RELEASE")
	// A crash leaves the deploy command running in its own process group; RELEASE lets it
	// end whatever happens to the test.
	t.Cleanup(func() { os.WriteFile(release, nil, 0o644) })
	addr := freeAddr(t)
	secret := []byte("crash-test-secret-0f3a9c")
	cfgPath := filepath.Join(dir, "config.toml")
	database, env := fmt.Sprintf("database = %q", dbPath), []string(nil)
	pg := store.IsPostgres(dbPath)
	if pg {
		database, env = `database_env = "HOOKGATE_CRASH_DATABASE"`, []string{"HOOKGATE_CRASH_DATABASE=" + dbPath}
	}
	cfg := fmt.Sprintf(`
[server]
listen = %q
%s
node = "crash-1"
shutdown_timeout = "5s"
workers = 1

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
`, addr, database, secret, checkout, started, release, secret, blogCheckout)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	gw := startGateway(t, bin, cfgPath, addr, env...)
	ctx := context.Background()
	// The test's own connections to the file the gateway writes (WAL: a commit is visible
	// to them at once). Opened after the gateway, which has applied the migrations.
	st, err := store.Open(ctx, dbPath, store.WithNode("crash-1"))
	if err != nil {
		t.Fatal(err)
	}
	inFile := func(a hookAnswer) error {
		d, err := st.Delivery(ctx, a.DeliveryID)
		if err != nil {
			return fmt.Errorf("delivery %s was answered %d (id %d) but is not in the database: %w", a.GUID, a.HTTPStatus, a.DeliveryID, err)
		}
		if d.GUID != a.GUID || d.Status != a.Status || d.HTTPStatus != a.HTTPStatus || d.DeployID != a.DeployID {
			return fmt.Errorf("delivery %d recorded as %s/%s/%d/deploy %d, answered %s/%s/%d/deploy %d",
				a.DeliveryID, d.GUID, d.Status, d.HTTPStatus, d.DeployID, a.GUID, a.Status, a.HTTPStatus, a.DeployID)
		}
		return nil
	}
	var acked []hookAnswer
	// send delivers and, unless last, checks the database before anything else happens.
	send := func(hook, event string, body []byte, last bool) hookAnswer {
		a := deliver(t, addr, hook, event, fmt.Sprintf("crash-%d-%d", time.Now().UnixNano(), len(acked)), body, secret)
		if a.HTTPStatus/100 != 2 {
			t.Fatalf("delivery %s answered %d", a.GUID, a.HTTPStatus)
		}
		acked = append(acked, a)
		if !last {
			if err := inFile(a); err != nil {
				t.Fatalf("at the moment of the answer: %v", err)
			}
		}
		return a
	}
	base := testkit.CheckoutHead(t, checkout)
	first := origin.Commit(map[string]string{"v.txt": "1\n"}, "v1")
	if a := send("site", "push", testkit.Push(t, "refs/heads/main", base, first, ""), false); a.HTTPStatus != http.StatusAccepted {
		t.Fatalf("first push: %+v", a)
	}
	// The command writes its HOOKGATE_DEPLOY when it starts.
	var runningID int64
	testkit.Eventually(t, 60*time.Second, "the first deploy's command to run", func() bool {
		b, err := os.ReadFile(started)
		return err == nil && len(bytes.TrimSpace(b)) > 0 && json.Unmarshal(bytes.TrimSpace(b), &runningID) == nil
	})

	// These arrive while site's deploy holds the one worker slot: blog's wait in the queue.
	prev := testkit.CheckoutHead(t, blogCheckout)
	var queued []hookAnswer
	for i := range 3 {
		next := blogOrigin.Commit(map[string]string{"post.txt": fmt.Sprintf("%d\n", i)}, fmt.Sprintf("post %d", i))
		a := send("blog", "push", testkit.Push(t, "refs/heads/main", prev, next, ""), false)
		if a.HTTPStatus != http.StatusAccepted {
			t.Fatalf("push during the deploy: %+v", a)
		}
		queued, prev = append(queued, a), next
	}
	if pg {
		// The same configuration on another port: the database is taken.
		other := filepath.Join(dir, "other.toml")
		if err := os.WriteFile(other, []byte(strings.Replace(cfg, addr, freeAddr(t), 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		second := exec.CommandContext(ctx, bin, "serve", "--config", other)
		second.Env = append(os.Environ(), env...)
		start := time.Now()
		out, err := second.CombinedOutput()
		if err == nil || !strings.Contains(string(out), store.ErrGatewayRunning.Error()) {
			t.Fatalf("a second gateway on the database: %v\n%s", err, out)
		}
		t.Logf("second gateway refused in %v", time.Since(start).Round(time.Millisecond))
	}
	blogNewest := blogOrigin.Head()
	send("site", "ping", testkit.Payload(t, "github/ping.json"), false)
	send("site", "push", testkit.Push(t, "refs/heads/feature", first, first, ""), true) // ignored, but acknowledged
	if err := gw.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("the gateway exited cleanly after SIGKILL?")
	}

	for _, a := range acked {
		if err := inFile(a); err != nil {
			t.Fatalf("after the crash: %v", err)
		}
	}
	if dp, err := st.Deploy(ctx, runningID); err != nil || dp.Status != store.DeployRunning || dp.Repo != "site" {
		t.Fatalf("the deploy cut off by the crash is %s %q in the file, want site's running (%v)", dp.Repo, dp.Status, err)
	}
	// Nothing but the cut-off deploy stands for site: only a re-queue can deploy it again.
	if q, err := st.QueuedRepos(ctx); err != nil || len(q) != 1 || q[0] != "blog" {
		t.Fatalf("queued at the crash: %v (%v), want blog only", q, err)
	}
	queuedID := queued[0].DeployID
	dp, err := st.Deploy(ctx, queuedID)
	if err != nil || dp.Repo != "blog" || dp.Status != store.DeployQueued || len(dp.DeliveryIDs) != len(queued) {
		t.Fatalf("blog's pushes should wait in one queued deploy: %+v %v", dp, err)
	}
	for i, a := range queued {
		if a.DeployID != queuedID || dp.DeliveryIDs[i] != a.DeliveryID {
			t.Fatalf("push %+v did not join queued deploy %d %v", a, queuedID, dp.DeliveryIDs)
		}
	}
	t.Logf("after SIGKILL: %d acknowledged deliveries all in the file; site's deploy %d running, blog's deploy %d queued", len(acked), runningID, queuedID)

	// Origin moves on while the gateway is down; no push tells about it.
	newest := origin.Commit(map[string]string{"v.txt": "after the crash\n"}, "after the crash")
	// Restart on the same database with the old deploy command released.
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	gw = startGateway(t, bin, cfgPath, addr, env...)
	defer st.Close()
	// The start-up marks what the crash cut off before it listens, so before /healthz answers.
	if dp, err := st.Deploy(ctx, runningID); err != nil || dp.Status != store.DeployInterrupted {
		t.Fatalf("the cut-off deploy is %q after the restart, want interrupted (%v)", dp.Status, err)
	}
	testkit.Eventually(t, 60*time.Second, "the queue to drain after the restart", func() bool {
		for _, status := range []string{store.DeployQueued, store.DeployRunning} {
			dps, err := st.ListDeploys(ctx, store.DeployFilter{Status: status, Page: store.Page{Limit: 10}})
			if err != nil {
				t.Fatal(err)
			}
			if len(dps) > 0 {
				return false
			}
		}
		return true
	})
	dps, err := st.ListDeploys(ctx, store.DeployFilter{Page: store.Page{Limit: 50}})
	if err != nil {
		t.Fatal(err)
	}
	var recovered, blogDone bool
	for _, dp := range dps {
		t.Logf("deploy %d: %s %s, trigger %s, %s → %s %s", dp.ID, dp.Repo, dp.Status, dp.Trigger, short(dp.FromCommit), short(dp.ToCommit), dp.Error)
		switch {
		case dp.ID == runningID:
			if dp.Status != store.DeployInterrupted {
				t.Errorf("the cut-off deploy is %q once the queue drained, want interrupted", dp.Status)
			}
		case dp.Status != store.DeploySucceeded:
			t.Errorf("deploy %d ended %s: %s", dp.ID, dp.Status, dp.Error)
		case dp.Repo == "site" && dp.ID > runningID && dp.Trigger == store.TriggerRecovery && dp.ToCommit == newest:
			recovered = true
		case dp.ID == queuedID && dp.ToCommit == blogNewest:
			blogDone = true
		}
	}
	if !recovered {
		t.Fatalf("no recovery deploy of site after the crash brought it to %s", short(newest))
	}
	if !blogDone {
		t.Fatalf("blog's queued deploy %d did not run to %s", queuedID, short(blogNewest))
	}
	if head := testkit.CheckoutHead(t, checkout); head != newest {
		t.Fatalf("checkout at %s after recovery, want origin's newest %s", short(head), short(newest))
	}
	if nodes, err := st.Nodes(ctx); err != nil || len(nodes) != 1 || nodes[0].Name != "crash-1" ||
		nodes[0].Status != store.NodeUp || len(nodes[0].Repos) != 2 {
		t.Fatalf("nodes after the restart: %+v %v", nodes, err)
	}
	if err := gw.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("restarted gateway exited with %v\n%s", err, gw.logs.String())
	}
}

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
