package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
)

// environProbe are deploy commands that report, in files under dir, the pid of their
// parent (the gateway: sh -c is its child) and whether they can read its environment, and,
// as a control, their own. The file result appears last, whole (a rename).
func environProbe(dir string) string {
	return fmt.Sprintf(`["echo $PPID > %[1]s/ppid; id -u > %[1]s/uid; cat /proc/$$/environ > %[1]s/own; if cat /proc/$PPID/environ > %[1]s/stolen 2>&1; then echo read; else echo refused; fi > %[1]s/result.tmp; mv %[1]s/result.tmp %[1]s/result"]`, dir)
}

// runProbe starts the gateway (as cred's user when cred is not nil), asks for a deploy of
// site through the API and returns what environProbe found.
func runProbe(t *testing.T, bin, cfgPath, addr, out, token string, cred *syscall.Credential, env ...string) (ppid, uid, result string, gw *gatewayProc) {
	t.Helper()
	gw = startGatewayAs(t, bin, cfgPath, addr, cred, env...)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/repos/site/deploy", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("manual deploy: %d\n%s", resp.StatusCode, gw.logs.String())
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/deploys", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			t.Logf("deploys: %s", b.String())
		}
		t.Logf("gateway log:\n%s", gw.logs.String())
	})
	testkit.Eventually(t, 60*time.Second, "the deploy command to report", func() bool {
		_, err := os.Stat(filepath.Join(out, "result"))
		return err == nil
	})
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	own := read("own")
	if !strings.Contains(own, "HOOKGATE_REPO=site") {
		t.Fatalf("the control failed: the command could not read its own environment: %q", own)
	}
	if got := read("ppid"); got != strconv.Itoa(gw.cmd.Process.Pid) {
		t.Fatalf("the command's parent is %s, not the gateway (%d)", got, gw.cmd.Process.Pid)
	}
	if stolen := read("stolen"); strings.Contains(stolen, token) {
		t.Errorf("the deploy command read the admin token from the gateway's /proc/PID/environ")
	}
	return read("ppid"), read("uid"), read("result"), gw
}

// chownTree gives everything under dir to u, links themselves included.
func chownTree(t *testing.T, dir string, u testkit.User) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(u.UID), int(u.GID))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGatewayEnvironmentIsClosed: the gateway makes itself non-dumpable, so a deploy
// command running as the gateway's own user cannot read /proc/<gateway>/environ, where the
// admin token is. Non-dumpable does not stop root, so when the test runs as root (as in
// CI) the gateway runs as a test user made for it; otherwise as the test's user.
func TestGatewayEnvironmentIsClosed(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	var cred *syscall.Credential
	var owner *testkit.User
	if os.Geteuid() == 0 {
		u := testkit.NewUser(t)
		owner, cred = &u, &syscall.Credential{Uid: u.UID, Gid: u.GID}
		testkit.Reachable(t, bin)
	}
	origin := testkit.NewOrigin(t)
	checkout := origin.Clone()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	token := randomHex(t)
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`
[server]
listen = %q
database = %q
admin_token_env = "ENVIRON_TEST_ADMIN_TOKEN"

[repos.site]
secret = "environ-test-secret"
path = %q
commands = %s
`, addr, filepath.Join(dir, "data", "hookgate.db"), checkout, environProbe(out))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if owner != nil {
		testkit.Reachable(t, checkout)
		testkit.Reachable(t, origin.Bare)
		testkit.Reachable(t, dir)
		chownTree(t, filepath.Dir(checkout), *owner)
		chownTree(t, filepath.Dir(origin.Bare), *owner)
		chownTree(t, dir, *owner)
	}
	_, uid, result, _ := runProbe(t, bin, cfgPath, addr, out, token, cred, "ENVIRON_TEST_ADMIN_TOKEN="+token)
	if owner != nil {
		if want := strconv.Itoa(int(owner.UID)); uid != want {
			t.Fatalf("the command ran as uid %s, want the gateway's %s", uid, want)
		}
	}
	if result != "refused" {
		t.Fatalf("a deploy command running as the gateway's user read the gateway's /proc/PID/environ (%s)", result)
	}
}

// TestRunAsConfig: with [server] run_as, the real gateway, running as root, runs deploy
// commands as that user, who cannot read the gateway's environment even though root can
// read anyone's; a repository's own run_as overrides the default. Needs root.
func TestRunAsConfig(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	u := testkit.NewUser(t)
	origin := testkit.NewOrigin(t)
	checkout := origin.Clone()
	testkit.Reachable(t, checkout)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	testkit.Reachable(t, out)
	addr := freeAddr(t)
	token := randomHex(t)
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`
[server]
listen = %q
database = %q
admin_token_env = "RUNAS_TEST_ADMIN_TOKEN"
run_as = "root"

[repos.site]
secret = "run-as-test-secret"
path = %q
commands = %s
run_as = %q

[repos.other]
secret = "run-as-test-secret"
path = %q
`, addr, filepath.Join(dir, "data", "hookgate.db"), checkout, environProbe(out), u.Name, origin.Clone())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var check bytes.Buffer
	cmd := exec.Command(bin, "check", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "RUNAS_TEST_ADMIN_TOKEN="+token)
	cmd.Stdout, cmd.Stderr = &check, &check
	if err := cmd.Run(); err != nil {
		t.Fatalf("check: %v\n%s", err, check.String())
	}
	if !strings.Contains(check.String(), "run as "+u.Name) {
		t.Errorf("check does not say whom site's commands run as:\n%s", check.String())
	}
	_, uid, result, _ := runProbe(t, bin, cfgPath, addr, out, token, nil, "RUNAS_TEST_ADMIN_TOKEN="+token)
	if uid != strconv.Itoa(int(u.UID)) {
		t.Fatalf("the command ran as uid %s, want %s's %d", uid, u.Name, u.UID)
	}
	if result != "refused" {
		t.Fatalf("a deploy command running as %s read the gateway's /proc/PID/environ (%s)", u.Name, result)
	}
}

// TestCheckRefusesRunAs: check (and so serve) refuses a run_as user that does not exist,
// and, run by a user who cannot switch users, a run_as it could not honour, each with a
// message that names the key and says what to do.
func TestCheckRefusesRunAs(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, serverRunAs, repoRunAs string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		cfg := fmt.Sprintf("[server]\nrun_as = %q\n\n[repos.site]\nsecret = \"s\"\npath = %q\nrun_as = %q\n", serverRunAs, dir, repoRunAs)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(cfg, "run_as = \"\"\n", "")), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	check := func(cfgPath string, cred *syscall.Credential) (int, string) {
		t.Helper()
		var out bytes.Buffer
		cmd := exec.Command(bin, "check", "--config", cfgPath)
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		err := cmd.Run()
		if exit, ok := err.(*exec.ExitError); ok {
			return exit.ExitCode(), out.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, out.String()
	}
	for _, c := range []struct{ name, server, repo, want string }{
		{"server.toml", "no-such-user-hg", "", `server.run_as: run_as = "no-such-user-hg": no such user on this system`},
		{"repo.toml", "", "no-such-user-hg", `repos.site.run_as: run_as = "no-such-user-hg": no such user on this system`},
	} {
		code, out := check(write(c.name, c.server, c.repo), nil)
		if code != 1 || !strings.Contains(out, c.want) {
			t.Errorf("check with %s: exit %d, want 1 and %q:\n%s", c.name, code, c.want, out)
		}
	}
	if os.Geteuid() != 0 {
		return // the test user below is made by root
	}
	u := testkit.NewUser(t)
	testkit.Reachable(t, bin)
	testkit.Reachable(t, dir)
	code, out := check(write("other.toml", "root", ""), &syscall.Credential{Uid: u.UID, Gid: u.GID})
	if want := `server.run_as: run_as = "root": running commands as another user needs the gateway to run as root, and this process runs as uid ` + strconv.Itoa(int(u.UID)); code != 1 || !strings.Contains(out, want) {
		t.Errorf("check by %s of run_as = root: exit %d, want 1 and %q:\n%s", u.Name, code, want, out)
	}
}
