// Command giteareal runs hookgate's forge reporting against a real Gitea: Gitea built from
// its Go module (code.gitea.io/gitea, from the module proxy), a user, a repository with a
// webhook to hookgate, and a push over Gitea's own git HTTP. Gitea delivers the push to
// hookgate, which deploys the commit and reports it; the script waits until Gitea's API
// shows hookgate's status on the commit, and prints every status Gitea kept for it, the
// deploy, and the reports hookgate recorded.
//
// It is not part of `go test`: building Gitea takes minutes (about 4½ on a 2-core machine,
// 140 MB binary) and the built binary is kept in the user's cache for the next run.
//
//	go run ./scripts/giteareal                  # build Gitea once (cached), then run
//	go run ./scripts/giteareal -gitea BIN       # a Gitea binary you have
//	go run ./scripts/giteareal -keep            # keep the temporary folder and its logs
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hookgate/hookgate/scripts/internal/harness"
)

// giteaVersion is the Gitea release built from the module proxy.
const giteaVersion = "v1.25.4"

const (
	user     = "hookgate"
	repoName = "site"
	hookName = "site"
)

func main() {
	giteaBin := flag.String("gitea", "", "a Gitea binary to use instead of building "+giteaVersion)
	keep := flag.Bool("keep", false, "keep the temporary folder")
	flag.Parse()
	if err := run(*giteaBin, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "giteareal:", err)
		os.Exit(1)
	}
}

func run(giteaBin string, keep bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	dir, done, err := harness.Workdir("giteareal", keep)
	if err != nil {
		return err
	}
	defer done()

	// Built without the bindata tag (which needs Gitea's front-end build), Gitea reads its
	// locales and templates from STATIC_ROOT_PATH: the module's own source, read-only in
	// the module cache.
	assets, err := giteaModule(ctx)
	if err != nil {
		return err
	}
	if giteaBin == "" {
		if giteaBin, err = buildGitea(ctx, assets); err != nil {
			return err
		}
	}
	bin, err := harness.Build(root, dir)
	if err != nil {
		return err
	}

	// Gitea: its config, database, an admin user and two tokens: one with every scope for
	// this script's set-up, one with only write:repository, the scope the README says
	// hookgate needs, which is the one hookgate gets.
	g, err := startGitea(ctx, giteaBin, assets, filepath.Join(dir, "gitea"))
	if err != nil {
		return err
	}
	defer g.stop()
	fmt.Printf("gitea %s at %s\n", giteaVersion, g.url)

	if _, err := g.api(ctx, "POST", "/user/repos", map[string]any{"name": repoName, "default_branch": "main"}, nil); err != nil {
		return fmt.Errorf("create repository: %w", err)
	}

	// The first commit, pushed before hookgate runs: the checkout's starting point.
	work := filepath.Join(dir, "work")
	cloneURL := g.url + user + "/" + repoName + ".git"
	pushURL := strings.Replace(cloneURL, "http://", "http://"+user+":"+g.adminToken+"@", 1)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"commit", "-q", "--allow-empty", "-m", "first"}, {"push", "-q", pushURL, "main"}} {
		if _, err := harness.Git(ctx, work, args...); err != nil {
			return err
		}
	}
	first, err := harness.Git(ctx, work, "rev-parse", "HEAD")
	if err != nil {
		return err
	}

	// hookgate: reports through Gitea with the write:repository token, links to its pages
	// under public_url.
	hookAddr, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	secret := randomHex(16)
	tokenFile := filepath.Join(dir, "gitea.token")
	if err := os.WriteFile(tokenFile, []byte(g.reportToken+"\n"), 0o600); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`[server]
listen = %q
database = %q
public_url = "http://%s"
shutdown_timeout = "10s"

[forges.gitea]
type = "gitea"
api_url = "%sapi/v1"
token_file = %q

[repos.%s]
provider = "gitea"
secret = %q
path = %q
url = %q
branch = "main"
repository = "%s/%s"
report = "gitea"
commands = ["echo deployed $HOOKGATE_COMMIT"]
poll = "0"
`, hookAddr, filepath.Join(dir, "hookgate.db"), hookAddr, g.url, tokenFile, hookName, secret,
		filepath.Join(dir, "checkout"), cloneURL, user, repoName)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	hg, err := harness.Start(bin, []string{"serve", "--config", cfgPath}, hookAddr, filepath.Join(dir, "hookgate.log"))
	if err != nil {
		return err
	}
	defer hg.Stop()

	// The webhook, as a user would add it in Gitea's settings.
	hook := map[string]any{
		"type":   "gitea",
		"active": true,
		"events": []string{"push"},
		"config": map[string]string{"url": "http://" + hookAddr + "/hooks/" + hookName, "content_type": "json", "secret": secret},
	}
	if _, err := g.api(ctx, "POST", "/repos/"+user+"/"+repoName+"/hooks", hook, nil); err != nil {
		return fmt.Errorf("add webhook: %w", err)
	}

	// The push: Gitea delivers it, hookgate deploys and reports.
	if err := os.WriteFile(filepath.Join(work, "index.html"), []byte("<h1>v2</h1>\n"), 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{{"add", "index.html"}, {"commit", "-q", "-m", "v2"}, {"push", "-q", pushURL, "main"}} {
		if _, err := harness.Git(ctx, work, args...); err != nil {
			return err
		}
	}
	sha, err := harness.Git(ctx, work, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	t0 := time.Now()
	fmt.Printf("pushed %s to gitea's main\n", sha[:7])

	type status struct {
		Context     string `json:"context"`
		State       string `json:"status"`
		Description string `json:"description"`
		TargetURL   string `json:"target_url"`
		Created     string `json:"created_at"`
	}
	var statuses []status
	context := "hookgate/" + hookName
	for {
		statuses = nil
		if _, err := g.api(ctx, "GET", "/repos/"+user+"/"+repoName+"/commits/"+sha+"/statuses?sort=oldest", nil, &statuses); err != nil {
			return fmt.Errorf("read statuses: %w", err)
		}
		success := false
		for _, s := range statuses {
			success = success || (s.Context == context && s.State == "success")
		}
		if success {
			break
		}
		if time.Since(t0) > 2*time.Minute {
			log, _ := os.ReadFile(filepath.Join(dir, "hookgate.log"))
			return fmt.Errorf("no success status for %s after 2 minutes; statuses %+v\nhookgate's log:\n%s", context, statuses, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("gitea shows %s success on %s %.1f s after the push; its statuses for the commit, oldest first:\n", context, sha[:7], time.Since(t0).Seconds())
	for _, s := range statuses {
		fmt.Printf("  %s  %-16s %-8s %q  %s\n", s.Created, s.Context, s.State, s.Description, s.TargetURL)
	}

	// Gitea queues its webhook deliveries, so the first push (made before the webhook
	// existed) is sometimes delivered too, and coalesces with the second into one deploy.
	// Whatever hookgate told the first commit must not end pending: it was superseded.
	var firstStatuses []status
	if _, err := g.api(ctx, "GET", "/repos/"+user+"/"+repoName+"/commits/"+first+"/statuses?sort=oldest", nil, &firstStatuses); err != nil {
		return fmt.Errorf("read the first commit's statuses: %w", err)
	}
	if len(firstStatuses) == 0 {
		fmt.Printf("the first commit %s has no status (Gitea did not deliver its push)\n", first[:7])
	} else {
		fmt.Printf("the first commit %s (Gitea delivered its push too, after the webhook was added):\n", first[:7])
		for _, s := range firstStatuses {
			fmt.Printf("  %s  %-16s %-8s %q  %s\n", s.Created, s.Context, s.State, s.Description, s.TargetURL)
		}
		if last := firstStatuses[len(firstStatuses)-1]; last.State == "pending" {
			return fmt.Errorf("the first commit %s is left %s %q", first[:7], last.State, last.Description)
		}
	}

	// What hookgate recorded: the delivery from Gitea, the deploy and its reports.
	var deliveries struct {
		Deliveries []struct {
			ID       int64  `json:"id"`
			Event    string `json:"event"`
			Status   string `json:"status"`
			DeployID *int64 `json:"deploy_id"`
		} `json:"deliveries"`
	}
	if err := getJSON(ctx, "http://"+hookAddr+"/api/v1/deliveries", &deliveries); err != nil {
		return err
	}
	for _, d := range deliveries.Deliveries {
		fmt.Printf("hookgate delivery %d: %s %s\n", d.ID, d.Event, d.Status)
		if d.DeployID == nil {
			continue
		}
		var deploy json.RawMessage
		if err := getJSON(ctx, fmt.Sprintf("http://%s/api/v1/deploys/%d", hookAddr, *d.DeployID), &deploy); err != nil {
			return err
		}
		var shown struct {
			ID      int64           `json:"id"`
			Status  string          `json:"status"`
			To      string          `json:"to_commit"`
			Reports json.RawMessage `json:"reports"`
		}
		if err := json.Unmarshal(deploy, &shown); err != nil {
			return err
		}
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, shown.Reports, "  ", "  ")
		fmt.Printf("hookgate deploy %d: %s to %s; reports:\n  %s\n", shown.ID, shown.Status, shorten(shown.To), pretty.String())
	}
	if log, err := os.ReadFile(filepath.Join(dir, "hookgate.log")); err == nil && bytes.Contains(log, []byte(g.reportToken)) {
		return errors.New("hookgate's log holds the Gitea token")
	}
	return nil
}

func shorten(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// giteaModule downloads Gitea's module at giteaVersion (once: the module cache keeps it)
// and returns its folder.
func giteaModule(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", "code.gitea.io/gitea@"+giteaVersion).Output()
	if err != nil {
		return "", fmt.Errorf("go mod download code.gitea.io/gitea@%s: %w", giteaVersion, err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("go mod download: %s %v", mod.Error, err)
	}
	return mod.Dir, nil
}

// buildGitea builds Gitea's module at giteaVersion into the user's cache folder, once.
// The module's go.mod has replace directives, so `go install pkg@version` refuses it: the
// module is downloaded, copied out of the read-only module cache and built in place, with
// SQLite (cgo) for its database.
func buildGitea(ctx context.Context, module string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(cache, "hookgate-giteareal", "gitea-"+giteaVersion)
	if _, err := os.Stat(bin); err == nil {
		fmt.Println("gitea: cached build", bin)
		return bin, nil
	}
	src, err := os.MkdirTemp("", "gitea-src-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	if out, err := exec.CommandContext(ctx, "cp", "-r", module+"/.", src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("copy gitea's module: %v: %s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "chmod", "-R", "u+w", src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("chmod: %v: %s", err, out)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	fmt.Println("gitea: building", giteaVersion, "from the module proxy (a few minutes)")
	t0 := time.Now()
	build := exec.CommandContext(ctx, "go", "build", "-tags", "sqlite sqlite_unlock_notify", "-o", bin+".tmp", ".")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build gitea: %v\n%s", err, out)
	}
	fmt.Printf("gitea: built in %.0f s\n", time.Since(t0).Seconds())
	return bin, os.Rename(bin+".tmp", bin)
}

type gitea struct {
	cmd         *exec.Cmd
	url         string // http://127.0.0.1:PORT/
	adminToken  string // every scope: this script's set-up
	reportToken string // write:repository: what hookgate gets
	done        chan struct{}
}

func startGitea(ctx context.Context, bin, assets, dir string) (*gitea, error) {
	addr, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(addr, ":")
	conf := filepath.Join(dir, "custom", "conf", "app.ini")
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		return nil, err
	}
	secretKey, internalToken := randomHex(32), randomHex(48)
	ini := fmt.Sprintf(`APP_NAME = giteareal
RUN_MODE = prod
WORK_PATH = %[1]s
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true

[server]
HTTP_ADDR = 127.0.0.1
HTTP_PORT = %[2]s
ROOT_URL = http://127.0.0.1:%[2]s/
DISABLE_SSH = true
OFFLINE_MODE = true
STATIC_ROOT_PATH = %[5]s

[database]
DB_TYPE = sqlite3
PATH = %[1]s/gitea.db

[repository]
ROOT = %[1]s/repositories

[security]
INSTALL_LOCK = true
SECRET_KEY = %[3]s
INTERNAL_TOKEN = %[4]s

[service]
DISABLE_REGISTRATION = true

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[queue]
TYPE = channel

[cron]
ENABLED = false

[webhook]
ALLOWED_HOST_LIST = loopback
DELIVER_TIMEOUT = 10

[log]
MODE = console
LEVEL = Warn
`, dir, port, secretKey, internalToken, assets)
	if err := os.WriteFile(conf, []byte(ini), 0o600); err != nil {
		return nil, err
	}
	giteaCmd := func(args ...string) (string, error) {
		c := exec.CommandContext(ctx, bin, append(args, "--config", conf, "--work-path", dir)...)
		c.Env = append(os.Environ(), "GITEA_WORK_DIR="+dir, "HOME="+dir)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			return "", fmt.Errorf("gitea %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
		}
		// Gitea warns on standard output too (running as root): the answer is the last line.
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return strings.TrimSpace(lines[len(lines)-1]), nil
	}
	if _, err := giteaCmd("migrate"); err != nil {
		return nil, err
	}
	password := randomHex(12)
	if _, err := giteaCmd("admin", "user", "create", "--admin", "--username", user, "--password", password,
		"--email", user+"@example.invalid", "--must-change-password=false"); err != nil {
		return nil, err
	}
	g := &gitea{url: "http://" + addr + "/", done: make(chan struct{})}
	if g.adminToken, err = giteaCmd("admin", "user", "generate-access-token", "--username", user,
		"--token-name", "setup", "--scopes", "all", "--raw"); err != nil {
		return nil, err
	}
	if g.reportToken, err = giteaCmd("admin", "user", "generate-access-token", "--username", user,
		"--token-name", "hookgate", "--scopes", "write:repository", "--raw"); err != nil {
		return nil, err
	}

	logFile, err := os.Create(filepath.Join(dir, "gitea.log"))
	if err != nil {
		return nil, err
	}
	g.cmd = exec.Command(bin, "web", "--config", conf, "--work-path", dir)
	g.cmd.Env = append(os.Environ(), "GITEA_WORK_DIR="+dir, "HOME="+dir)
	g.cmd.Stdout, g.cmd.Stderr = logFile, logFile
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { g.cmd.Wait(); logFile.Close(); close(g.done) }()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := g.api(ctx, "GET", "/version", nil, nil); err == nil {
			return g, nil
		}
		select {
		case <-g.done:
			log, _ := os.ReadFile(logFile.Name())
			return nil, fmt.Errorf("gitea exited before answering:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, errors.New("gitea did not answer within 3 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (g *gitea) stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(20 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
}

// api calls Gitea's REST API as the admin user and decodes the answer into out (when not nil).
func (g *gitea) api(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.url+"api/v1"+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if g.adminToken != "" {
		req.Header.Set("Authorization", "token "+g.adminToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}
