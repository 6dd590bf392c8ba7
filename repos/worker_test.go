package repos

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

type workerEnv struct {
	store    *store.Store
	origin   *testkit.Origin
	checkout string
}

func newWorkerEnv(t *testing.T) *workerEnv {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hookgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	origin := testkit.NewOrigin(t)
	return &workerEnv{store: st, origin: origin, checkout: origin.Clone()}
}

func (e *workerEnv) manager(t *testing.T, workers int, repos ...Repo) *Manager {
	t.Helper()
	for i := range repos {
		if repos[i].Timeout == 0 {
			repos[i].Timeout = time.Minute
		}
		if repos[i].Branch == "" {
			repos[i].Branch = "main"
		}
	}
	return NewManager(e.store, repos, Options{
		Workers: workers,
		Env:     []string{"PATH=" + os.Getenv("PATH")},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

func (e *workerEnv) queue(t *testing.T, repo, guid string) *store.Delivery {
	t.Helper()
	d := &store.Delivery{GUID: guid, Repo: repo, Event: "push", Ref: "refs/heads/main",
		Signature: store.SignatureValid, Status: store.DeliveryAccepted, HTTPStatus: 202}
	if err := e.store.RecordDelivery(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return d
}

func (e *workerEnv) deploy(t *testing.T, id int64) store.Deploy {
	t.Helper()
	dp, err := e.store.Deploy(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return dp
}

func TestRunOnceDeploysAndPassesEnvironment(t *testing.T) {
	e := newWorkerEnv(t)
	from := testkit.CheckoutHead(t, e.checkout)
	to := e.origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	m := e.manager(t, 1, Repo{
		Spec: checkout.Spec{Name: "site", Path: e.checkout},
		Commands: []string{
			`echo "repo=$HOOKGATE_REPO commit=$HOOKGATE_COMMIT ref=$HOOKGATE_REF delivery=$HOOKGATE_DELIVERY previous=$HOOKGATE_PREVIOUS_COMMIT"`,
			`pwd; cat app.txt`,
		},
	})
	d := e.queue(t, "site", "guid-42")
	if !m.workers["site"].runOnce() {
		t.Fatal("runOnce found nothing to deploy")
	}
	if m.workers["site"].runOnce() {
		t.Fatal("a second runOnce deployed again")
	}
	dp := e.deploy(t, d.DeployID)
	if dp.Status != store.DeploySucceeded || dp.FromCommit != from || dp.ToCommit != to || dp.StartedAt.IsZero() || dp.FinishedAt.IsZero() {
		t.Fatalf("deploy %+v", dp)
	}
	want := fmt.Sprintf("repo=site commit=%s ref=refs/heads/main delivery=guid-42 previous=%s", to, from)
	if !strings.Contains(dp.Log, want) || !strings.Contains(dp.Log, e.checkout+"\nv2\n") {
		t.Fatalf("log lacks the environment or the command output:\n%s", dp.Log)
	}
	if testkit.CheckoutHead(t, e.checkout) != to {
		t.Fatal("checkout not at the pushed commit")
	}
}

func TestFailingCommandStopsTheDeploy(t *testing.T) {
	e := newWorkerEnv(t)
	m := e.manager(t, 1, Repo{
		Spec:     checkout.Spec{Name: "site", Path: e.checkout},
		Commands: []string{"echo first", "echo oops >&2; exit 3", "echo never"},
	})
	d := e.queue(t, "site", "g")
	m.workers["site"].runOnce()
	dp := e.deploy(t, d.DeployID)
	if dp.Status != store.DeployFailed || !strings.Contains(dp.Error, "command 2 of 3") || !strings.Contains(dp.Error, "exit status 3") {
		t.Fatalf("deploy %s: %q", dp.Status, dp.Error)
	}
	if !strings.Contains(dp.Log, "first") || !strings.Contains(dp.Log, "oops") || strings.Contains(dp.Log, "never") {
		t.Fatalf("log:\n%s", dp.Log)
	}
}

func TestUpdateFailureFailsTheDeploy(t *testing.T) {
	e := newWorkerEnv(t)
	e.origin.Commit(map[string]string{"README.md": "changed upstream\n"}, "upstream")
	if err := os.WriteFile(filepath.Join(e.checkout, "README.md"), []byte("edited on the server\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := e.manager(t, 1, Repo{Spec: checkout.Spec{Name: "site", Path: e.checkout}, Commands: []string{"echo must not run"}})
	d := e.queue(t, "site", "g")
	m.workers["site"].runOnce()
	dp := e.deploy(t, d.DeployID)
	if dp.Status != store.DeployFailed || !strings.Contains(dp.Error, "local modifications") || strings.Contains(dp.Log, "must not run\n") {
		t.Fatalf("deploy %s: %q\n%s", dp.Status, dp.Error, dp.Log)
	}
}

// TestTimeoutKillsProcessTree: a command that started a background child is killed with
// its child when the deploy times out, and the queue goes on.
func TestTimeoutKillsProcessTree(t *testing.T) {
	e := newWorkerEnv(t)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	m := e.manager(t, 1, Repo{
		Spec:     checkout.Spec{Name: "site", Path: e.checkout},
		Commands: []string{fmt.Sprintf("sleep 300 & echo $! > %s; wait", pidFile)},
		Timeout:  time.Second,
	})
	d := e.queue(t, "site", "g")
	start := time.Now()
	m.workers["site"].runOnce()
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("the deploy took %s with a 1s timeout", took)
	}
	dp := e.deploy(t, d.DeployID)
	if dp.Status != store.DeployFailed || !strings.Contains(dp.Error, "timed out after 1s") {
		t.Fatalf("deploy %s: %q", dp.Status, dp.Error)
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	testkit.Eventually(t, 10*time.Second, "the background child to be gone", func() bool {
		return syscall.Kill(pid, 0) == syscall.ESRCH
	})
	// The queue goes on.
	next := e.queue(t, "site", "g2")
	if next.DeployID == d.DeployID || !m.workers["site"].runOnce() {
		t.Fatal("the repository's queue did not go on after a timeout")
	}
}

func TestLogKeepsTheLast64KiB(t *testing.T) {
	e := newWorkerEnv(t)
	m := e.manager(t, 1, Repo{
		Spec:     checkout.Spec{Name: "site", Path: e.checkout},
		Commands: []string{`i=0; while [ $i -lt 5000 ]; do echo "line $i of a long build output......................"; i=$((i+1)); done`},
	})
	d := e.queue(t, "site", "g")
	m.workers["site"].runOnce()
	dp := e.deploy(t, d.DeployID)
	if dp.Status != store.DeploySucceeded {
		t.Fatalf("deploy %s %s", dp.Status, dp.Error)
	}
	if len(dp.Log) > maxLog+200 || !strings.Contains(dp.Log, "line 4999 of") || strings.Contains(dp.Log, "line 0 of") ||
		!strings.Contains(dp.Log, "earlier bytes of output dropped") {
		t.Fatalf("log of %d bytes does not keep just the end:\n%.300s", len(dp.Log), dp.Log)
	}
}

// TestCoalescingAndNoOverlap: pushes that arrive during a running deploy make one more
// deploy, and the deploy commands of one repository never run at the same time.
//
// Each deploy's command holds until the test releases that deploy by id, and records when it
// started and ended. The first deploy is held while twenty pushes arrive and then for a
// window past the earliest moment the worker could start another deploy (minDeploySpacing
// after the first began): a worker that ran a second deploy beside the first would start it
// inside that window, where the test sees it at once. Absence cannot be shown by an event,
// so the window is the one wait here; it bounds how soon a broken worker is caught, never
// whether a correct one passes.
func TestCoalescingAndNoOverlap(t *testing.T) {
	e := newWorkerEnv(t)
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	lock := filepath.Join(dir, "lock")
	marker := func(kind string, id int64) string { return filepath.Join(dir, fmt.Sprintf("%s-%d", kind, id)) }
	m := e.manager(t, 4, Repo{
		Spec: checkout.Spec{Name: "site", Path: e.checkout},
		Commands: []string{
			// mkdir is atomic: a second deploy running at the same time fails here.
			fmt.Sprintf("mkdir %s || { echo \"overlap $HOOKGATE_DEPLOY\" >> %s; exit 99; }", lock, runs),
			fmt.Sprintf(`echo "start $HOOKGATE_DEPLOY $(date +%%s%%N)" >> %[1]s; touch %[2]s/started-$HOOKGATE_DEPLOY
while [ ! -f %[2]s/release-$HOOKGATE_DEPLOY ] && [ ! -f %[2]s/release-all ]; do sleep 0.02; done
echo "end $HOOKGATE_DEPLOY $(date +%%s%%N)" >> %[1]s`, runs, dir),
			fmt.Sprintf("rmdir %s", lock),
		},
	})
	m.Start()
	defer m.Stop(30 * time.Second)
	defer os.WriteFile(filepath.Join(dir, "release-all"), nil, 0o644) // a failed test lets every deploy end
	exists := func(path string) bool {
		_, err := os.Stat(path)
		return err == nil
	}
	release := func(id int64) {
		t.Helper()
		if err := os.WriteFile(marker("release", id), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	first := e.queue(t, "site", "g0")
	m.Wake("site")
	testkit.Eventually(t, 30*time.Second, "the first deploy to run its command", func() bool {
		return exists(marker("started", first.DeployID))
	})
	firstStarted := time.Now()
	var wg sync.WaitGroup
	ids := make(chan int64, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := e.queue(t, "site", fmt.Sprintf("g%d", i+1))
			m.Wake("site")
			ids <- d.DeployID
		}()
	}
	wg.Wait()
	close(ids)
	var second int64
	for id := range ids {
		if second == 0 {
			second = id
		}
		if id != second || id == first.DeployID {
			t.Fatalf("pushes during a running deploy went to deploys %d and %d (first %d)", second, id, first.DeployID)
		}
	}

	// The first deploy is still running: nothing else of this repository may start.
	window := time.Until(firstStarted.Add(minDeploySpacing + 2*time.Second))
	deadline := time.After(window)
hold:
	for {
		raw, err := os.ReadFile(runs)
		if err != nil {
			t.Fatal(err)
		}
		dp := e.deploy(t, second)
		if exists(marker("started", second)) || strings.Contains(string(raw), "overlap") || dp.Status != store.DeployQueued {
			t.Fatalf("deploy %d is %s and ran while deploy %d was still running:\n%s", second, dp.Status, first.DeployID, raw)
		}
		select {
		case <-deadline:
			break hold
		case <-time.After(20 * time.Millisecond):
		}
	}
	release(first.DeployID)
	testkit.Eventually(t, 30*time.Second, "the second deploy to start", func() bool {
		return exists(marker("started", second))
	})
	release(second)
	testkit.Eventually(t, 30*time.Second, "the second deploy to finish", func() bool {
		return e.deploy(t, second).Status == store.DeploySucceeded
	})
	one, two := e.deploy(t, first.DeployID), e.deploy(t, second)
	if one.Status != store.DeploySucceeded {
		t.Fatalf("first deploy %s %s", one.Status, one.Error)
	}
	if len(two.DeliveryIDs) != 20 {
		t.Fatalf("second deploy joined %d deliveries, want the 20 pushes", len(two.DeliveryIDs))
	}
	if two.StartedAt.Before(one.FinishedAt) {
		t.Fatalf("deploy %d started at %s, before deploy %d finished at %s", second, two.StartedAt, first.DeployID, one.FinishedAt)
	}

	// The commands' own record: two runs, one after the other.
	raw, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	type span struct{ id, start, end int64 }
	var spans []span
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var kind string
		var id, at int64
		if _, err := fmt.Sscan(line, &kind, &id, &at); err != nil {
			t.Fatalf("runs line %q: %v\n%s", line, err, raw)
		}
		switch kind {
		case "start":
			spans = append(spans, span{id: id, start: at})
		case "end":
			if len(spans) == 0 || spans[len(spans)-1].id != id || spans[len(spans)-1].end != 0 {
				t.Fatalf("deploy %d ended while another was running:\n%s", id, raw)
			}
			spans[len(spans)-1].end = at
		default:
			t.Fatalf("runs line %q\n%s", line, raw)
		}
	}
	if len(spans) != 2 || spans[0].id != first.DeployID || spans[1].id != second ||
		spans[0].end == 0 || spans[1].end == 0 || spans[1].start < spans[0].end {
		t.Fatalf("want deploy %d then deploy %d, each run once and not overlapping:\n%s", first.DeployID, second, raw)
	}
}

// TestStopInterruptsAndRequeues: a deploy still running when the shutdown grace ends is
// recorded as interrupted and its repository queued again.
func TestStopInterruptsAndRequeues(t *testing.T) {
	e := newWorkerEnv(t)
	started := filepath.Join(t.TempDir(), "started")
	m := e.manager(t, 1, Repo{
		Spec:     checkout.Spec{Name: "site", Path: e.checkout},
		Commands: []string{fmt.Sprintf("touch %s; sleep 300", started)},
	})
	m.Start()
	d := e.queue(t, "site", "g")
	m.Wake("site")
	testkit.Eventually(t, 30*time.Second, "the deploy command to start", func() bool {
		_, err := os.Stat(started)
		return err == nil && m.Running("site") == d.DeployID
	})
	m.Stop(100 * time.Millisecond)
	dp := e.deploy(t, d.DeployID)
	if dp.Status != store.DeployInterrupted || !strings.Contains(dp.Error, "shut down") {
		t.Fatalf("deploy %s: %q", dp.Status, dp.Error)
	}
	q, err := e.store.QueuedRepos(context.Background())
	if err != nil || len(q) != 1 || q[0] != "site" {
		t.Fatalf("repository not queued again: %v %v", q, err)
	}
}

// TestWorkersBoundParallelism: different repositories deploy in parallel, never more at
// once than Workers.
func TestWorkersBoundParallelism(t *testing.T) {
	e := newWorkerEnv(t)
	dir := t.TempDir()
	var list []Repo
	for i := range 5 {
		name := fmt.Sprintf("r%d", i)
		list = append(list, Repo{
			Spec: checkout.Spec{Name: name, Path: e.origin.Clone()},
			Commands: []string{fmt.Sprintf(
				// Count concurrent deploys with one marker file each; record the peak seen.
				`touch %[1]s/run-%[2]s; n=$(ls %[1]s | grep -c '^run-'); echo $n >> %[1]s/peaks; sleep 0.3; rm %[1]s/run-%[2]s`, dir, name)},
		})
	}
	m := e.manager(t, 2, list...)
	var ds []*store.Delivery
	for _, r := range list {
		ds = append(ds, e.queue(t, r.Name, "g-"+r.Name))
	}
	m.Start()
	defer m.Stop(30 * time.Second)
	testkit.Eventually(t, 60*time.Second, "all deploys to finish", func() bool {
		for _, d := range ds {
			if e.deploy(t, d.DeployID).Status != store.DeploySucceeded {
				return false
			}
		}
		return true
	})
	raw, _ := os.ReadFile(filepath.Join(dir, "peaks"))
	peak := 0
	for _, f := range strings.Fields(string(raw)) {
		n, _ := strconv.Atoi(f)
		peak = max(peak, n)
	}
	if peak != 2 {
		t.Fatalf("peak concurrent deploys %d, want exactly the 2 workers", peak)
	}
}

// TestDeploysOfOneRepositoryStartASecondApart: a deploy queued just after a quick one
// finished waits for the rest of a second (minDeploySpacing) from that one's start, so a burst of
// pushes makes a few deploys rather than one per push.
func TestDeploysOfOneRepositoryStartASecondApart(t *testing.T) {
	e := newWorkerEnv(t)
	m := e.manager(t, 1, Repo{Spec: checkout.Spec{Name: "site", Path: e.checkout}, Commands: []string{"true"}})
	m.Start()
	defer m.Stop(30 * time.Second)
	finished := func(id int64) store.Deploy {
		t.Helper()
		var dp store.Deploy
		testkit.Eventually(t, 30*time.Second, fmt.Sprintf("deploy %d to finish", id), func() bool {
			dp = e.deploy(t, id)
			return dp.Status == store.DeploySucceeded || dp.Status == store.DeployFailed
		})
		return dp
	}
	first := e.queue(t, "site", "g1")
	m.Wake("site")
	one := finished(first.DeployID)
	second := e.queue(t, "site", "g2")
	m.Wake("site")
	two := finished(second.DeployID)
	// The documented spacing, not the constant: a test that read it would follow it to 0.
	if gap := two.StartedAt.Sub(one.StartedAt); gap < time.Second-10*time.Millisecond {
		t.Fatalf("the second deploy started %s after the first, want at least 1 s", gap)
	}
}
