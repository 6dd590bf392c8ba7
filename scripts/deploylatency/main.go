// Command deploylatency measures how long hookgate takes from answering a push with 202 to
// the checkout standing at the pushed commit, against `git pull --ff-only` of the same
// change on an equivalent checkout, in the same run; then how many deploys a burst of
// pushes makes.
//
// It builds an origin with about 4,000 commits over 2,000 files (git fast-import), clones
// it twice, starts the real hookgate binary with a temporary config deploying one clone,
// and for each round pushes one new commit to origin (two files changed, one added), then,
// in alternating order, times `git pull --ff-only` in the other clone and sends hookgate a
// signed push delivery, timing from the 202 to the moment the checkout's branch ref names
// the new commit (go-git moves the ref last, after the work tree is written), and to the
// moment the deploy is recorded as succeeded.
//
// The coalescing part pushes one more commit and sends 200 signed pushes of it within one
// second, then counts the deploys they joined and how those ended.
//
//	go run ./scripts/deploylatency                 # 5 rounds, 3 bursts
//	go run ./scripts/deploylatency -rounds 9 -bursts 5
//	go run ./scripts/deploylatency -bin /path/to/other/hookgate   # measure another build
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/hookgate/hookgate/repos/repotest"
	"github.com/hookgate/hookgate/scripts/internal/harness"
)

const (
	secret   = "deploylatency-secret-5d1e"
	spacing  = 1200 * time.Millisecond // more than hookgate's minimum time between two deploys' starts
	burstLen = 200
)

func main() {
	rounds := flag.Int("rounds", 5, "measured rounds (one new commit each)")
	bursts := flag.Int("bursts", 3, "bursts of 200 pushes in one second")
	keep := flag.Bool("keep", false, "keep the temporary folder")
	bin := flag.String("bin", "", "a hookgate binary to measure instead of building this tree")
	flag.Parse()
	if err := run(*rounds, *bursts, *keep, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "deploylatency:", err)
		os.Exit(1)
	}
}

type env struct {
	ctx                    context.Context
	root, tmp              string
	origin, seed, hg, pull string
	pushes                 int
	hook                   string // http://ADDR/hooks/site
	api                    string // http://ADDR/api/v1
}

func run(rounds, bursts int, keep bool, bin string) error {
	e := &env{ctx: context.Background()}
	var err error
	if e.root, err = harness.ModuleRoot(); err != nil {
		return err
	}
	var done func()
	if e.tmp, done, err = harness.Workdir("deploylatency", keep); err != nil {
		return err
	}
	defer done()
	if bin == "" {
		fmt.Println("building hookgate …")
		if bin, err = harness.Build(e.root, e.tmp); err != nil {
			return err
		}
	}
	fmt.Printf("building an origin with %d commits over %d files …\n", repotest.Commits, repotest.Files)
	if err := e.makeOrigin(); err != nil {
		return err
	}

	addr, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	cfg, err := harness.WriteConfig(e.tmp, addr, filepath.Join(e.tmp, "hookgate.db"),
		[]harness.Repo{{Name: "site", Secret: secret, Path: e.hg}})
	if err != nil {
		return err
	}
	p, err := harness.Start(bin, []string{"serve", "--config", cfg}, addr, filepath.Join(e.tmp, "hookgate.log"))
	if err != nil {
		return err
	}
	defer p.Stop()
	e.hook, e.api = "http://"+addr+"/hooks/site", "http://"+addr+"/api/v1"

	// One unmeasured round warms both sides (page cache, the gateway's first deploy).
	if _, err := e.round(0); err != nil {
		return err
	}
	var rs []roundResult
	for i := 1; i <= rounds; i++ {
		r, err := e.round(i)
		if err != nil {
			return err
		}
		rs = append(rs, r)
		fmt.Printf("round %d: git pull --ff-only %s | hookgate 202→checkout %s, 202→recorded %s, send→202 %s | ratio %.2f\n",
			i, ms(r.pull), ms(r.checkout), ms(r.recorded), ms(r.ack), r.checkout.Seconds()/r.pull.Seconds())
	}

	var bs []burstResult
	for i := 1; i <= bursts; i++ {
		b, err := e.burst()
		if err != nil {
			return err
		}
		bs = append(bs, b)
		fmt.Printf("burst %d: %d pushes in %s, %d answered 2xx, %d deploys (%d failed), checkout at origin: %v\n",
			i, b.sent, b.took.Round(time.Millisecond), b.ok, b.deploys, b.failed, b.atHead)
	}
	report(rs, bs)
	return nil
}

// makeOrigin builds origin with git fast-import (thousands of commits in about a second),
// a seeding clone to push from, and the two checkouts.
func (e *env) makeOrigin() error {
	e.origin = filepath.Join(e.tmp, "origin.git")
	e.seed = filepath.Join(e.tmp, "seed")
	e.hg = filepath.Join(e.tmp, "checkout-hookgate")
	e.pull = filepath.Join(e.tmp, "checkout-git-pull")
	if _, err := harness.Git(e.ctx, e.tmp, "init", "-q", "--bare", "-b", "main", e.origin); err != nil {
		return err
	}
	cmd := exec.CommandContext(e.ctx, "git", "fast-import", "--quiet")
	cmd.Dir, cmd.Env, cmd.Stdin = e.origin, harness.GitEnv(), bytes.NewReader(repotest.FastImport())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git fast-import: %v\n%s", err, out)
	}
	for _, step := range [][]string{
		{e.origin, "repack", "-adq"},
		{e.tmp, "clone", "-q", e.origin, e.seed},
		{e.tmp, "clone", "-q", e.origin, e.hg},
		{e.tmp, "clone", "-q", e.origin, e.pull},
	} {
		if _, err := harness.Git(e.ctx, step[0], step[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// push makes one new commit on origin that changes two files and adds one, and returns
// the commits before and after it.
func (e *env) push() (before, after string, err error) {
	e.pushes++
	if before, err = harness.Git(e.ctx, e.seed, "rev-parse", "HEAD"); err != nil {
		return "", "", err
	}
	paths, content := repotest.Push(e.pushes)
	for _, name := range paths {
		if err := os.WriteFile(filepath.Join(e.seed, filepath.FromSlash(name)), content, 0o644); err != nil {
			return "", "", err
		}
	}
	for _, args := range [][]string{
		{"add", "-A"},
		{"commit", "-q", "-m", fmt.Sprintf("push %d", e.pushes)},
		{"push", "-q", "origin", "HEAD:main"},
	} {
		if _, err := harness.Git(e.ctx, e.seed, args...); err != nil {
			return "", "", err
		}
	}
	after, err = harness.Git(e.ctx, e.seed, "rev-parse", "HEAD")
	return before, after, err
}

type roundResult struct {
	pull     time.Duration // git pull --ff-only, the whole command
	ack      time.Duration // sending the delivery until its 202
	checkout time.Duration // 202 until the checkout's branch names the commit
	recorded time.Duration // 202 until the deploy is recorded as succeeded
}

func (e *env) round(i int) (roundResult, error) {
	var r roundResult
	before, after, err := e.push()
	if err != nil {
		return r, err
	}
	pull := func() error {
		t0 := time.Now()
		if _, err := harness.Git(e.ctx, e.pull, "pull", "-q", "--ff-only"); err != nil {
			return err
		}
		r.pull = time.Since(t0)
		if head, _ := harness.Git(e.ctx, e.pull, "rev-parse", "HEAD"); head != after {
			return fmt.Errorf("git pull left %s at %s, not %s", e.pull, head, after)
		}
		return nil
	}
	gateway := func() error {
		body, err := harness.PushPayload(e.root, "refs/heads/main", before, after, "hookgate/site")
		if err != nil {
			return err
		}
		t0 := time.Now()
		ans, err := e.send(body, fmt.Sprintf("round-%d", i))
		if err != nil {
			return err
		}
		acked := time.Now()
		r.ack = acked.Sub(t0)
		if ans.status != http.StatusAccepted {
			return fmt.Errorf("push answered %d, not 202", ans.status)
		}
		if err := waitFor(30*time.Second, "the checkout to reach "+after, func() bool {
			return harness.BranchHead(e.hg, "main") == after
		}); err != nil {
			return err
		}
		r.checkout = time.Since(acked)
		status, err := e.waitDeploy(ans.DeployID)
		if err != nil {
			return err
		}
		r.recorded = time.Since(acked)
		if status != "succeeded" {
			return fmt.Errorf("deploy %d %s", ans.DeployID, status)
		}
		return nil
	}
	// Alternate which goes first, so neither always meets a warmer cache.
	first, second := pull, gateway
	if i%2 == 0 {
		first, second = gateway, pull
	}
	if err := first(); err != nil {
		return r, err
	}
	if err := second(); err != nil {
		return r, err
	}
	time.Sleep(spacing)
	return r, nil
}

type answer struct {
	status     int
	DeliveryID int64 `json:"delivery_id"`
	DeployID   int64 `json:"deploy_id"`
}

var client = &http.Client{Timeout: 30 * time.Second}

// send posts a push delivery signed the way GitHub signs it.
func (e *env) send(body []byte, guid string) (answer, error) {
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, e.hook, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/7b6c1ad")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("%s-%d", guid, time.Now().UnixNano()))
	req.Header.Set("X-Hub-Signature-256", harness.Sign([]byte(secret), body))
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, &a); err != nil {
			return a, fmt.Errorf("answer %s: %w", raw, err)
		}
	}
	return a, nil
}

// waitDeploy polls the API (from loopback, which needs no token) until the deploy ends.
func (e *env) waitDeploy(id int64) (string, error) {
	var status string
	err := waitFor(60*time.Second, fmt.Sprintf("deploy %d to finish", id), func() bool {
		resp, err := client.Get(fmt.Sprintf("%s/deploys/%d", e.api, id))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var dp struct {
			Status string `json:"status"`
		}
		if json.NewDecoder(resp.Body).Decode(&dp) != nil {
			return false
		}
		status = dp.Status
		return status != "queued" && status != "running"
	})
	return status, err
}

type burstResult struct {
	sent, ok        int
	deploys, failed int
	took            time.Duration
	atHead          bool
}

// burst pushes one commit, then sends burstLen pushes of it within one second, one every
// 5 ms, each on its own goroutine so a slow answer does not hold back the next send.
func (e *env) burst() (burstResult, error) {
	var b burstResult
	before, after, err := e.push()
	if err != nil {
		return b, err
	}
	body, err := harness.PushPayload(e.root, "refs/heads/main", before, after, "hookgate/site")
	if err != nil {
		return b, err
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		deploys = map[int64]bool{}
		sendErr error
	)
	tick := time.Second / burstLen
	start := time.Now()
	for i := range burstLen {
		time.Sleep(time.Until(start.Add(time.Duration(i) * tick)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := e.send(body, fmt.Sprintf("burst-%d-%d", e.pushes, i))
			mu.Lock()
			defer mu.Unlock()
			b.sent++
			if err != nil {
				sendErr = err
				return
			}
			if a.status/100 == 2 {
				b.ok++
			}
			if a.DeployID != 0 {
				deploys[a.DeployID] = true
			}
		}()
	}
	wg.Wait()
	b.took = time.Since(start)
	if sendErr != nil {
		return b, sendErr
	}
	b.deploys = len(deploys)
	for id := range deploys {
		status, err := e.waitDeploy(id)
		if err != nil {
			return b, err
		}
		if status != "succeeded" {
			b.failed++
		}
	}
	b.atHead = harness.BranchHead(e.hg, "main") == after
	time.Sleep(spacing)
	return b, nil
}

// waitFor polls cond every half millisecond, so it adds at most that to a measurement.
func waitFor(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(500 * time.Microsecond)
	}
	return nil
}

func report(rs []roundResult, bs []burstResult) {
	var pull, checkout, recorded, ack, ratio []float64
	for _, r := range rs {
		pull = append(pull, msf(r.pull))
		checkout = append(checkout, msf(r.checkout))
		recorded = append(recorded, msf(r.recorded))
		ack = append(ack, msf(r.ack))
		ratio = append(ratio, r.checkout.Seconds()/r.pull.Seconds())
	}
	fmt.Printf("\n%d rounds, one new commit each on a %d-commit repository; median (min-max)\n\n", len(rs), repotest.Commits)
	fmt.Println("| figure | measured | target |")
	fmt.Println("| --- | --- | --- |")
	fmt.Printf("| `git pull --ff-only` (ms) | %s | |\n", harness.Summarize(pull).Format("%.0f"))
	fmt.Printf("| hookgate 202 → checkout at the commit (ms) | %s | ≤ 1.25 × git pull |\n", harness.Summarize(checkout).Format("%.0f"))
	fmt.Printf("| ratio to git pull (per round) | %s | ≤ 1.25 |\n", harness.Summarize(ratio).Format("%.2f"))
	fmt.Printf("| hookgate 202 → deploy recorded succeeded (ms) | %s | |\n", harness.Summarize(recorded).Format("%.0f"))
	fmt.Printf("| hookgate send → 202 (ms) | %s | |\n", harness.Summarize(ack).Format("%.1f"))
	var deploys, failed []float64
	sent, ok := 0, 0
	for _, b := range bs {
		deploys = append(deploys, float64(b.deploys))
		failed = append(failed, float64(b.failed))
		sent += b.sent
		ok += b.ok
	}
	fmt.Printf("| deploys per burst of %d pushes in 1 s | %s | ≤ 3 |\n", burstLen, harness.Summarize(deploys).Format("%.0f"))
	fmt.Printf("| failed deploys per burst | %s | 0 |\n", harness.Summarize(failed).Format("%.0f"))
	fmt.Printf("\nbursts: %d pushes sent, %d answered 2xx\n", sent, ok)
}

func ms(d time.Duration) string   { return fmt.Sprintf("%.0fms", msf(d)) }
func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
