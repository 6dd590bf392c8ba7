package main

import (
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/hookgate/hookgate/store"
)

// TestOneGatewayPerSQLiteFile: a second `hookgate serve` on the SQLite file of a running
// gateway, with the same configuration (same port) or on another port, exits at once with
// an error naming the database file and the running gateway's pid, and touches nothing:
// the first gateway's running deploy is not ended or marked interrupted, and completes.
// A gateway that cannot listen (the port is taken) exits before its crash recovery, leaving
// its database as it was. `hookgate db copy` from the file while the gateway holds it is
// refused the same way as a second gateway.
func TestOneGatewayPerSQLiteFile(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	origin := testkit.NewOrigin(t)
	checkout := origin.Clone()
	// Resolved: the refusal names the database by its real path.
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "data", "hookgate.db")
	started, release := filepath.Join(dir, "started"), filepath.Join(dir, "RELEASE")
	t.Cleanup(func() { os.WriteFile(release, nil, 0o644) })
	addr := freeAddr(t)
	token := randomHex(t)
	cfg := fmt.Sprintf(`
[server]
listen = %q
database = %q
admin_token = %q
node = "solo"

[repos.site]
secret = "one-gateway-secret-5d21"
path = %q
branch = "main"
commands = ["echo $HOOKGATE_DEPLOY > %s; while [ ! -f %s ]; do sleep 0.05; done"]
timeout = "2m"
`, addr, dbPath, token, checkout, started, release)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	first := startGateway(t, bin, cfgPath, addr)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/repos/site/deploy", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("manual deploy: %d\n%s", resp.StatusCode, first.logs.String())
	}
	var running int64
	testkit.Eventually(t, 60*time.Second, "the deploy command to run", func() bool {
		b, err := os.ReadFile(started)
		return err == nil && json.Unmarshal([]byte(strings.TrimSpace(string(b))), &running) == nil && running > 0
	})

	pid := strconv.Itoa(first.cmd.Process.Pid)
	refused := func(what string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		took := time.Since(start)
		if err == nil || ctx.Err() != nil {
			t.Fatalf("%s: ended with %v (context: %v), want refused at once\n%s", what, err, ctx.Err(), out)
		}
		if !strings.Contains(string(out), dbPath) || !strings.Contains(string(out), "pid "+pid) {
			t.Fatalf("%s: the refusal does not name the database %s and the gateway's pid %s:\n%s", what, dbPath, pid, out)
		}
		t.Logf("%s refused in %v: %s", what, took.Round(time.Millisecond), strings.TrimSpace(string(out)))
	}
	refused("a second gateway with the same configuration", "serve", "--config", cfgPath)
	otherPort := filepath.Join(dir, "other-port.toml")
	if err := os.WriteFile(otherPort, []byte(strings.Replace(cfg, addr, freeAddr(t), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	refused("a second gateway on another port", "serve", "--config", otherPort)
	// A gateway of another database on the taken port binds before its recovery: its own
	// deploy that a crash left recorded running stays so when it cannot listen.
	ctx := context.Background()
	otherDB := filepath.Join(dir, "other.db")
	crashed, err := store.Open(ctx, otherDB, store.WithNode("solo"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crashed.EnqueueManual(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	cut, err := crashed.ClaimDeploy(ctx, "site")
	if err != nil {
		t.Fatal(err)
	}
	otherFile := filepath.Join(dir, "other-db.toml")
	if err := os.WriteFile(otherFile, []byte(strings.Replace(cfg, dbPath, otherDB, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "serve", "--config", otherFile).CombinedOutput(); err == nil || !strings.Contains(string(out), "address already in use") {
		t.Fatalf("a gateway on a taken port: %v\n%s", err, out)
	}
	if dp, err := crashed.Deploy(ctx, cut.ID); err != nil || dp.Status != store.DeployRunning {
		t.Fatalf("a gateway that could not listen changed its database's running deploy to %q (%v)", dp.Status, err)
	}
	crashed.Close()
	refused("db copy from the gateway's file", "db", "copy", "--from", dbPath, "--to", "postgres://hookgate@127.0.0.1:1/none")

	st, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if dp, err := st.Deploy(ctx, running); err != nil || dp.Status != store.DeployRunning {
		t.Fatalf("the first gateway's deploy is %q after the refused starts, want still running (%v)", dp.Status, err)
	}
	if nodes, err := st.Nodes(ctx); err != nil || len(nodes) != 1 || nodes[0].Name != "solo" {
		t.Fatalf("nodes: %+v %v", nodes, err)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 60*time.Second, "the first gateway's deploy to finish", func() bool {
		dp, err := st.Deploy(ctx, running)
		return err == nil && dp.Status != store.DeployRunning
	})
	if dp, _ := st.Deploy(ctx, running); dp.Status != store.DeploySucceeded {
		t.Fatalf("the first gateway's deploy ended %s: %s\n%s", dp.Status, dp.Error, first.logs.String())
	}
	if err := first.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("the first gateway exited with %v\n%s", err, first.logs.String())
	}
	// Stopped, it holds the file no longer: a gateway starts on it again.
	again := startGateway(t, bin, cfgPath, addr)
	if err := again.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("the restarted gateway exited with %v\n%s", err, again.logs.String())
	}
}
