// Package harness is what the measurement scripts under scripts/ share: building and running
// the real hookgate binary with a temporary config, signed GitHub deliveries, git
// repositories made with the git binary, process memory from /proc, and summary statistics.
// It is for scripts, never imported by the gateway.
package harness

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ModuleRoot finds the folder holding hookgate's go.mod by walking up from the working
// directory, so the scripts run from anywhere inside the repository.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/hookgate/hookgate\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hookgate's go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Workdir makes a script's temporary folder and prints the machine it runs on. done
// removes the folder, unless keep, in which case its path is printed for a look afterwards.
func Workdir(script string, keep bool) (dir string, done func(), err error) {
	dir, err = os.MkdirTemp("", "hookgate-"+script+"-")
	if err != nil {
		return "", nil, err
	}
	done = func() { os.RemoveAll(dir) }
	if keep {
		fmt.Println("temporary folder:", dir)
		done = func() {}
	}
	fmt.Println("machine:", Machine())
	return dir, done, nil
}

// Build compiles the hookgate command into dir and returns the binary's path.
func Build(root, dir string) (string, error) {
	bin := filepath.Join(dir, "hookgate")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Testdata returns a file from the repository's testdata/ folder at the module root.
func Testdata(root, name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(root, "testdata", filepath.FromSlash(name)))
	if err != nil {
		return nil, fmt.Errorf("testdata/%s: %w", name, err)
	}
	return b, nil
}

// PushPayload is the real GitHub push payload from testdata/ with ref, before, after
// and repository.full_name replaced, re-encoded compactly as GitHub sends it (about 7 KB).
func PushPayload(root, ref, before, after, fullName string) ([]byte, error) {
	raw, err := Testdata(root, "github/push.json")
	if err != nil {
		return nil, err
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("push.json: %w", err)
	}
	p["ref"], p["before"], p["after"] = ref, before, after
	if repo, ok := p["repository"].(map[string]any); ok && fullName != "" {
		repo["full_name"] = fullName
	}
	if hc, ok := p["head_commit"].(map[string]any); ok {
		hc["id"] = after
	}
	return json.Marshal(p)
}

// Sign returns the X-Hub-Signature-256 header value GitHub would send for body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Repo is one [repos.NAME] table of a generated config.
type Repo struct {
	Name, Secret, Path, URL, Branch string
	Poll                            string // [repos.NAME] poll; "" leaves the default
}

// WriteConfig writes a hookgate config.toml into dir and returns its path.
func WriteConfig(dir, listen, database string, repos []Repo) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\nlisten = %q\ndatabase = %q\nworkers = 4\nshutdown_timeout = \"10s\"\n", listen, database)
	for _, r := range repos {
		branch := r.Branch
		if branch == "" {
			branch = "main"
		}
		fmt.Fprintf(&b, "\n[repos.%s]\nsecret = %q\npath = %q\nbranch = %q\n", r.Name, r.Secret, r.Path, branch)
		if r.Poll != "" {
			fmt.Fprintf(&b, "poll = %q\n", r.Poll)
		}
		if r.URL != "" {
			fmt.Fprintf(&b, "url = %q\n", r.URL)
		}
	}
	p := filepath.Join(dir, "config.toml")
	return p, os.WriteFile(p, []byte(b.String()), 0o600)
}

// Process is a running server started by a script.
type Process struct {
	Cmd  *exec.Cmd
	Addr string
	log  *os.File
	done chan struct{} // closed once the process has exited and been waited for
	err  error         // Wait's result, set before done is closed

	// Ready is how long the process took from being started to answering /healthz.
	Ready time.Duration
}

// Start runs bin with args, its output going to logPath, and waits until GET
// http://addr/healthz answers 200 (or the process exits, or 30 s pass), asking every 5 ms.
func Start(bin string, args []string, addr, logPath string) (*Process, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	p := &Process{Cmd: cmd, Addr: addr, log: lf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.Ready = time.Since(t0)
				return p, nil
			}
		}
		select {
		case <-p.done:
			lf.Close()
			return nil, fmt.Errorf("%s exited before answering (%v); see %s", filepath.Base(bin), p.err, logPath)
		default:
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("%s did not answer /healthz within 30s; see %s", filepath.Base(bin), logPath)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Stop sends SIGTERM, waits for the process (killing it after 20 s) and closes its log.
func (p *Process) Stop() error {
	defer p.log.Close()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(20 * time.Second):
		p.Cmd.Process.Kill()
		<-p.done
		return errors.New("did not stop within 20s of SIGTERM; killed")
	}
}

// Memory is a process's resident set from /proc/PID/status, in bytes.
type Memory struct {
	RSS  int64 // VmRSS: resident now
	Peak int64 // VmHWM: the highest resident set since the process started
	Anon int64 // RssAnon: the heap, stacks and other private memory
	File int64 // RssFile: mapped file pages, mostly the binary's own code and read-only data
}

// ReadMemory reads /proc/PID/status.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSS = n << 10
		case "VmHWM":
			m.Peak = n << 10
		case "RssAnon":
			m.Anon = n << 10
		case "RssFile":
			m.File = n << 10
		}
	}
	if m.RSS == 0 || m.Peak == 0 {
		return m, fmt.Errorf("/proc/%d/status: no VmRSS or VmHWM", pid)
	}
	return m, nil
}

// Git runs git in dir with a fixed identity and no user or system config, and returns its
// trimmed output.
func Git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = GitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// GitEnv is the environment the scripts run git with.
func GitEnv() []string {
	return append(os.Environ(),
		"GIT_AUTHOR_NAME=hookgate bench", "GIT_AUTHOR_EMAIL=bench@hookgate.invalid",
		"GIT_COMMITTER_NAME=hookgate bench", "GIT_COMMITTER_EMAIL=bench@hookgate.invalid",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	)
}

// Stats summarises repeated measurements of one figure.
type Stats struct {
	Median, Min, Max float64
	N                int
}

// Summarize returns the median, min and max of xs.
func Summarize(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stats{Median: med, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// Format prints the stats as "median (min-max)" with the given verb, e.g. "%.1f".
func (s Stats) Format(verb string) string {
	return fmt.Sprintf(verb+" ("+verb+"-"+verb+")", s.Median, s.Min, s.Max)
}

// Percentile returns the p-th percentile (0-100) of sorted durations, nearest rank.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Machine describes the host the way PERFORMANCE.md reports it.
func Machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				mem = fmt.Sprintf(", %.1f GiB RAM", float64(kb)/(1<<20))
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = ", load average " + strings.Join(strings.Fields(string(b))[:3], " ")
	}
	cpus, _ := exec.Command("nproc").Output()
	return fmt.Sprintf("%s CPUs (%s)%s%s", strings.TrimSpace(string(cpus)), model, mem, load)
}

// CPUTime is the CPU time (user and system) a process has used, with that of the children
// it has waited for, from /proc/PID/stat; on a shared machine it moves much less than wall
// time does.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name in parentheses may hold spaces; the fields after it are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:15] { // utime, stime, cutime, cstime (fields 14-17)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

// BranchHead reads refs/heads/BRANCH of the checkout at dir from its loose ref, or from
// packed-refs when there is none; "" when neither names it.
func BranchHead(dir, branch string) string {
	ref := "refs/heads/" + branch
	if b, err := os.ReadFile(filepath.Join(dir, ".git", filepath.FromSlash(ref))); err == nil {
		return strings.TrimSpace(string(b))
	}
	b, err := os.ReadFile(filepath.Join(dir, ".git", "packed-refs"))
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if hash, name, ok := strings.Cut(strings.TrimSpace(line), " "); ok && name == ref {
			return hash
		}
	}
	return ""
}

// RaiseNoFile sets the soft open-files limit to the hard one and returns it, for the
// scripts that hold thousands of connections.
func RaiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}

// MiB prints bytes in MiB with one decimal (PERFORMANCE.md calls them MB).
func MiB(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }
