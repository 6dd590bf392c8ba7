// Command bigrepo measures hookgate's first clone and later updates of big repositories
// against git's on the same repositories, in the same run: time, peak resident memory, and
// the gateway's resident memory a while after.
//
// It builds four synthetic origins with git fast-import, the same bytes in every run (sizes
// are flags): "mixed" (300 binary files of 512 KiB and 8,000 text files in 200 folders, 301
// commits: a 151 MB pack), "onefile" (a single 100 MiB file), "small" (20,000 small files)
// and "history" (50,000 commits). For each, in alternating order, it times `git clone
// --no-local` (its peak is the largest resident set among git and the processes it waited
// for, upload-pack and index-pack included) and the first deploy of a fresh hookgate
// configured with the origin as url (the deploy's 202 to its recorded success, VmHWM of the
// gateway), waits -settle and reads the gateway's resident set again. Then -rounds pushes,
// each timed as `git pull --ff-only` against hookgate's deploy (202 to the checkout's branch
// naming the commit). Last, -concurrent repositories of the mixed origin are configured in
// one gateway and cloned at once, against as many `git clone`s at once.
//
//	go run ./scripts/bigrepo                          # every case at the sizes (≈ 5 min)
//	go run ./scripts/bigrepo -cases mixed,onefile -settle 10s
//	go run ./scripts/bigrepo -mixed-bins 100 -onefile-mib 20 -small-files 5000 -history-commits 5000
//	go run ./scripts/bigrepo -bin /path/to/other/hookgate   # measure another build
//	go run ./scripts/bigrepo -profile /tmp/prof -cases mixed  # heap profiles of an in-process clone
package main

import (
	"bufio"
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
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hookgate/hookgate/scripts/internal/harness"
)

const secret = "bigrepo-secret-0c7a"

type options struct {
	cases      []string
	rounds     int
	concurrent int
	maxClones  int
	depth      int
	settle     time.Duration
	bin        string
	keep       bool
	profile    string
}

func main() {
	var o options
	mixedBins := flag.Int("mixed-bins", 300, "mixed: binary files")
	mixedBinKiB := flag.Int("mixed-bin-kib", 512, "mixed: size of each binary file, KiB")
	mixedTexts := flag.Int("mixed-texts", 8000, "mixed: text files")
	mixedDirs := flag.Int("mixed-dirs", 200, "mixed: folders the text files are spread over")
	mixedCommits := flag.Int("mixed-commits", 301, "mixed: commits")
	oneMiB := flag.Int("onefile-mib", 100, "onefile: size of the single file, MiB")
	smallFiles := flag.Int("small-files", 20000, "small: files")
	historyCommits := flag.Int("history-commits", 50000, "history: commits")
	cases := flag.String("cases", "mixed,onefile,small,history,concurrent", "cases to run, comma-separated")
	flag.IntVar(&o.rounds, "rounds", 3, "pushes per case, each timed as git pull --ff-only against hookgate's update")
	flag.IntVar(&o.concurrent, "concurrent", 3, "repositories of the mixed origin cloned at once in the concurrent case")
	flag.IntVar(&o.maxClones, "max-clones", 0, "the gateway's server.max_clones (0: leave its default)")
	flag.IntVar(&o.depth, "depth", 0, "set depth = N on the gateway's repositories and clone git with --depth N")
	flag.DurationVar(&o.settle, "settle", 30*time.Second, "how long after a deploy the gateway's resident set is read again")
	flag.StringVar(&o.bin, "bin", "", "a hookgate binary to measure instead of building this tree")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary folder")
	flag.StringVar(&o.profile, "profile", "", "instead of the comparison, clone each case in this process and write heap profiles into this folder")
	flag.Parse()
	o.cases = strings.Split(*cases, ",")
	shapes := map[string]shape{
		"mixed": {name: "mixed", bins: *mixedBins, binSize: int64(*mixedBinKiB) << 10, texts: *mixedTexts, dirs: *mixedDirs, commits: *mixedCommits,
			describe: fmt.Sprintf("%d × %d KiB binary + %d text files in %d folders, %d commits", *mixedBins, *mixedBinKiB, *mixedTexts, *mixedDirs, *mixedCommits)},
		"onefile": {name: "onefile", bins: 1, binSize: int64(*oneMiB) << 20, texts: 2, dirs: 1, commits: 1,
			describe: fmt.Sprintf("one %d MiB file", *oneMiB)},
		"small": {name: "small", texts: *smallFiles, dirs: 200, commits: 2,
			describe: fmt.Sprintf("%d small files in 200 folders", *smallFiles)},
		"history": {name: "history", texts: 1000, dirs: 50, commits: *historyCommits,
			describe: fmt.Sprintf("%d commits over 1,000 files", *historyCommits)},
	}
	if err := run(o, shapes); err != nil {
		fmt.Fprintln(os.Stderr, "bigrepo:", err)
		os.Exit(1)
	}
}

type env struct {
	options
	ctx       context.Context
	root, tmp string
	bin       string
	origins   map[string]string // shape name → bare origin
	pushes    int
}

func run(o options, shapes map[string]shape) error {
	e := &env{options: o, ctx: context.Background(), origins: map[string]string{}}
	var err error
	if e.root, err = harness.ModuleRoot(); err != nil {
		return err
	}
	var done func()
	if e.tmp, done, err = harness.Workdir("bigrepo", o.keep); err != nil {
		return err
	}
	defer done()
	needs := func(name string) bool { return slices.Contains(o.cases, name) }
	if o.profile != "" {
		for _, name := range []string{"mixed", "onefile", "small", "history"} {
			if !needs(name) {
				continue
			}
			if err := e.makeOrigin(shapes[name]); err != nil {
				return err
			}
			if err := e.profileClone(shapes[name]); err != nil {
				return err
			}
		}
		return nil
	}
	e.bin = o.bin
	if e.bin == "" {
		fmt.Println("building hookgate …")
		if e.bin, err = harness.Build(e.root, e.tmp); err != nil {
			return err
		}
	}
	var rows []caseResult
	for i, name := range []string{"mixed", "onefile", "small", "history"} {
		if !needs(name) {
			continue
		}
		if err := e.makeOrigin(shapes[name]); err != nil {
			return err
		}
		r, err := e.measure(shapes[name], i%2 == 1)
		if err != nil {
			return err
		}
		rows = append(rows, r)
		if name != "mixed" || !needs("concurrent") {
			os.RemoveAll(e.origins[name]) // the disk is shared too
		}
	}
	var conc *concResult
	if needs("concurrent") && o.concurrent > 0 {
		if e.origins["mixed"] == "" {
			if err := e.makeOrigin(shapes["mixed"]); err != nil {
				return err
			}
		}
		c, err := e.measureConcurrent(shapes["mixed"])
		if err != nil {
			return err
		}
		conc = &c
	}
	report(o, rows, conc)
	return nil
}

// makeOrigin builds the shape's bare origin. core.bigFileThreshold keeps pack-objects from
// searching deltas among the big random files on each fetch, for git and hookgate alike.
func (e *env) makeOrigin(s shape) error {
	fmt.Printf("building origin %q: %s …\n", s.name, s.describe)
	t0 := time.Now()
	origin := filepath.Join(e.tmp, s.name+".git")
	if _, err := harness.Git(e.ctx, e.tmp, "init", "-q", "--bare", "-b", "main", origin); err != nil {
		return err
	}
	if _, err := harness.Git(e.ctx, origin, "config", "core.bigFileThreshold", "1m"); err != nil {
		return err
	}
	if err := fastImport(e.ctx, origin, s.history); err != nil {
		return err
	}
	e.origins[s.name] = origin
	fmt.Printf("  %s of pack in %s\n", mb(dirSize(filepath.Join(origin, "objects", "pack"))), time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// pushTo adds one commit to origin's main and returns the commits before and after.
func (e *env) pushTo(s shape) (before, after string, err error) {
	origin := e.origins[s.name]
	if before, err = harness.Git(e.ctx, origin, "rev-parse", "main"); err != nil {
		return "", "", err
	}
	e.pushes++
	n := e.pushes
	if err := fastImport(e.ctx, origin, func(w *bufio.Writer) error { return s.push(w, n) }); err != nil {
		return "", "", err
	}
	after, err = harness.Git(e.ctx, origin, "rev-parse", "main")
	return before, after, err
}

type caseResult struct {
	shape             shape
	pack              int64
	gitClone, hgClone time.Duration
	gitPeak, hgPeak   int64
	hgIdle, hgAfter   int64 // VmRSS before the first deploy and -settle after it
	hgAfterAnon       int64
	pulls, updates    []float64 // ms
	hgUpdatePeak      int64     // VmHWM over the updates, reset after the clone
	hgUpdateAfter     int64
	gitFirst          bool
	gitCPU, hgCPU     time.Duration // CPU time of the clone, children included
	hgCheckoutFiles   int
	gitCheckoutFiles  int
	hgTreeOK          bool
}

// gitRun runs git and returns how long it took, the largest resident set among it and the
// processes it waited for (ru_maxrss of wait4), and their CPU time.
func gitRun(ctx context.Context, dir string, args ...string) (time.Duration, int64, time.Duration, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir, cmd.Env = dir, harness.GitEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, 0, fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	took := time.Since(t0)
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var peak int64
	if ru != nil {
		peak = ru.Maxrss << 10
	}
	return took, peak, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

func (e *env) gitCloneArgs(origin, dst string) []string {
	args := []string{"clone", "-q", "--no-local", "--single-branch", "--branch", "main", "--no-tags"}
	if e.depth > 0 {
		args = append(args, "--depth", fmt.Sprint(e.depth))
	}
	return append(args, "file://"+origin, dst)
}

func (e *env) measure(s shape, gitFirst bool) (caseResult, error) {
	r := caseResult{shape: s, gitFirst: gitFirst, pack: dirSize(filepath.Join(e.origins[s.name], "objects", "pack"))}
	origin := e.origins[s.name]
	gitDir := filepath.Join(e.tmp, s.name+"-git")
	hgDir := filepath.Join(e.tmp, s.name+"-hookgate")

	g, err := e.startGateway(s.name, []hgRepo{{name: s.name, path: hgDir, url: origin}})
	if err != nil {
		return r, err
	}
	defer g.Stop()
	time.Sleep(time.Second)
	idle, err := harness.ReadMemory(g.Pid())
	if err != nil {
		return r, err
	}
	r.hgIdle = idle.RSS
	head, err := harness.Git(e.ctx, origin, "rev-parse", "main")
	if err != nil {
		return r, err
	}

	gitClone := func() error {
		var err error
		r.gitClone, r.gitPeak, r.gitCPU, err = gitRun(e.ctx, e.tmp, e.gitCloneArgs(origin, gitDir)...)
		return err
	}
	hgClone := func() error {
		cpu0, err := harness.CPUTime(g.Pid())
		if err != nil {
			return err
		}
		took, err := e.deploy(g, s.name, "0000000000000000000000000000000000000000", head, false)
		r.hgClone = took
		cpu1, _ := harness.CPUTime(g.Pid())
		r.hgCPU = cpu1 - cpu0
		return err
	}
	order := []func() error{hgClone, gitClone}
	if gitFirst {
		order = []func() error{gitClone, hgClone}
	}
	for _, f := range order {
		if err := f(); err != nil {
			return r, err
		}
	}
	m, err := harness.ReadMemory(g.Pid())
	if err != nil {
		return r, err
	}
	r.hgPeak = m.Peak
	// The two checkouts must hold the same files.
	gitFiles, err := harness.Git(e.ctx, gitDir, "ls-files")
	if err != nil {
		return r, err
	}
	hgFiles, err := harness.Git(e.ctx, hgDir, "ls-files")
	if err != nil {
		return r, err
	}
	r.gitCheckoutFiles, r.hgCheckoutFiles = strings.Count(gitFiles, "\n")+1, strings.Count(hgFiles, "\n")+1
	status, err := harness.Git(e.ctx, hgDir, "status", "--porcelain")
	if err != nil {
		return r, err
	}
	r.hgTreeOK = status == "" && gitFiles == hgFiles
	fmt.Printf("  %s: git clone %s (CPU %s), peak %s | hookgate first deploy %s (CPU %s), peak %s (idle %s); checkouts equal and clean: %v\n",
		s.name, secs(r.gitClone), secs(r.gitCPU), mb(r.gitPeak), secs(r.hgClone), secs(r.hgCPU), mb(r.hgPeak), mb(r.hgIdle), r.hgTreeOK)

	time.Sleep(e.settle)
	if m, err = harness.ReadMemory(g.Pid()); err != nil {
		return r, err
	}
	r.hgAfter, r.hgAfterAnon = m.RSS, m.Anon
	fmt.Printf("  %s: hookgate %s after the deploy: %s (%s anonymous)\n", s.name, e.settle, mb(m.RSS), mb(m.Anon))

	if err := resetPeak(g.Pid()); err != nil {
		return r, err
	}
	for i := 1; i <= e.rounds; i++ {
		before, after, err := e.pushTo(s)
		if err != nil {
			return r, err
		}
		var pull, upd time.Duration
		doPull := func() error {
			var err error
			pull, _, _, err = gitRun(e.ctx, gitDir, "pull", "-q", "--ff-only")
			if err == nil {
				if h, _ := harness.Git(e.ctx, gitDir, "rev-parse", "HEAD"); h != after {
					err = fmt.Errorf("git pull left %s at %s, not %s", gitDir, h, after)
				}
			}
			return err
		}
		doUpdate := func() error {
			var err error
			upd, err = e.deploy(g, s.name, before, after, true)
			return err
		}
		first, second := doPull, doUpdate
		if (i%2 == 0) != gitFirst {
			first, second = doUpdate, doPull
		}
		if err := first(); err != nil {
			return r, err
		}
		if err := second(); err != nil {
			return r, err
		}
		r.pulls = append(r.pulls, msf(pull))
		r.updates = append(r.updates, msf(upd))
		fmt.Printf("  %s round %d: git pull --ff-only %.0f ms | hookgate update %.0f ms | ratio %.2f\n", s.name, i, msf(pull), msf(upd), upd.Seconds()/pull.Seconds())
		time.Sleep(1200 * time.Millisecond) // more than the gateway's least time between two deploys' starts
	}
	if e.rounds > 0 {
		if m, err = harness.ReadMemory(g.Pid()); err != nil {
			return r, err
		}
		r.hgUpdatePeak = m.Peak
		time.Sleep(e.settle)
		if m, err = harness.ReadMemory(g.Pid()); err != nil {
			return r, err
		}
		r.hgUpdateAfter = m.RSS
		fmt.Printf("  %s: hookgate peak over the updates %s, %s after %s\n", s.name, mb(r.hgUpdatePeak), e.settle, mb(r.hgUpdateAfter))
	}
	os.RemoveAll(gitDir)
	os.RemoveAll(hgDir)
	return r, nil
}

type concResult struct {
	n              int
	gitWall        time.Duration
	gitPeakMax     int64
	gitPeakSum     int64
	hgWall         time.Duration
	hgIdle, hgPeak int64
	hgAfter        int64
	hgAfterAnon    int64
}

// measureConcurrent clones the mixed origin n times at once: n git clones in parallel,
// and one gateway with n repositories all deploying at once.
func (e *env) measureConcurrent(s shape) (concResult, error) {
	c := concResult{n: e.concurrent}
	origin := e.origins[s.name]
	head, err := harness.Git(e.ctx, origin, "rev-parse", "main")
	if err != nil {
		return c, err
	}
	fmt.Printf("concurrent: %d clones of %q at once …\n", c.n, s.name)
	var wg sync.WaitGroup
	errs := make([]error, c.n)
	peaks := make([]int64, c.n)
	t0 := time.Now()
	for i := range c.n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, peaks[i], _, errs[i] = gitRun(e.ctx, e.tmp, e.gitCloneArgs(origin, filepath.Join(e.tmp, fmt.Sprintf("conc-git-%d", i)))...)
		}()
	}
	wg.Wait()
	c.gitWall = time.Since(t0)
	for i := range c.n {
		if errs[i] != nil {
			return c, errs[i]
		}
		c.gitPeakMax = max(c.gitPeakMax, peaks[i])
		c.gitPeakSum += peaks[i]
		os.RemoveAll(filepath.Join(e.tmp, fmt.Sprintf("conc-git-%d", i)))
	}

	var repos []hgRepo
	for i := range c.n {
		repos = append(repos, hgRepo{name: fmt.Sprintf("conc%d", i), path: filepath.Join(e.tmp, fmt.Sprintf("conc-hookgate-%d", i)), url: origin})
	}
	g, err := e.startGateway("concurrent", repos)
	if err != nil {
		return c, err
	}
	defer g.Stop()
	time.Sleep(time.Second)
	m, err := harness.ReadMemory(g.Pid())
	if err != nil {
		return c, err
	}
	c.hgIdle = m.RSS
	t0 = time.Now()
	for i, r := range repos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.deploy(g, r.name, "0000000000000000000000000000000000000000", head, false)
		}()
	}
	wg.Wait()
	c.hgWall = time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return c, err
		}
	}
	if m, err = harness.ReadMemory(g.Pid()); err != nil {
		return c, err
	}
	c.hgPeak = m.Peak
	fmt.Printf("  %d git clones at once %s (largest peak %s, sum %s) | hookgate %s, peak %s (idle %s)\n",
		c.n, secs(c.gitWall), mb(c.gitPeakMax), mb(c.gitPeakSum), secs(c.hgWall), mb(c.hgPeak), mb(c.hgIdle))
	time.Sleep(e.settle)
	if m, err = harness.ReadMemory(g.Pid()); err != nil {
		return c, err
	}
	c.hgAfter, c.hgAfterAnon = m.RSS, m.Anon
	fmt.Printf("  hookgate %s after: %s (%s anonymous)\n", e.settle, mb(m.RSS), mb(m.Anon))
	for _, r := range repos {
		os.RemoveAll(r.path)
	}
	return c, nil
}

type hgRepo struct{ name, path, url string }

type gateway struct {
	*harness.Process
	hook, api string
}

func (e *env) startGateway(label string, repos []hgRepo) (*gateway, error) {
	addr, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.tmp, "gw-"+label)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\nlisten = %q\ndatabase = %q\nworkers = 4\nshutdown_timeout = \"10s\"\n", addr, filepath.Join(dir, "hookgate.db"))
	if e.maxClones > 0 {
		fmt.Fprintf(&b, "max_clones = %d\n", e.maxClones)
	}
	for _, r := range repos {
		fmt.Fprintf(&b, "\n[repos.%s]\nsecret = %q\npath = %q\nbranch = \"main\"\nurl = %q\ntimeout = \"30m\"\n", r.name, secret, r.path, r.url)
		if e.depth > 0 {
			fmt.Fprintf(&b, "depth = %d\n", e.depth)
		}
	}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	p, err := harness.Start(e.bin, []string{"serve", "--config", cfg}, addr, filepath.Join(dir, "hookgate.log"))
	if err != nil {
		return nil, err
	}
	return &gateway{Process: p, hook: "http://" + addr + "/hooks/", api: "http://" + addr + "/api/v1"}, nil
}

var client = &http.Client{Timeout: 30 * time.Second}

// deploy sends repo's gateway a signed push of after and returns the time from its 202 to
// the deploy recorded as succeeded, or, with untilRef, to the checkout's branch naming after
// (the gateway moves the ref last, once the work tree is written).
func (e *env) deploy(g *gateway, repo, before, after string, untilRef bool) (time.Duration, error) {
	body, err := harness.PushPayload(e.root, "refs/heads/main", before, after, "hookgate/"+repo)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, g.hook+repo, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/7b6c1ad")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("%s-%s-%d", repo, after[:8], time.Now().UnixNano()))
	req.Header.Set("X-Hub-Signature-256", harness.Sign([]byte(secret), body))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	acked := time.Now()
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("push to %s answered %d: %s", repo, resp.StatusCode, raw)
	}
	var a struct {
		DeployID int64 `json:"deploy_id"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return 0, err
	}
	var took time.Duration
	path := ""
	if untilRef {
		path = e.repoPath(g, repo)
		for harness.BranchHead(path, "main") != after {
			if time.Since(acked) > 30*time.Minute {
				return 0, fmt.Errorf("checkout of %s never reached %s", repo, after)
			}
			time.Sleep(500 * time.Microsecond)
		}
		took = time.Since(acked)
	}
	for {
		resp, err := client.Get(fmt.Sprintf("%s/deploys/%d", g.api, a.DeployID))
		if err != nil {
			return 0, err
		}
		var dp struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&dp)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		switch dp.Status {
		case "queued", "running":
			time.Sleep(5 * time.Millisecond)
			continue
		case "succeeded":
			if !untilRef {
				took = time.Since(acked)
			}
			return took, nil
		}
		return 0, fmt.Errorf("deploy %d of %s %s: %s", a.DeployID, repo, dp.Status, dp.Error)
	}
}

// repoPath reads the checkout path of repo back from the gateway's config.
func (e *env) repoPath(g *gateway, repo string) string {
	for _, a := range g.Cmd.Args {
		if strings.HasSuffix(a, "config.toml") {
			b, _ := os.ReadFile(a)
			_, rest, _ := strings.Cut(string(b), "[repos."+repo+"]")
			_, rest, _ = strings.Cut(rest, "path = \"")
			p, _, _ := strings.Cut(rest, "\"")
			return p
		}
	}
	return ""
}

// resetPeak sets the process's VmHWM back to its resident set now (Linux clear_refs 5).
func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func report(o options, rows []caseResult, conc *concResult) {
	fmt.Printf("\nmachine: %s\n", harness.Machine())
	if o.depth > 0 {
		fmt.Printf("depth = %d on every hookgate repository, git clone --depth %d\n", o.depth, o.depth)
	}
	fmt.Println("\nFirst clone (hookgate: 202 → deploy recorded; peak: VmHWM; git: ru_maxrss of git clone and its children)")
	fmt.Println()
	fmt.Println("| repository | pack | `git clone` (CPU) | hookgate (CPU) | time ratio (≤ 1.5), CPU ratio | git peak | hookgate peak (idle) | peak − git (≤ 30 MB) | hookgate RSS " + o.settle.String() + " after (≤ idle + 20 MB) | checkouts equal |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s (%s) | %s (%s) | %.2f, %.2f | %s | %s (%s) | %+.0f MB | %s (%+.0f MB) | %v |\n",
			r.shape.describe, mb(r.pack), secs(r.gitClone), secs(r.gitCPU), secs(r.hgClone), secs(r.hgCPU),
			r.hgClone.Seconds()/r.gitClone.Seconds(), r.hgCPU.Seconds()/r.gitCPU.Seconds(),
			mb(r.gitPeak), mb(r.hgPeak), mb(r.hgIdle), float64(r.hgPeak-r.gitPeak)/1e6, mb(r.hgAfter), float64(r.hgAfter-r.hgIdle)/1e6, r.hgTreeOK)
	}
	if o.rounds > 0 {
		fmt.Printf("\nUpdates, %d pushes per repository (two text files changed, one added, one binary file rewritten where there are any); median (min-max)\n\n", o.rounds)
		fmt.Println("| repository | `git pull --ff-only` (ms) | hookgate 202 → checkout (ms) | ratio (≤ 1.25) | hookgate peak over the updates | RSS " + o.settle.String() + " after |")
		fmt.Println("| --- | --- | --- | --- | --- | --- |")
		for _, r := range rows {
			var ratio []float64
			for i := range r.pulls {
				ratio = append(ratio, r.updates[i]/r.pulls[i])
			}
			fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", r.shape.describe, harness.Summarize(r.pulls).Format("%.0f"), harness.Summarize(r.updates).Format("%.0f"),
				harness.Summarize(ratio).Format("%.2f"), mb(r.hgUpdatePeak), mb(r.hgUpdateAfter))
		}
	}
	if conc != nil {
		fmt.Printf("\n%d clones of the mixed repository at once\n\n", conc.n)
		fmt.Println("| | wall time | peak | RSS " + o.settle.String() + " after |")
		fmt.Println("| --- | --- | --- | --- |")
		fmt.Printf("| %d × `git clone` in parallel | %s | largest %s, sum %s | |\n", conc.n, secs(conc.gitWall), mb(conc.gitPeakMax), mb(conc.gitPeakSum))
		fmt.Printf("| hookgate, %d repositories deployed at once | %s | %s (idle %s) | %s (%s anonymous) |\n", conc.n, secs(conc.hgWall), mb(conc.hgPeak), mb(conc.hgIdle), mb(conc.hgAfter), mb(conc.hgAfterAnon))
	}
}

func mb(n int64) string           { return fmt.Sprintf("%.0f MB", float64(n)/1e6) }
func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
