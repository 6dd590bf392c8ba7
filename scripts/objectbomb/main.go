// Command objectbomb measures what a push can make the gateway hold in memory: it deploys,
// through the real binary and a real bare origin, (1) a delta bomb, a pack of about 16 KB
// holding a 16 MiB blob of zeros and one delta of 64 copy instructions that builds a 1 GiB
// blob from it, and (2) a plain 2 GiB blob (zeros, a 2 MB pack). For each it reports the
// deploy's outcome and the gateway's peak resident set (VmHWM from /proc, reset before the
// push), beside its resident set before.
//
// The origins are made with git index-pack, mktree and commit-tree; git builds the 1 GiB
// and hashes the 2 GiB in its own process, before the gateway starts.
//
//	go run ./scripts/objectbomb                              # both cases, default limits
//	go run ./scripts/objectbomb -bin /tmp/old/hookgate       # another build (e.g. before the limits)
//	go run ./scripts/objectbomb -server 'max_object_size = "4GB"' -server 'max_fetch_size = "8GB"'
//	go run ./scripts/objectbomb -cases bomb -base-mib 16 -copies 64
package main

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
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
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/scripts/internal/harness"
)

const secret = "objectbomb-secret-5e1d"

type serverLines []string

func (s *serverLines) String() string     { return strings.Join(*s, "; ") }
func (s *serverLines) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	cases := flag.String("cases", "bomb,blob", "cases to run, comma-separated")
	baseMiB := flag.Int("base-mib", 16, "bomb: size of the base blob, MiB")
	copies := flag.Int("copies", 64, "bomb: copy instructions in the delta, each copying the whole base")
	blobMiB := flag.Int64("blob-mib", 2048, "blob: size of the plain blob, MiB")
	bin := flag.String("bin", "", "a hookgate binary to measure instead of building this tree")
	keep := flag.Bool("keep", false, "keep the temporary folder")
	var extra serverLines
	flag.Var(&extra, "server", "a line added to [server] (repeatable), e.g. 'max_object_size = \"4GB\"'")
	flag.Parse()
	if err := run(strings.Split(*cases, ","), *baseMiB, *copies, *blobMiB, *bin, *keep, extra); err != nil {
		fmt.Fprintln(os.Stderr, "objectbomb:", err)
		os.Exit(1)
	}
}

func run(cases []string, baseMiB, copies int, blobMiB int64, bin string, keep bool, extra []string) error {
	ctx := context.Background()
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	tmp, done, err := harness.Workdir("objectbomb", keep)
	if err != nil {
		return err
	}
	defer done()
	if bin == "" {
		fmt.Println("building hookgate …")
		if bin, err = harness.Build(root, tmp); err != nil {
			return err
		}
	}
	for _, c := range cases {
		dir := filepath.Join(tmp, c)
		origin := filepath.Join(dir, "origin.git")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if _, err := harness.Git(ctx, dir, "init", "-q", "--bare", "-b", "main", origin); err != nil {
			return err
		}
		seed, err := commitReadme(ctx, dir, origin)
		if err != nil {
			return err
		}
		checkout := filepath.Join(dir, "checkout")
		if _, err := harness.Git(ctx, dir, "clone", "-q", origin, checkout); err != nil {
			return err
		}
		t0 := time.Now()
		var after, what string
		switch c {
		case "bomb":
			pack, _, _, size := testkit.DeltaBomb(baseMiB<<20, copies)
			what = fmt.Sprintf("delta bomb: a %d-byte pack, a %d MiB base and a delta building %d MiB", len(pack), baseMiB, size>>20)
			after, err = testkit.InstallDeltaBomb(origin, "main", seed, baseMiB<<20, copies)
		case "blob":
			what = fmt.Sprintf("a plain %d MiB blob", blobMiB)
			after, err = installBlob(ctx, origin, seed, blobMiB<<20)
		default:
			return fmt.Errorf("unknown case %q", c)
		}
		if err != nil {
			return err
		}
		fmt.Printf("%s: origin ready in %s (%s of pack)\n", c, time.Since(t0).Round(100*time.Millisecond), mb(dirSize(filepath.Join(origin, "objects", "pack"))))
		if err := measure(ctx, root, bin, dir, checkout, seed, after, what, extra); err != nil {
			return err
		}
	}
	return nil
}

// measure starts a gateway with checkout configured, resets its peak, pushes after and
// reports the deploy's outcome and the gateway's peak resident set.
func measure(ctx context.Context, root, bin, dir, checkout, before, after, what string, extra []string) error {
	addr, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\nlisten = %q\ndatabase = %q\nworkers = 4\n", addr, filepath.Join(dir, "hookgate.db"))
	for _, l := range extra {
		fmt.Fprintln(&b, l)
	}
	fmt.Fprintf(&b, "\n[repos.site]\nsecret = %q\npath = %q\nbranch = \"main\"\ntimeout = \"30m\"\ncommands = [\"true\"]\n", secret, checkout)
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		return err
	}
	p, err := harness.Start(bin, []string{"serve", "--config", cfg}, addr, filepath.Join(dir, "hookgate.log"))
	if err != nil {
		return err
	}
	defer p.Stop()
	idle, err := harness.ReadMemory(p.Pid())
	if err != nil {
		return err
	}
	// Writing 5 to clear_refs resets VmHWM to the current resident set.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.Pid()), []byte("5"), 0); err != nil {
		return err
	}
	body, err := harness.PushPayload(root, "refs/heads/main", before, after, "hookgate/site")
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/hooks/site", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("objectbomb-%d", time.Now().UnixNano()))
	req.Header.Set("X-Hub-Signature-256", harness.Sign([]byte(secret), body))
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var a struct {
		DeployID int64 `json:"deploy_id"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &a) != nil {
		return fmt.Errorf("push answered %d: %s", resp.StatusCode, raw)
	}
	var dp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	var peak int64
	for {
		// The gateway may die (out of memory): its peak is read while it lives.
		if m, err := harness.ReadMemory(p.Pid()); err == nil {
			peak = max(peak, m.Peak)
		}
		r, err := http.Get(fmt.Sprintf("http://%s/api/v1/deploys/%d", addr, a.DeployID))
		if err != nil {
			return fmt.Errorf("deploy %d: %w (gateway peak so far %s)", a.DeployID, err, mb(peak))
		}
		err = json.NewDecoder(r.Body).Decode(&dp)
		r.Body.Close()
		if err != nil {
			return err
		}
		if !slices.Contains([]string{"queued", "running"}, dp.Status) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(t0)
	if m, err := harness.ReadMemory(p.Pid()); err == nil {
		peak = max(peak, m.Peak)
	}
	fmt.Printf("  %s\n  deploy %s in %s; gateway resident %s before, peak %s during the deploy\n", what, dp.Status, took.Round(10*time.Millisecond), mb(idle.RSS), mb(peak))
	if dp.Error != "" {
		fmt.Printf("  error: %s\n", dp.Error)
	}
	return nil
}

func commitReadme(ctx context.Context, dir, origin string) (string, error) {
	blob, err := gitIn(ctx, origin, []byte("hello\n"), "hash-object", "-w", "--stdin")
	if err != nil {
		return "", err
	}
	tree, err := gitIn(ctx, origin, []byte("100644 blob "+blob+"\tREADME.md\n"), "mktree")
	if err != nil {
		return "", err
	}
	c, err := gitIn(ctx, origin, nil, "commit-tree", tree, "-m", "initial")
	if err != nil {
		return "", err
	}
	_, err = gitIn(ctx, origin, nil, "update-ref", "refs/heads/main", c)
	return c, err
}

// installBlob writes a pack of one blob of size zero bytes into origin, streamed (nothing
// holds it whole), and moves main to a commit on parent with it as big.bin.
func installBlob(ctx context.Context, origin, parent string, size int64) (string, error) {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", size)
	zero := make([]byte, 1<<20)
	for n := size; n > 0; n -= int64(len(zero)) {
		h.Write(zero[:min(n, int64(len(zero)))])
	}
	blob := hex.EncodeToString(h.Sum(nil))

	cmd := exec.CommandContext(ctx, "git", "index-pack", "--stdin")
	cmd.Dir = origin
	cmd.Env = append(os.Environ(), harness.GitEnv()...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	sum := sha1.New()
	w := bufio.NewWriterSize(io.MultiWriter(stdin, sum), 1<<20)
	w.WriteString("PACK")
	binary.Write(w, binary.BigEndian, uint32(2))
	binary.Write(w, binary.BigEndian, uint32(1))
	hdr := []byte{3<<4 | byte(size&15)}
	for s := size >> 4; s != 0; s >>= 7 {
		hdr[len(hdr)-1] |= 0x80
		hdr = append(hdr, byte(s&0x7f))
	}
	w.Write(hdr)
	zw, _ := zlib.NewWriterLevel(w, zlib.BestSpeed)
	for n := size; n > 0; n -= int64(len(zero)) {
		zw.Write(zero[:min(n, int64(len(zero)))])
	}
	zw.Close()
	w.Flush()
	stdin.Write(sum.Sum(nil))
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("git index-pack: %v\n%s", err, out.String())
	}
	tree, err := gitIn(ctx, origin, []byte("100644 blob "+blob+"\tbig.bin\n"), "mktree")
	if err != nil {
		return "", err
	}
	c, err := gitIn(ctx, origin, nil, "commit-tree", tree, "-p", parent, "-m", "a big blob")
	if err != nil {
		return "", err
	}
	_, err = gitIn(ctx, origin, nil, "update-ref", "refs/heads/main", c)
	return c, err
}

func gitIn(ctx context.Context, dir string, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), harness.GitEnv()...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func mb(n int64) string { return fmt.Sprintf("%.0f MB", float64(n)/1e6) }
