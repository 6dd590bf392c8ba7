package repos

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

// healthEnv is a target whose service answers its health URL from the checkout: 200 with
// the body of health.txt when that file says "ok", else 503 with it. It also records,
// at each probe, the Host header and the deploy status the store shows for the target.
type healthEnv struct {
	*workerEnv
	srv *httptest.Server
	m   *Manager

	mu       sync.Mutex
	hosts    []string
	statuses []string
	onProbe  func() // when set, runs in the handler before it answers
	down     bool   // answer 503 whatever the checkout holds
}

func newHealthEnv(t *testing.T, h Health) *healthEnv {
	t.Helper()
	e := &healthEnv{workerEnv: newWorkerEnv(t)}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.hosts = append(e.hosts, r.Host)
		onProbe, down := e.onProbe, e.down
		e.mu.Unlock()
		e.recordRunningStatus(t)
		if onProbe != nil {
			onProbe()
		}
		b, _ := os.ReadFile(filepath.Join(e.checkout, "health.txt"))
		if down || strings.TrimSpace(string(b)) != "ok" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		w.Write(b)
	}))
	t.Cleanup(e.srv.Close)
	if h.URL == "" && h.Command == "" {
		h.URL = e.srv.URL + "/healthz"
	}
	h.ProbeTimeout, h.Interval, h.Deadline = 5*time.Second, 20*time.Millisecond, 400*time.Millisecond
	if h.HealthyAfter == 0 {
		h.HealthyAfter = 1
	}
	if h.OnFailure == "" {
		h.OnFailure = HealthRollback
	}
	e.m = e.manager(t, 1, Repo{Spec: checkout.Spec{Name: "site", Path: e.checkout}, Commands: []string{"true"}, Health: &h})
	return e
}

// recordRunningStatus notes the status of the newest deploy of site not queued.
func (e *healthEnv) recordRunningStatus(t *testing.T) {
	list, err := e.store.ListDeploys(context.Background(), store.DeployFilter{Repo: "site", Page: store.Page{Limit: 5}})
	if err != nil {
		t.Error(err)
		return
	}
	for _, dp := range list {
		if dp.Status != store.DeployQueued {
			e.mu.Lock()
			e.statuses = append(e.statuses, dp.Status)
			e.mu.Unlock()
			return
		}
	}
}

// step queues a push of site and runs the worker once; it returns the deploy.
func (e *healthEnv) step(t *testing.T, guid string) store.Deploy {
	t.Helper()
	d := e.queue(t, "site", guid)
	if !e.m.workers["site"].runOnce() {
		t.Fatal("runOnce found nothing to deploy")
	}
	return e.deploy(t, d.DeployID)
}

func (e *healthEnv) probes(t *testing.T, id int64) []store.Probe {
	t.Helper()
	p, err := e.store.Probes(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHealthyDeployVerifiesThenSucceeds(t *testing.T) {
	e := newHealthEnv(t, Health{Host: "site.example.com", HealthyAfter: 2, ExpectBody: "ok"})
	good := e.origin.Commit(map[string]string{"health.txt": "ok\n"}, "healthy")
	dp := e.step(t, "g1")
	if dp.Status != store.DeploySucceeded || dp.ToCommit != good {
		t.Fatalf("deploy: %s %q", dp.Status, dp.Error)
	}
	probes := e.probes(t, dp.ID)
	if len(probes) != 2 || !probes[0].Passed || probes[0].Code != 200 || probes[0].Output != "ok\n" || probes[0].Kind != store.ProbeURL {
		t.Fatalf("probes: %+v", probes)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hosts[0] != "site.example.com" {
		t.Fatalf("the probe's Host header: %q", e.hosts[0])
	}
	if e.statuses[0] != store.DeployVerifying {
		t.Fatalf("while probed the deploy was %q, want verifying", e.statuses[0])
	}
	if !strings.Contains(dp.Log, "healthy after 2 probe(s)") {
		t.Fatalf("log:\n%s", dp.Log)
	}
}

func TestFailedCheckRollsBackAndMarksTheCommitBad(t *testing.T) {
	e := newHealthEnv(t, Health{})
	good := e.origin.Commit(map[string]string{"health.txt": "ok\n"}, "healthy")
	if dp := e.step(t, "g1"); dp.Status != store.DeploySucceeded {
		t.Fatalf("first deploy: %s %q", dp.Status, dp.Error)
	}
	// Files the service keeps beside the code: a rollback must leave them.
	os.WriteFile(filepath.Join(e.checkout, "uploads.db"), []byte("data"), 0o644)
	os.WriteFile(filepath.Join(e.checkout, ".env"), []byte("X=1"), 0o644)
	bad := e.origin.Commit(map[string]string{"health.txt": "broken\n"}, "broken")
	dp := e.step(t, "g2")
	if dp.Status != store.DeployFailed || dp.ToCommit != bad ||
		dp.Error != "health check failed: GET "+e.srv.URL+"/healthz answered 503, want 2xx" {
		t.Fatalf("bad deploy: %s %q", dp.Status, dp.Error)
	}
	probes := e.probes(t, dp.ID)
	if len(probes) < 2 || probes[0].Passed || probes[0].Code != 503 || probes[0].Output != "broken\n" {
		t.Fatalf("probes: %+v", probes)
	}
	bads, err := e.store.BadCommits(context.Background(), "site")
	if err != nil || len(bads) != 1 || bads[0].Commit != bad || bads[0].DeployID != dp.ID {
		t.Fatalf("bad commits: %+v, %v", bads, err)
	}
	// The rollback was queued in the same step; the worker runs it next.
	if !e.m.workers["site"].runOnce() {
		t.Fatal("no automatic rollback queued")
	}
	list, _ := e.store.ListDeploys(context.Background(), store.DeployFilter{Repo: "site", Page: store.Page{Limit: 1}})
	rb := list[0]
	if rb.Trigger != store.TriggerAutoRollback || rb.RollbackOf != dp.ID || rb.Status != store.DeploySucceeded || rb.ToCommit != good {
		t.Fatalf("rollback: %+v", rb)
	}
	if testkit.CheckoutHead(t, e.checkout) != good {
		t.Fatal("the checkout is not back at the good commit")
	}
	if readFile(t, filepath.Join(e.checkout, "uploads.db")) != "data" || readFile(t, filepath.Join(e.checkout, ".env")) != "X=1" {
		t.Fatal("the rollback lost untracked or ignored files")
	}
	if p, _ := e.store.GetPin(context.Background(), "site"); p != nil {
		t.Fatalf("a successful automatic rollback pinned the target: %+v", p)
	}
}

func TestFailedRollbackPinsByHealth(t *testing.T) {
	e := newHealthEnv(t, Health{})
	good := e.origin.Commit(map[string]string{"health.txt": "ok\n"}, "healthy")
	e.step(t, "g1")
	e.origin.Commit(map[string]string{"health.txt": "broken\n"}, "broken")
	// The service breaks whatever the commit: the rollback's check fails too.
	e.mu.Lock()
	e.down = true
	e.mu.Unlock()
	if dp := e.step(t, "g2"); dp.Status != store.DeployFailed {
		t.Fatalf("bad deploy: %s", dp.Status)
	}
	if !e.m.workers["site"].runOnce() {
		t.Fatal("no automatic rollback queued")
	}
	list, _ := e.store.ListDeploys(context.Background(), store.DeployFilter{Repo: "site", Page: store.Page{Limit: 1}})
	if rb := list[0]; rb.Trigger != store.TriggerAutoRollback || rb.Status != store.DeployFailed || rb.ToCommit != good {
		t.Fatalf("rollback: %+v", rb)
	}
	p, err := e.store.GetPin(context.Background(), "site")
	if err != nil || p == nil || p.By != store.PinnedByHealth || p.Commit != good {
		t.Fatalf("pin after the failed rollback: %+v, %v", p, err)
	}
	if e.m.workers["site"].runOnce() {
		t.Fatal("something ran after the failed rollback")
	}
}

func TestFirstDeployFailingItsCheckIsNotRolledBack(t *testing.T) {
	e := newHealthEnv(t, Health{})
	e.origin.Commit(map[string]string{"health.txt": "broken\n"}, "broken")
	dp := e.step(t, "g1")
	if dp.Status != store.DeployFailed || !strings.HasPrefix(dp.Error, "health check failed: ") {
		t.Fatalf("deploy: %s %q", dp.Status, dp.Error)
	}
	if e.m.workers["site"].runOnce() {
		t.Fatal("a rollback ran with no good commit to go to")
	}
}

func TestCommandCheckSeesTheDeploy(t *testing.T) {
	e := newHealthEnv(t, Health{Command: `echo "checking $HOOKGATE_COMMIT"; test "$(cat health.txt)" = ok || exit 7`})
	e.origin.Commit(map[string]string{"health.txt": "ok\n"}, "healthy")
	e.step(t, "g1")
	bad := e.origin.Commit(map[string]string{"health.txt": "broken\n"}, "broken")
	dp := e.step(t, "g2")
	if dp.Status != store.DeployFailed || dp.Error != "health check failed: command exited 7" {
		t.Fatalf("deploy: %s %q", dp.Status, dp.Error)
	}
	probes := e.probes(t, dp.ID)
	if len(probes) == 0 || probes[0].Kind != store.ProbeCommand || probes[0].Code != 7 || probes[0].Output != "checking "+bad+"\n" {
		t.Fatalf("probes: %+v", probes)
	}
}

func TestNewerDeploySupersedesTheCheck(t *testing.T) {
	e := newHealthEnv(t, Health{})
	e.origin.Commit(map[string]string{"health.txt": "ok\n"}, "healthy")
	e.step(t, "g1")
	e.origin.Commit(map[string]string{"health.txt": "slow\n"}, "not ready yet")
	var once sync.Once
	e.mu.Lock()
	e.onProbe = func() { once.Do(func() { e.queue(t, "site", "g3") }) }
	e.mu.Unlock()
	dp := e.step(t, "g2")
	if dp.Status != store.DeploySuperseded {
		t.Fatalf("deploy: %s %q", dp.Status, dp.Error)
	}
	if bads, _ := e.store.BadCommits(context.Background(), "site"); len(bads) != 0 {
		t.Fatalf("a superseded deploy marked a commit bad: %+v", bads)
	}
	list, _ := e.store.ListDeploys(context.Background(), store.DeployFilter{Repo: "site", Page: store.Page{Limit: 1}})
	if list[0].Status != store.DeployQueued || list[0].Trigger != store.TriggerPush {
		t.Fatalf("the newer push is not what is queued next: %+v", list[0])
	}
}

func TestFollowUpDeployLeavesABadHead(t *testing.T) {
	e := newHealthEnv(t, Health{})
	good := e.origin.Commit(map[string]string{"health.txt": "ok\n"}, "healthy")
	e.step(t, "g1")
	bad := e.origin.Commit(map[string]string{"health.txt": "broken\n"}, "broken")
	failed := e.step(t, "g2")
	e.m.workers["site"].runOnce() // the automatic rollback
	// A deploy of origin's head queued without a commit of its own (a coalesced
	// follow-up, a recovery) finds the bad commit there and deploys nothing.
	dp := e.step(t, "g3")
	want := "commit " + bad[:7] + " failed its health check (deploy " + strconv.FormatInt(failed.ID, 10) + ")"
	if dp.Status != store.DeploySkipped || !strings.HasSuffix(dp.Error, want) {
		t.Fatalf("follow-up: %s %q, want skipped with %q", dp.Status, dp.Error, want)
	}
	if testkit.CheckoutHead(t, e.checkout) != good {
		t.Fatal("the follow-up moved the checkout")
	}
	// Another commit on top deploys.
	next := e.origin.Commit(map[string]string{"health.txt": "ok\n"}, "fixed")
	if dp := e.step(t, "g4"); dp.Status != store.DeploySucceeded || dp.ToCommit != next {
		t.Fatalf("the next commit: %s to %s %q", dp.Status, dp.ToCommit, dp.Error)
	}
}

// TestTagTargetLeavesABadTag: once a tag's commit failed its health check on a tag target,
// nothing automatic deploys it again, whichever way it comes: the push of another
// annotated tag of it (whose "after" is the tag object, so the delivery cannot tell), a
// deploy those pushes coalesce into, a recovery that goes to origin's newest tag. Each is
// skipped with the bad commit's reason and leaves the checkout alone; a manual deploy
// (forced, or checked when it was asked for) still deploys it.
func TestTagTargetLeavesABadTag(t *testing.T) {
	e := newWorkerEnv(t)
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, _ := os.ReadFile(filepath.Join(e.checkout, "health.txt")); strings.TrimSpace(string(b)) != "ok" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	h := Health{URL: srv.URL, ProbeTimeout: 5 * time.Second, Interval: 20 * time.Millisecond,
		Deadline: 400 * time.Millisecond, HealthyAfter: 1, OnFailure: HealthRollback}
	m := e.manager(t, 1, Repo{Spec: checkout.Spec{Name: "prod", Path: e.checkout}, Tags: "v*", Commands: []string{"true"}, Health: &h})
	w := m.workers["prod"]
	push := func(guid, tag, after string) int64 {
		t.Helper()
		d := &store.Delivery{GUID: guid, Repo: "prod", Event: "push", Ref: "refs/tags/" + tag, After: after,
			Signature: store.SignatureValid, Status: store.DeliveryAccepted, HTTPStatus: 202}
		if err := e.store.RecordDelivery(ctx, d); err != nil || d.DeployID == 0 {
			t.Fatalf("push of %s: deploy %d, %v (%s)", tag, d.DeployID, err, d.Reason)
		}
		return d.DeployID
	}

	good := e.origin.Commit(map[string]string{"health.txt": "ok\n"}, "healthy")
	e.origin.Tag("v1.0.0", good)
	push("g1", "v1.0.0", good)
	w.runOnce()
	bad := e.origin.Commit(map[string]string{"health.txt": "broken\n"}, "broken")
	failed := push("g2", "v1.1.0", e.origin.AnnotatedTag("v1.1.0", bad, "1.1"))
	w.runOnce()
	if dp := e.deploy(t, failed); dp.Status != store.DeployFailed || dp.ToCommit != bad {
		t.Fatalf("v1.1.0: %s to %s %q; want failed at %s", dp.Status, dp.ToCommit, dp.Error, bad)
	}
	w.runOnce() // the automatic rollback to v1.0.0's commit
	if _, err := e.store.Unpin(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	want := "commit " + bad[:7] + " failed its health check (deploy " + strconv.FormatInt(failed, 10) + ")"
	skipped := func(what string, id int64) {
		t.Helper()
		dp := e.deploy(t, id)
		if dp.Status != store.DeploySkipped || !strings.HasSuffix(dp.Error, want) || !strings.Contains(dp.Error, "is not deployed: ") {
			t.Fatalf("%s: %s %q; want skipped with %q\n%s", what, dp.Status, dp.Error, want, dp.Log)
		}
		if head := testkit.CheckoutHead(t, e.checkout); head != good {
			t.Fatalf("%s moved the checkout to %s", what, head)
		}
	}

	// Another annotated tag of the bad commit, and one more pushed while it waits: the
	// deploy goes to the higher, v1.1.2, and refuses it.
	id := push("g3", "v1.1.1", e.origin.AnnotatedTag("v1.1.1", bad, "1.1.1"))
	if joined := push("g4", "v1.1.2", e.origin.AnnotatedTag("v1.1.2", bad, "1.1.2")); joined != id {
		t.Fatalf("v1.1.2 queued %d, not joined %d", joined, id)
	}
	w.runOnce()
	skipped("the coalesced tag pushes", id)

	// A recovery goes to origin's newest tag, v1.1.2: refused too.
	if _, err := e.store.EnqueueManual(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	cut, err := e.store.ClaimDeploy(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.FinishDeploy(ctx, cut.ID, store.Result{Status: store.DeployInterrupted, Error: "shut down"}); err != nil {
		t.Fatal(err)
	}
	w.runOnce()
	recovered := e.deploysOfRepo(t, "prod", store.TriggerRecovery)
	if len(recovered) != 1 {
		t.Fatalf("recoveries: %+v", recovered)
	}
	skipped("the recovery", recovered[0].ID)

	// A manual deploy is not stopped by the worker.
	dp, err := e.store.EnqueueManual(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	w.runOnce()
	if got := e.deploy(t, dp.ID); got.ToCommit != bad || got.Status == store.DeploySkipped {
		t.Fatalf("manual deploy: %s to %s %q; want it to deploy %s", got.Status, got.ToCommit, got.Error, bad)
	}
}

// TestManualDeployJoiningAPushDeploysTheBadHead: an operator's deploy (forced past the bad
// commit check, as POST /api/v1/repos/NAME/deploy with {"force": true} is) that joins a push
// deploy already queued deploys origin's head although it is bad: the joined deploy is the
// operator's now, and the skip of bad commits is for automatic deploys only.
func TestManualDeployJoiningAPushDeploysTheBadHead(t *testing.T) {
	e := newHealthEnv(t, Health{OnFailure: HealthFail})
	e.origin.Commit(map[string]string{"health.txt": "ok\n"}, "healthy")
	e.step(t, "g1")
	bad := e.origin.Commit(map[string]string{"health.txt": "broken\n"}, "broken")
	if dp := e.step(t, "g2"); dp.Status != store.DeployFailed {
		t.Fatalf("bad deploy: %s %q", dp.Status, dp.Error)
	}
	queued := e.queue(t, "site", "g3") // a redelivery, a follow-up: origin's head, unforced
	manual, err := e.store.EnqueueManual(context.Background(), "site")
	if err != nil {
		t.Fatal(err)
	}
	if manual.ID != queued.DeployID || manual.Trigger != store.TriggerManual {
		t.Fatalf("the manual deploy %d (%s) did not take over the queued push %d", manual.ID, manual.Trigger, queued.DeployID)
	}
	if !e.m.workers["site"].runOnce() {
		t.Fatal("nothing queued")
	}
	dp := e.deploy(t, manual.ID)
	if dp.Status == store.DeploySkipped || dp.ToCommit != bad || testkit.CheckoutHead(t, e.checkout) != bad {
		t.Fatalf("the manual deploy: %s to %s %q, want the bad head %s deployed", dp.Status, short(dp.ToCommit), dp.Error, short(bad))
	}
}

// TestVerifyRefusedWhileADeployRuns: a check on demand asked while a deploy is verifying
// in the checkout answers ErrDeployRunning naming the deploy, records no probe, and once
// the deploy ended it runs.
func TestVerifyRefusedWhileADeployRuns(t *testing.T) {
	e := newHealthEnv(t, Health{})
	e.origin.Commit(map[string]string{"health.txt": "ok\n"}, "healthy")
	var verr error
	var once sync.Once
	e.mu.Lock()
	e.onProbe = func() { // the deploy's own probe: the deploy is verifying
		once.Do(func() { _, _, verr = e.m.Verify(context.Background(), "site") })
	}
	e.mu.Unlock()
	dp := e.step(t, "g1")
	if dp.Status != store.DeploySucceeded {
		t.Fatalf("deploy: %s %q", dp.Status, dp.Error)
	}
	if !errors.Is(verr, ErrDeployRunning) || !strings.Contains(verr.Error(), "deploy "+strconv.FormatInt(dp.ID, 10)+" ") {
		t.Fatalf("verify during the deploy's check: %v, want ErrDeployRunning naming deploy %d", verr, dp.ID)
	}
	if n := len(e.probes(t, dp.ID)); n != 1 {
		t.Fatalf("the deploy has %d probes, want its own 1", n)
	}
	// A deploy queued while the check on demand probes waits for it.
	var ranDuring bool
	e.mu.Lock()
	e.onProbe = func() {
		e.queue(t, "site", "g2")
		ranDuring = e.m.workers["site"].runOnce()
	}
	e.mu.Unlock()
	healthy, probes, err := e.m.Verify(context.Background(), "site")
	if err != nil || !healthy || len(probes) != 1 {
		t.Fatalf("verify after the deploy: %v %d probes, %v", healthy, len(probes), err)
	}
	e.mu.Lock()
	e.onProbe = nil
	e.mu.Unlock()
	if ranDuring {
		t.Fatal("a deploy ran while a check on demand probed the checkout")
	}
	if !e.m.workers["site"].runOnce() {
		t.Fatal("the deploy queued during the check did not run after it")
	}
}

// TestInterruptedAutoRollbackFinishesAfterARestart: an automatic rollback cut off (here
// ended interrupted, as a shutdown does) is queued again as the rollback, so the worker
// finishes it at the good commit instead of finding the bad head and ending skipped.
func TestInterruptedAutoRollbackFinishesAfterARestart(t *testing.T) {
	e := newHealthEnv(t, Health{})
	good := e.origin.Commit(map[string]string{"health.txt": "ok\n"}, "healthy")
	e.step(t, "g1")
	e.origin.Commit(map[string]string{"health.txt": "broken\n"}, "broken")
	failed := e.step(t, "g2")
	ctx := context.Background()
	rb, err := e.store.ClaimDeploy(ctx, "site") // the rollback starts, and the gateway stops
	if err != nil || rb.Trigger != store.TriggerAutoRollback {
		t.Fatalf("the automatic rollback: %+v %v", rb, err)
	}
	if err := e.store.FinishDeploy(ctx, rb.ID, store.Result{Status: store.DeployInterrupted, Error: "shut down"}); err != nil {
		t.Fatal(err)
	}
	if !e.m.workers["site"].runOnce() {
		t.Fatal("nothing queued after the interrupted rollback")
	}
	list, _ := e.store.ListDeploys(ctx, store.DeployFilter{Repo: "site", Page: store.Page{Limit: 1}})
	if dp := list[0]; dp.Status != store.DeploySucceeded || dp.ToCommit != good || dp.Trigger != store.TriggerAutoRollback ||
		dp.RollbackOf != failed.ID || testkit.CheckoutHead(t, e.checkout) != good {
		t.Fatalf("the rollback's recovery: %s %s to %s %q, want auto_rollback succeeded at %s", dp.Trigger, dp.Status, short(dp.ToCommit), dp.Error, short(good))
	}
}
