package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/repos"
	gitcheckout "github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// loadGateway is the real gateway in one process, like newGateway, for any number of
// repositories with their own deploy commands.
type loadGateway struct {
	store *store.Store
	url   string
}

func newLoadGateway(t *testing.T, workers int, list []repos.Repo) *loadGateway {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hookgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var hooks []server.Hook
	for i := range list {
		list[i].Branch, list[i].Timeout = "main", time.Minute
		hooks = append(hooks, server.Hook{Name: list[i].Name, Secret: []byte(secret), Branch: "main", Path: list[i].Path})
	}
	mgr := repos.NewManager(st, list, repos.Options{
		Workers: workers,
		Env:     []string{"PATH=" + os.Getenv("PATH")},
		Logger:  logger,
	})
	st.OnQueued(mgr.Wake) // as gateway.New wires it
	srv, err := server.New(server.Options{Hooks: hooks, MaxBody: maxBody, Logger: logger}, st, mgr)
	if err != nil {
		t.Fatal(err)
	}
	mgr.Start()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		mgr.Stop(10 * time.Second)
		st.Close()
	})
	return &loadGateway{store: st, url: ts.URL}
}

// signedPush is one signed push to send.
type signedPush struct {
	repo, guid string
	body       []byte
}

// answer is what the gateway said to one push.
type answer struct {
	status     int
	deliveryID int64
	deployID   int64
}

// fire sends the pushes from clients concurrent HTTP clients; after is called once with
// the number of answers so far each time one arrives.
func (g *loadGateway) fire(t *testing.T, clients int, pushes []signedPush, after func(answered int64)) []answer {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	answers := make([]answer, len(pushes))
	jobs := make(chan int)
	var answered atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := range jobs {
				p := pushes[i]
				req, err := http.NewRequest(http.MethodPost, g.url+"/hooks/"+p.repo, bytes.NewReader(p.body))
				if err != nil {
					t.Error(err)
					continue
				}
				req.Header.Set("Content-Type", "application/json")
				forge.SetDeliveryHeaders(req.Header, forge.ProviderGitHub, "push", p.guid, p.body, []byte(secret))
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("push %d: %v", i, err)
					continue
				}
				var out struct {
					DeliveryID int64 `json:"delivery_id"`
					DeployID   int64 `json:"deploy_id"`
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				json.Unmarshal(raw, &out)
				answers[i] = answer{status: resp.StatusCode, deliveryID: out.DeliveryID, deployID: out.DeployID}
				if after != nil {
					after(answered.Add(1))
				}
			}
		})
	}
	for i := range pushes {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return answers
}

// drained waits until no deploy is queued or running.
func (g *loadGateway) drained(t *testing.T) {
	t.Helper()
	testkit.Eventually(t, 60*time.Second, "every deploy to finish", func() bool {
		for _, status := range []string{store.DeployQueued, store.DeployRunning} {
			dps, err := g.store.ListDeploys(context.Background(), store.DeployFilter{Status: status, Page: store.Page{Limit: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if len(dps) > 0 {
				return false
			}
		}
		return true
	})
}

// exclusive wraps a deploy command so that a second copy starting while one runs in the
// same checkout fails with OVERLAP (mkdir is atomic) and leaves a mark in overlaps.
func exclusive(lock, overlaps, command string) string {
	return fmt.Sprintf(`mkdir %[1]s 2>/dev/null || { echo OVERLAP; echo $HOOKGATE_DEPLOY >> %[2]s; exit 99; }; %[3]s; rmdir %[1]s`,
		lock, overlaps, command)
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(raw))
}

// TestBurstOfPushesDeploysOneAtATimeCoalesced fires 200 signed pushes at one repository
// from 16 concurrent clients while its deploy runs: each is answered 2xx and recorded, the
// deploy commands never overlap, the burst coalesces into a handful of deploys, and the
// checkout ends at origin's newest commit.
func TestBurstOfPushesDeploysOneAtATimeCoalesced(t *testing.T) {
	const sent, clients, commits = 200, 16, 10
	origin := testkit.NewOrigin(t)
	checkout := origin.Clone()
	dir := t.TempDir()
	runs, overlaps, release := filepath.Join(dir, "runs"), filepath.Join(dir, "overlaps"), filepath.Join(dir, "RELEASE")
	g := newLoadGateway(t, 2, []repos.Repo{{
		Spec: gitcheckout.Spec{Name: "site", Path: checkout},
		// Each deploy notes itself, then holds the checkout until the test releases it.
		Commands: []string{exclusive(filepath.Join(dir, "lock"), overlaps, fmt.Sprintf(
			`echo $HOOKGATE_DEPLOY >> %s; while [ ! -f %s ]; do sleep 0.05; done; sleep 0.2`, runs, release))},
	}})
	// Whatever happens, let a waiting deploy command end before the gateway stops.
	t.Cleanup(func() { os.WriteFile(release, nil, 0o644) })

	base := testkit.CheckoutHead(t, checkout)
	first := origin.Commit(map[string]string{"v.txt": "0\n"}, "v0")
	var ps []signedPush
	ps = append(ps, signedPush{repo: "site", guid: "load-first", body: testkit.Push(t, "refs/heads/main", base, first, "")})
	a := g.fire(t, 1, ps, nil)[0]
	if a.status != http.StatusAccepted {
		t.Fatalf("first push answered %d", a.status)
	}
	testkit.Eventually(t, 30*time.Second, "the first deploy to run", func() bool { return len(lines(t, runs)) == 1 })

	// Ten newer commits on origin, named by the burst's pushes; the first deploy is released
	// half way through the burst, so later pushes arrive while the next deploy runs.
	hashes := []string{first}
	for i := range commits {
		hashes = append(hashes, origin.Commit(map[string]string{"v.txt": fmt.Sprintf("%d\n", i+1)}, fmt.Sprintf("v%d", i+1)))
	}
	newest := hashes[len(hashes)-1]
	ps = ps[:0]
	for i := range sent {
		c := 1 + i%commits
		ps = append(ps, signedPush{repo: "site", guid: fmt.Sprintf("load-%03d", i),
			body: testkit.Push(t, "refs/heads/main", hashes[c-1], hashes[c], "")})
	}
	start := time.Now()
	answers := g.fire(t, clients, ps, func(n int64) {
		if n == sent/2 {
			if err := os.WriteFile(release, nil, 0o644); err != nil {
				t.Error(err)
			}
		}
	})
	elapsed := time.Since(start)
	g.drained(t)

	ok2xx := 0
	sentIDs := map[int64]bool{}
	for i, a := range answers {
		if a.status/100 == 2 && a.deliveryID != 0 {
			ok2xx++
			sentIDs[a.deliveryID] = true
		} else {
			t.Errorf("push %d answered %d (delivery %d)", i, a.status, a.deliveryID)
		}
	}
	ctx := context.Background()
	rows, err := g.store.ListDeliveries(ctx, store.DeliveryFilter{Repo: "site", Page: store.Page{Limit: store.MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	recorded := 0
	for _, d := range rows {
		if sentIDs[d.ID] && d.Status == store.DeliveryAccepted && d.DeployID != 0 {
			recorded++
		}
	}
	dps, err := g.store.ListDeploys(ctx, store.DeployFilter{Repo: "site", Page: store.Page{Limit: store.MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	failures, overlapLogs := 0, 0
	for _, dp := range dps {
		full, err := g.store.Deploy(ctx, dp.ID)
		if err != nil {
			t.Fatal(err)
		}
		if full.Status != store.DeploySucceeded {
			failures++
			t.Errorf("deploy %d %s: %s", dp.ID, full.Status, full.Error)
		}
		if strings.Contains(full.Log, "\nOVERLAP\n") {
			overlapLogs++
		}
	}
	overlapsSeen := len(lines(t, overlaps))
	deploysRun := len(lines(t, runs))
	head := testkit.CheckoutHead(t, checkout)
	t.Logf("one repository, %d clients: deliveries sent %d (+1 to start the deploy), answered 2xx %d in %s, recorded %d, deploys %d (commands run %d), overlaps %d (in logs %d), failures %d, checkout at newest: %v",
		clients, sent, ok2xx, elapsed.Round(time.Millisecond), recorded, len(dps), deploysRun, overlapsSeen, overlapLogs, failures, head == newest)

	if ok2xx != sent || recorded != sent {
		t.Errorf("%d of %d pushes answered 2xx, %d recorded as accepted", ok2xx, sent, recorded)
	}
	if overlapsSeen != 0 || overlapLogs != 0 || failures != 0 {
		t.Errorf("deploy commands overlapped %d times (%d in logs); %d deploys failed", overlapsSeen, overlapLogs, failures)
	}
	if len(dps) > 5 || deploysRun != len(dps) {
		t.Errorf("%d deploys for one burst (commands ran %d times), want at most 5", len(dps), deploysRun)
	}
	if head != newest {
		t.Errorf("checkout at %s, want origin's newest %s", head, newest)
	}
}

// TestPushesToManyRepositoriesDeployInParallelWithinWorkers spreads 200 pushes over 20
// repositories with 4 workers: every repository deploys to origin's newest commit, each one
// deploy at a time, and the number of deploy commands running at once goes above one but
// never above the 4 workers.
func TestPushesToManyRepositoriesDeployInParallelWithinWorkers(t *testing.T) {
	const sent, clients, nrepos, workers = 200, 16, 20, 4
	origin := testkit.NewOrigin(t)
	dir := t.TempDir()
	overlaps, peaks := filepath.Join(dir, "overlaps"), filepath.Join(dir, "peaks")
	marks := filepath.Join(dir, "running")
	if err := os.Mkdir(marks, 0o755); err != nil {
		t.Fatal(err)
	}
	var list []repos.Repo
	checkouts := map[string]string{}
	for i := range nrepos {
		name := fmt.Sprintf("r%02d", i)
		checkouts[name] = origin.Clone()
		list = append(list, repos.Repo{
			Spec: gitcheckout.Spec{Name: name, Path: checkouts[name]},
			// One marker file per running command; the count seen at each start is a peak.
			Commands: []string{exclusive(filepath.Join(dir, "lock-"+name), overlaps, fmt.Sprintf(
				`touch %[1]s/%[2]s; ls %[1]s | wc -l >> %[3]s; sleep 0.2; rm %[1]s/%[2]s`, marks, name, peaks))},
		})
	}
	base := origin.Head()
	newest := origin.Commit(map[string]string{"v.txt": "new\n"}, "new")
	g := newLoadGateway(t, workers, list)

	var ps []signedPush
	for i := range sent {
		name := fmt.Sprintf("r%02d", i%nrepos)
		ps = append(ps, signedPush{repo: name, guid: fmt.Sprintf("spread-%03d", i), body: testkit.Push(t, "refs/heads/main", base, newest, "")})
	}
	start := time.Now()
	answers := g.fire(t, clients, ps, nil)
	elapsed := time.Since(start)
	g.drained(t)

	ok2xx := 0
	for i, a := range answers {
		if a.status/100 == 2 && a.deliveryID != 0 {
			ok2xx++
		} else {
			t.Errorf("push %d answered %d", i, a.status)
		}
	}
	ctx := context.Background()
	rows, err := g.store.ListDeliveries(ctx, store.DeliveryFilter{Status: store.DeliveryAccepted, Page: store.Page{Limit: store.MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	dps, err := g.store.ListDeploys(ctx, store.DeployFilter{Page: store.Page{Limit: store.MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	perRepo := map[string]int{}
	failures := 0
	for _, dp := range dps {
		if dp.Status != store.DeploySucceeded {
			failures++
			t.Errorf("deploy %d of %s %s: %s", dp.ID, dp.Repo, dp.Status, dp.Error)
			continue
		}
		perRepo[dp.Repo]++
	}
	peak := 0
	for _, f := range lines(t, peaks) {
		n, _ := strconv.Atoi(f)
		peak = max(peak, n)
	}
	overlapsSeen := len(lines(t, overlaps))
	t.Logf("%d repositories, %d workers, %d clients: deliveries sent %d, answered 2xx %d in %s, recorded %d, deploys %d, failures %d, overlaps %d, peak concurrent deploy commands %d",
		nrepos, workers, clients, sent, ok2xx, elapsed.Round(time.Millisecond), len(rows), len(dps), failures, overlapsSeen, peak)

	if ok2xx != sent || len(rows) != sent {
		t.Errorf("%d of %d pushes answered 2xx, %d recorded as accepted", ok2xx, sent, len(rows))
	}
	for name, checkout := range checkouts {
		if perRepo[name] == 0 {
			t.Errorf("repository %s never deployed", name)
		}
		if head := testkit.CheckoutHead(t, checkout); head != newest {
			t.Errorf("%s checkout at %s, want %s", name, head, newest)
		}
	}
	if overlapsSeen != 0 {
		t.Errorf("deploy commands of one repository overlapped %d times", overlapsSeen)
	}
	if peak <= 1 || peak > workers {
		t.Errorf("peak concurrent deploy commands %d, want more than 1 and at most %d", peak, workers)
	}
}
