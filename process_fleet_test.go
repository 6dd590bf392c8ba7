package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/internal/testkit"
)

const (
	fleetToken  = "fleet-admin-token-7c1e0b9d55aa4f02"
	fleetSecret = "fleet-hook-secret-3b8d61f0"
	// fleetDeliveries is the burst: the first is a push to docs, the others pushes to site.
	fleetDeliveries = 300
	fleetClients    = 8
	// fleetGateEvery spaces the gates the burst waits at; web2 is killed after the gate
	// at fleetKillAt opened and restarted before the one at fleetRestartAt opens.
	fleetGateEvery = 20
	fleetKillAt    = 120
	fleetRestartAt = 180
)

// fleetNode is one gateway of the fleet: its own folder (config, checkouts), port and name.
type fleetNode struct {
	name, dir, cfg, addr string
	proc                 *gatewayProc
}

// fleetCommand is every node's deploy command for both repositories (the same text in
// every node's config). It appends "node repo deploy start|end time" to the runs file,
// naming the node after the folder its checkout is in, and takes a little time; while a
// file hold-REPO lies beside the checkout it keeps running, which is how the test holds
// one node's deploy in its command until it has killed that node.
const fleetCommand = `n=$(basename "$(dirname "$(pwd -P)")"); ` +
	`echo "$n $HOOKGATE_REPO $HOOKGATE_DEPLOY start $(date +%%s.%%N)" >> %s; ` +
	`sleep 0.2; while [ -f ../hold-$HOOKGATE_REPO ]; do sleep 0.02; done; ` +
	`echo "$n $HOOKGATE_REPO $HOOKGATE_DEPLOY end $(date +%%s.%%N)" >> %s`

// startFleetNode runs `hookgate serve` for n and waits until /healthz answers, failing at
// once with the node's output if the process ends first (a refused start).
func startFleetNode(t *testing.T, bin string, n *fleetNode, env ...string) {
	t.Helper()
	g := &gatewayProc{logs: &syncBuffer{}, exited: make(chan error, 1), addr: n.addr}
	g.cmd = exec.Command(bin, "serve", "--config", n.cfg)
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	g.cmd.Env = append(os.Environ(), env...)
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.exited <- g.cmd.Wait() }()
	t.Cleanup(func() {
		g.cmd.Process.Kill()
		err := <-g.exited
		g.exited <- err
	})
	n.proc = g
	t.Cleanup(func() {
		if t.Failed() {
			logs := g.logs.String()
			if len(logs) > 4000 {
				logs = "…" + logs[len(logs)-4000:]
			}
			t.Logf("%s's output (pid %d):\n%s", n.name, g.cmd.Process.Pid, logs)
		}
	})
	testkit.Eventually(t, 60*time.Second, n.name+" to answer /healthz", func() bool {
		select {
		case err := <-g.exited:
			g.exited <- err
			t.Fatalf("%s ended before it answered /healthz (%v):\n%s", n.name, err, g.logs.String())
		default:
		}
		resp, err := http.Get("http://" + n.addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// fleetPush is the push payload the clients send until origin moves on.
type fleetPush struct {
	after string
	body  []byte
}

// fleetSent is one delivery of the burst and what became of it.
type fleetSent struct {
	hook, guid, after string
	node              int // index into the nodes it was sent to
	answer            hookAnswer
	err               error // the request got no answer (the node was down or killed)
}

// postDelivery signs body like GitHub and posts it to addr's hook; an error means no
// HTTP answer came back.
func postDelivery(client *http.Client, addr, hook, guid string, body []byte) (hookAnswer, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/hooks/"+hook, bytes.NewReader(body))
	if err != nil {
		return hookAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/fleet-test")
	forge.SetDeliveryHeaders(req.Header, forge.ProviderGitHub, "push", guid, body, []byte(fleetSecret))
	resp, err := client.Do(req)
	if err != nil {
		return hookAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return hookAnswer{}, err
	}
	a := hookAnswer{GUID: guid, HTTPStatus: resp.StatusCode}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, fmt.Errorf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return a, nil
}

// fleetGate holds back every delivery from index at on until the test opens it.
type fleetGate struct {
	at   int
	open chan struct{}
}

// fleetRun is one run of a deploy command, from the runs file.
type fleetRun struct {
	node, repo string
	deploy     int64
	start, end time.Time
}

// readRuns parses the runs file: one fleetRun per (node, repo, deploy); a run whose end
// is not written yet has a zero end. A deploy's command starting twice is an error.
func readRuns(path string) (map[string]*fleetRun, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]*fleetRun{}, nil
	}
	if err != nil {
		return nil, err
	}
	runs := map[string]*fleetRun{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		f := strings.Fields(line)
		if len(f) != 5 {
			return nil, fmt.Errorf("runs file: bad line %q", line)
		}
		id, err1 := strconv.ParseInt(f[2], 10, 64)
		at, err2 := parseUnixNano(f[4])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("runs file: bad line %q", line)
		}
		key := f[0] + " " + f[1] + " " + f[2]
		r := runs[key]
		switch {
		case f[3] == "start" && r == nil:
			runs[key] = &fleetRun{node: f[0], repo: f[1], deploy: id, start: at}
		case f[3] == "end" && r != nil && r.end.IsZero():
			r.end = at
		default:
			return nil, fmt.Errorf("runs file: %q out of order (deploy %s of %s ran twice?)", line, f[2], f[0])
		}
	}
	return runs, nil
}

// parseUnixNano reads `date +%s.%N` exactly (a float64 would round the nanoseconds).
func parseUnixNano(s string) (time.Time, error) {
	sec, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 9 {
		return time.Time{}, fmt.Errorf("bad time %q", s)
	}
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	nanos, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(secs, nanos), nil
}

// fleetDeploy is a deploy as GET /api/v1/deploys shows it.
type fleetDeploy struct {
	ID         int64      `json:"id"`
	Repo       string     `json:"repo"`
	Node       string     `json:"node"`
	Status     string     `json:"status"`
	Trigger    string     `json:"trigger"`
	ToCommit   string     `json:"to_commit"`
	QueuedAt   time.Time  `json:"queued_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Error      string     `json:"error"`
}

// fleetDelivery is a delivery as the API shows it.
type fleetDelivery struct {
	ID         int64  `json:"id"`
	GUID       string `json:"guid"`
	Repo       string `json:"repo"`
	After      string `json:"after"`
	Status     string `json:"status"`
	HTTPStatus int    `json:"http_status"`
	Deploys    []struct {
		Node     string `json:"node"`
		DeployID int64  `json:"deploy_id"`
		Status   string `json:"status"`
	} `json:"deploys"`
}

// fleetGet reads addr's API as the operator; an error instead of failing, for conditions
// polled while a node may be restarting.
func fleetGet(addr, path string, out any) error {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+fleetToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("GET %s: %v", path, err)
	}
	return nil
}

// fleetList walks every page of an API listing (deliveries or deploys) with its cursors.
func fleetList[T any](t *testing.T, addr, path, key string) []T {
	t.Helper()
	var all []T
	cursor := ""
	for {
		q := path + "?limit=500"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		var page map[string]json.RawMessage
		if err := fleetGet(addr, q, &page); err != nil {
			t.Fatal(err)
		}
		var rows []T
		if err := json.Unmarshal(page[key], &rows); err != nil {
			t.Fatalf("GET %s: %s: %v", q, key, err)
		}
		all = append(all, rows...)
		var next *string
		if err := json.Unmarshal(page["next_cursor"], &next); err != nil {
			t.Fatalf("GET %s: next_cursor: %v", q, err)
		}
		if next == nil {
			return all
		}
		cursor = *next
	}
}

// TestFleet runs three real gateways (web1, web2, web3: own ports, own checkouts, one
// PostgreSQL database, the same repository config) against real bare origins, and sends
// them a burst of signed GitHub pushes, round-robin, from 8 concurrent clients, while
// origin moves on. Mid-burst, web2 is killed with SIGKILL while its deploy of docs is in
// its command, and restarted. Then:
//
//   - every delivery answered 2xx is recorded exactly once (counted by GUID over the API),
//     and became one deploy per node: its deploys list names web1, web2 and web3, each a
//     deploy of that node and repository;
//   - every node's checkouts reach origin's final heads, and every node's API shows each
//     node's live commit there;
//   - for each (node, repository) no two deploys' run intervals overlap, both as the
//     database records them and as the commands themselves wrote them; and every command
//     run belongs to a deploy of the node that ran it (no node runs another's deploy);
//   - the deploys queued for web2 while it was down waited for it and ran after its restart;
//   - web2's cut-off deploy is interrupted and re-ran as a recovery deploy that succeeded.
//
// docs receives only the first delivery, so when web2 restarts nothing else stands for
// its docs deploy: only the start-up's re-queue (InterruptRunning) can run it again, and
// it must do so with trigger "recovery". site receives the rest of the burst.
//
// web2's site worker is mid-deploy too when the kill lands, now and then in the middle of
// writing the checkout, which must not keep web2 from catching up (repos/gitlock.go).
//
// A command cut off by SIGKILL lives on in its own process group (see repos/command.go):
// web2's docs command is held running through the restart, which must end it
// (repos.StopLeftovers) before the deploy runs again, or the two would overlap.
func TestFleet(t *testing.T) {
	database := pgtest.Database(t)
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	site, docs := testkit.NewOrigin(t), testkit.NewOrigin(t)
	docsBase := docs.Head()
	docsHead := docs.Commit(map[string]string{"index.md": "docs v1\n"}, "docs v1")
	root := t.TempDir()
	runsPath := filepath.Join(root, "runs.log")
	command := fmt.Sprintf(fleetCommand, runsPath, runsPath)
	repoCfg := ""
	for _, r := range []struct {
		name string
		o    *testkit.Origin
	}{{"site", site}, {"docs", docs}} {
		repoCfg += fmt.Sprintf(`
[repos.%s]
secret = %q
path = %q
url = %q
branch = "main"
commands = [%q]
timeout = "2m"
`, r.name, fleetSecret, r.name, r.o.Bare, command)
	}
	env := []string{"HOOKGATE_FLEET_DATABASE=" + database}
	nodes := make([]*fleetNode, 3)
	for i := range nodes {
		n := &fleetNode{name: fmt.Sprintf("web%d", i+1), addr: freeAddr(t)}
		n.dir = filepath.Join(root, n.name)
		n.cfg = filepath.Join(n.dir, "config.toml")
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := fmt.Sprintf(`
[server]
listen = %q
database_env = "HOOKGATE_FLEET_DATABASE"
node = %q
admin_token = %q
shutdown_timeout = "20s"
`, n.addr, n.name, fleetToken) + repoCfg
		if err := os.WriteFile(n.cfg, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
	}
	web1, web2 := nodes[0], nodes[1]
	// web2's docs deploy stays in its command until the test has killed web2.
	hold := filepath.Join(web2.dir, "hold-docs")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(hold) }) // lets an orphaned command end whatever happens
	for _, n := range nodes {
		startFleetNode(t, bin, n, env...)
	}
	t.Cleanup(func() {
		// On failure, before the nodes stop (cleanups run last first): every deploy that
		// did not succeed, and the last ones of each node and repository.
		if !t.Failed() {
			return
		}
		var page struct {
			Deploys []fleetDeploy `json:"deploys"`
		}
		if err := fleetGet(web1.addr, "/api/v1/deploys?limit=500", &page); err != nil {
			t.Logf("deploys: %v", err)
			return
		}
		last := map[string]int{}
		for _, dp := range page.Deploys {
			if last[dp.Node+dp.Repo]++; dp.Status != "succeeded" || last[dp.Node+dp.Repo] <= 3 {
				t.Logf("deploy %d: %s %s %s, trigger %s, to %s %s", dp.ID, dp.Node, dp.Repo, dp.Status, dp.Trigger, short(dp.ToCommit), dp.Error)
			}
		}
	})

	// The burst. Each client takes the next index; delivery i goes to node i%3 and waits
	// for every gate at or below i, which the test opens as it moves the fleet along.
	var current atomic.Pointer[fleetPush]
	head := site.Head()
	current.Store(&fleetPush{after: head, body: testkit.Push(t, "refs/heads/main", head, head, "acme/site")})
	advance := func(msg string) string {
		prev := current.Load().after
		next := site.Commit(map[string]string{"version.txt": msg + "\n"}, msg)
		current.Store(&fleetPush{after: next, body: testkit.Push(t, "refs/heads/main", prev, next, "acme/site")})
		return next
	}
	docsBody := testkit.Push(t, "refs/heads/main", docsBase, docsHead, "acme/docs")
	// A gate every 20 deliveries; see the steps below.
	var gates []*fleetGate
	for at := fleetGateEvery; at < fleetDeliveries; at += fleetGateEvery {
		gates = append(gates, &fleetGate{at: at, open: make(chan struct{})})
	}
	abort := make(chan struct{})
	t.Cleanup(func() { close(abort) })
	sent := make([]fleetSent, fleetDeliveries)
	var nextIndex, finished atomic.Int64
	client := &http.Client{Timeout: time.Minute}
	var clients sync.WaitGroup
	for range fleetClients {
		clients.Add(1)
		go func() {
			defer clients.Done()
			for {
				i := int(nextIndex.Add(1)) - 1
				if i >= fleetDeliveries {
					return
				}
				for _, g := range gates {
					if i >= g.at {
						select {
						case <-g.open:
						case <-abort:
							return
						}
					}
				}
				s := fleetSent{hook: "site", guid: newGUID(), node: i % len(nodes)}
				body := docsBody
				if i == 0 {
					s.hook, s.after = "docs", docsHead
				} else {
					p := current.Load()
					s.after, body = p.after, p.body
				}
				s.answer, s.err = postDelivery(client, nodes[s.node].addr, s.hook, s.guid, body)
				sent[i] = s
				finished.Add(1)
			}
		}()
	}
	waitFinished := func(n int64) {
		t.Helper()
		testkit.Eventually(t, 2*time.Minute, fmt.Sprintf("%d deliveries to be answered", n), func() bool {
			return finished.Load() >= n
		})
	}

	// claimedAll waits until no node that is up has a deploy of site queued: each has
	// claimed what the deliveries so far queued for it, so the next ones queue behind a
	// deploy that runs, and every node runs many deploys during the burst.
	up := map[string]bool{"web1": true, "web2": true, "web3": true}
	claimedAll := func() {
		t.Helper()
		testkit.Eventually(t, 90*time.Second, "every node that is up to claim its queued deploy of site", func() bool {
			var page struct {
				Deploys []fleetDeploy `json:"deploys"`
			}
			if err := fleetGet(web1.addr, "/api/v1/deploys?repo=site&status=queued", &page); err != nil {
				t.Fatal(err)
			}
			for _, dp := range page.Deploys {
				if up[dp.Node] {
					return false
				}
			}
			return true
		})
	}
	// When web2 was killed, and when its restart began.
	var killedAt, restartedAt time.Time
	// kill cuts web2 off while its docs deploy runs its command (the hold keeps it there).
	var cut fleetDeploy
	kill := func() {
		t.Helper()
		testkit.Eventually(t, 90*time.Second, "web2's docs deploy to be running its command", func() bool {
			var page struct {
				Deploys []fleetDeploy `json:"deploys"`
			}
			if err := fleetGet(web1.addr, "/api/v1/deploys?repo=docs&node=web2", &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Deploys) != 1 {
				t.Fatalf("web2 has %d deploys of docs before it was killed, want the one its hold keeps running: %+v", len(page.Deploys), page.Deploys)
			}
			switch cut = page.Deploys[0]; cut.Status {
			case "queued":
				return false
			case "running":
			default:
				// web2's command cannot end while the hold is there: another node ran it.
				t.Fatalf("web2's docs deploy %d is %s while web2's hold keeps its command running", cut.ID, cut.Status)
			}
			runs, err := readRuns(runsPath)
			if err != nil {
				t.Fatal(err)
			}
			return runs[fmt.Sprintf("web2 docs %d", cut.ID)] != nil
		})
		if err := web2.proc.stop(t, syscall.SIGKILL); err == nil {
			t.Fatal("web2 exited cleanly after SIGKILL?")
		}
		up["web2"], killedAt = false, time.Now()
		answered, inFlight := finished.Load(), min(nextIndex.Load(), fleetDeliveries)-finished.Load()
		var still fleetDeploy
		if err := fleetGet(web1.addr, fmt.Sprintf("/api/v1/deploys/%d", cut.ID), &still); err != nil {
			t.Fatal(err)
		}
		if still.Status != "running" || still.Node != "web2" {
			t.Fatalf("the deploy web2 was killed in is %s on %q, want running on web2", still.Status, still.Node)
		}
		t.Logf("web2 killed with SIGKILL in docs deploy %d; %d deliveries answered, %d in flight or waiting at a gate",
			cut.ID, answered, inFlight)
		// The hold stays: web2's docs command keeps running, its gateway gone.
		if ids := deployProcesses(cut.ID); len(ids) == 0 {
			t.Fatalf("no process of web2's cut-off docs deploy %d outlived web2", cut.ID)
		}
	}
	// restart brings web2 back while its cut-off docs command still runs: the start must
	// end it before anything of web2 runs again.
	restart := func() {
		t.Helper()
		restartedAt = time.Now()
		startFleetNode(t, bin, web2, env...)
		up["web2"] = true
		if pids := deployProcesses(cut.ID); len(pids) != 0 {
			t.Fatalf("web2 restarted with the command of its cut-off docs deploy %d still running (pids %v)", cut.ID, pids)
		}
		// The recovery may run now.
		if err := os.Remove(hold); err != nil {
			t.Fatal(err)
		}
		// web2 marks what the crash cut off before it listens, so before /healthz answers.
		var still fleetDeploy
		if err := fleetGet(web1.addr, fmt.Sprintf("/api/v1/deploys/%d", cut.ID), &still); err != nil {
			t.Fatal(err)
		}
		if still.Status != "interrupted" {
			t.Fatalf("after web2's restart its cut-off deploy %d is %s, want interrupted", cut.ID, still.Status)
		}
	}

	// The steps, one per gate: everything before the gate is answered; origin moves on at
	// every other gate; web2 comes back at fleetRestartAt; every node that is up claims
	// its queued deploy; the gate opens. web2 is killed just after fleetKillAt opened, with
	// deliveries in flight; the deliveries up to fleetRestartAt reach a fleet without it.
	var final string
	for _, g := range gates {
		waitFinished(int64(g.at))
		if g.at == fleetRestartAt {
			restart()
		}
		if g.at%(2*fleetGateEvery) == 0 {
			final = advance(fmt.Sprintf("v%d", g.at))
		}
		claimedAll()
		close(g.open)
		if g.at == fleetKillAt {
			kill()
		}
	}
	waitFinished(fleetDeliveries)
	clients.Wait()

	// Every node converges on origin's final heads.
	for _, n := range nodes {
		for repo, want := range map[string]string{"site": final, "docs": docsHead} {
			dir := filepath.Join(n.dir, repo)
			testkit.Eventually(t, 2*time.Minute, fmt.Sprintf("%s's %s checkout to reach %s", n.name, repo, short(want)), func() bool {
				out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
				return err == nil && strings.TrimSpace(string(out)) == want
			})
		}
	}
	testkit.Eventually(t, 2*time.Minute, "no deploy queued or running on any node", func() bool {
		for _, status := range []string{"queued", "running"} {
			var page struct {
				Deploys []fleetDeploy `json:"deploys"`
			}
			if err := fleetGet(web1.addr, "/api/v1/deploys?status="+status, &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Deploys) > 0 {
				return false
			}
		}
		return true
	})

	// What an operator sees, asking any node: each node's live commit, nothing pending.
	for _, asked := range nodes {
		for repo, want := range map[string]string{"site": final, "docs": docsHead} {
			var r struct {
				Nodes []struct {
					Node            string `json:"node"`
					LiveCommit      string `json:"live_commit"`
					RunningDeployID *int64 `json:"running_deploy_id"`
					QueuedDeployID  *int64 `json:"queued_deploy_id"`
				} `json:"nodes"`
			}
			if err := fleetGet(asked.addr, "/api/v1/repos/"+repo, &r); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range r.Nodes {
				got = append(got, n.Node)
				if n.LiveCommit != want || n.RunningDeployID != nil || n.QueuedDeployID != nil {
					t.Errorf("%s says %s on %s is live at %s (running %v, queued %v), want %s and nothing pending",
						asked.name, repo, n.Node, short(n.LiveCommit), n.RunningDeployID, n.QueuedDeployID, short(want))
				}
			}
			if !slices.Equal(got, []string{"web1", "web2", "web3"}) {
				t.Errorf("%s lists %s's nodes as %v, want web1, web2, web3", asked.name, repo, got)
			}
		}
	}

	// What the clients saw: every HTTP answer is 202; only web2, while it was down or being
	// killed (the deliveries from fleetKillAt to fleetRestartAt), left requests unanswered.
	answered := map[string]fleetSent{}
	refused := 0
	for i, s := range sent {
		switch {
		case s.err != nil && s.node == 1 && i >= fleetKillAt && i < fleetRestartAt:
			refused++
		case s.err != nil:
			t.Errorf("delivery %d to %s got no answer: %v", i, nodes[s.node].name, s.err)
		case s.answer.HTTPStatus != http.StatusAccepted || s.answer.Status != "accepted":
			t.Errorf("delivery %d to %s answered %d %q, want 202 accepted", i, nodes[s.node].name, s.answer.HTTPStatus, s.answer.Status)
		default:
			answered[s.guid] = s
		}
	}
	if refused == 0 {
		t.Error("no delivery was sent to web2 while it was down; the test did not test that")
	}
	t.Logf("%d deliveries answered 202, %d sent to web2 while it was down or being killed", len(answered), refused)

	// Recorded exactly once, by GUID, as answered; each became one deploy per node.
	deploys := fleetList[fleetDeploy](t, web1.addr, "/api/v1/deploys", "deploys")
	byID := map[int64]fleetDeploy{}
	for _, dp := range deploys {
		byID[dp.ID] = dp
	}
	deliveries := fleetList[fleetDelivery](t, web1.addr, "/api/v1/deliveries", "deliveries")
	count := map[string]int{}
	for _, d := range deliveries {
		count[d.GUID]++
	}
	sentGUIDs := map[string]bool{}
	for _, s := range sent {
		sentGUIDs[s.guid] = true
	}
	for guid, n := range count {
		if !sentGUIDs[guid] {
			t.Errorf("delivery %s is recorded but was never sent", guid)
		} else if n > 1 {
			t.Errorf("delivery %s is recorded %d times", guid, n)
		}
	}
	for guid, s := range answered {
		if count[guid] != 1 {
			t.Errorf("delivery %s was answered 202 by %s but is recorded %d times", guid, nodes[s.node].name, count[guid])
			continue
		}
		var d fleetDelivery
		if err := fleetGet(web1.addr, fmt.Sprintf("/api/v1/deliveries/%d", s.answer.DeliveryID), &d); err != nil {
			t.Fatal(err)
		}
		if d.GUID != guid || d.Repo != s.hook || d.After != s.after || d.Status != "accepted" || d.HTTPStatus != http.StatusAccepted {
			t.Errorf("delivery %d answered as %s %s to %s is recorded as %s %s %s to %s (%d)",
				s.answer.DeliveryID, guid, s.hook, short(s.after), d.GUID, d.Repo, d.Status, short(d.After), d.HTTPStatus)
		}
		var got []string
		for _, ref := range d.Deploys {
			got = append(got, ref.Node)
			if dp, ok := byID[ref.DeployID]; !ok || dp.Node != ref.Node || dp.Repo != s.hook {
				t.Errorf("delivery %d names deploy %d on %s, which is %s's deploy of %s", d.ID, ref.DeployID, ref.Node, dp.Node, dp.Repo)
			}
		}
		if !slices.Equal(got, []string{"web1", "web2", "web3"}) {
			t.Errorf("delivery %d (%s) joined deploys on %v, want one on each of web1, web2, web3", d.ID, guid, got)
		}
	}

	// Run intervals per (node, repository): the database's and the commands' own.
	runs, err := readRuns(runsPath)
	if err != nil {
		t.Fatal(err)
	}
	type nodeRepo struct{ node, repo string }
	dbRuns := map[nodeRepo][]fleetRun{}
	for _, dp := range deploys {
		if dp.StartedAt == nil || dp.FinishedAt == nil {
			t.Errorf("deploy %d of %s on %s is %s without a start and end", dp.ID, dp.Repo, dp.Node, dp.Status)
			continue
		}
		k := nodeRepo{dp.Node, dp.Repo}
		dbRuns[k] = append(dbRuns[k], fleetRun{node: dp.Node, repo: dp.Repo, deploy: dp.ID, start: *dp.StartedAt, end: *dp.FinishedAt})
		if dp.Status != "succeeded" && !(dp.Status == "interrupted" && dp.Node == "web2") {
			t.Errorf("deploy %d of %s on %s ended %s: %s", dp.ID, dp.Repo, dp.Node, dp.Status, dp.Error)
		}
		r := runs[fmt.Sprintf("%s %s %d", dp.Node, dp.Repo, dp.ID)]
		switch {
		case r == nil && dp.Status == "succeeded":
			t.Errorf("deploy %d of %s on %s succeeded but its command never ran there", dp.ID, dp.Repo, dp.Node)
		case r != nil && (r.start.Before(*dp.StartedAt) || r.end.After(*dp.FinishedAt)):
			t.Errorf("deploy %d of %s on %s: its command ran %s–%s, outside the deploy's %s–%s", dp.ID, dp.Repo, dp.Node,
				r.start.Format(time.StampMicro), r.end.Format(time.StampMicro),
				dp.StartedAt.Format(time.StampMicro), dp.FinishedAt.Format(time.StampMicro))
		}
	}
	cmdRuns := map[nodeRepo][]fleetRun{}
	for _, r := range runs {
		dp, ok := byID[r.deploy]
		if !ok || dp.Node != r.node || dp.Repo != r.repo {
			t.Errorf("%s ran the command of deploy %d, which is %s's deploy of %s", r.node, r.deploy, dp.Node, dp.Repo)
		}
		if r.end.IsZero() {
			if r.node != "web2" || dp.Status != "interrupted" || dp.FinishedAt == nil {
				t.Errorf("the command of deploy %d on %s never ended", r.deploy, r.node)
				continue
			}
			// Ended by web2's restart (its process checked gone above), which then
			// recorded the deploy interrupted: no later than that.
			r.end = *dp.FinishedAt
		}
		k := nodeRepo{r.node, r.repo}
		cmdRuns[k] = append(cmdRuns[k], *r)
	}
	for what, m := range map[string]map[nodeRepo][]fleetRun{"deploys": dbRuns, "commands": cmdRuns} {
		for k, rs := range m {
			sort.Slice(rs, func(i, j int) bool { return rs[i].start.Before(rs[j].start) })
			for i := 1; i < len(rs); i++ {
				if rs[i].start.Before(rs[i-1].end) {
					t.Errorf("%s of %s on %s overlap: %d ran %s–%s, %d started %s", what, k.repo, k.node,
						rs[i-1].deploy, rs[i-1].start.Format(time.StampMicro), rs[i-1].end.Format(time.StampMicro),
						rs[i].deploy, rs[i].start.Format(time.StampMicro))
				}
			}
		}
	}
	for _, n := range nodes {
		for _, repo := range []string{"site", "docs"} {
			k := nodeRepo{n.name, repo}
			if len(dbRuns[k]) == 0 || len(cmdRuns[k]) == 0 {
				t.Errorf("%s never deployed %s", n.name, repo)
			}
		}
		t.Logf("%s: %d deploys of site, %d of docs", n.name, len(dbRuns[nodeRepo{n.name, "site"}]), len(dbRuns[nodeRepo{n.name, "docs"}]))
	}

	// The deploys queued for web2 and not started when it was killed, or queued while it
	// was down, waited for it. (Deliveries during the down window create one, or join
	// one queued just before the kill.)
	waited := 0
	for _, dp := range deploys {
		if dp.Node != "web2" || !dp.QueuedAt.Before(restartedAt) || dp.StartedAt != nil && dp.StartedAt.Before(killedAt) {
			continue
		}
		waited++
		if dp.StartedAt == nil || dp.StartedAt.Before(restartedAt) || dp.Status != "succeeded" {
			t.Errorf("web2's deploy %d of %s, queued while web2 was down, is %s, started %v (web2 restarted %s)",
				dp.ID, dp.Repo, dp.Status, dp.StartedAt, restartedAt.Format(time.StampMicro))
		}
	}
	if waited == 0 {
		t.Error("no deploy was queued for web2 while it was down")
	}
	t.Logf("%d deploys of web2 waited for its restart", waited)

	// web2's cut-off deploy re-ran: nothing but the re-queue at its start stood for docs.
	var recovered bool
	for _, dp := range deploys {
		if dp.Status == "interrupted" {
			t.Logf("interrupted: %s's deploy %d of %s (%s)", dp.Node, dp.ID, dp.Repo, dp.Trigger)
		}
		if dp.Node == "web2" && dp.Repo == "docs" && dp.ID != cut.ID && dp.StartedAt != nil &&
			!dp.StartedAt.Before(*byID[cut.ID].FinishedAt) && dp.Trigger == "recovery" &&
			dp.Status == "succeeded" && dp.ToCommit == docsHead {
			recovered = true
		}
	}
	if byID[cut.ID].Status != "interrupted" || !recovered {
		for _, dp := range deploys {
			if dp.Node == "web2" && dp.Repo == "docs" {
				t.Logf("web2's docs deploy %d: %s, trigger %s, to %s", dp.ID, dp.Status, dp.Trigger, short(dp.ToCommit))
			}
		}
		t.Fatalf("web2's cut-off docs deploy %d is %s and no later recovery deploy of web2 succeeded", cut.ID, byID[cut.ID].Status)
	}

	var fleet struct {
		Nodes []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
		} `json:"nodes"`
	}
	if err := fleetGet(web1.addr, "/api/v1/nodes", &fleet); err != nil {
		t.Fatal(err)
	}
	var upAtEnd []string
	for _, n := range fleet.Nodes {
		if n.Status == "up" {
			upAtEnd = append(upAtEnd, n.Name)
		}
	}
	slices.Sort(upAtEnd)
	if !slices.Equal(upAtEnd, []string{"web1", "web2", "web3"}) {
		t.Errorf("nodes up at the end: %v, want web1, web2, web3 (%+v)", upAtEnd, fleet.Nodes)
	}
	if t.Failed() {
		return // the nodes stay up for the failure's listing of deploys
	}
	for _, n := range nodes {
		if err := n.proc.stop(t, syscall.SIGTERM); err != nil {
			t.Errorf("%s exited with %v after SIGTERM\n%s", n.name, err, n.proc.logs.String())
		}
		if logs := n.proc.logs.String(); strings.Contains(logs, fleetSecret) || strings.Contains(logs, fleetToken) {
			t.Errorf("a secret appears in %s's log", n.name)
		}
	}
}

// deployProcesses lists the processes on this host whose environment names deploy id in
// HOOKGATE_DEPLOY (a deploy command and what it started).
func deployProcesses(id int64) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte(fmt.Sprintf("HOOKGATE_DEPLOY=%d", id))
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, want) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
