// e2e_test.go owns the end-to-end test of check, serve and send, run in-process.

package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// TestEndToEnd drives check, serve and send in-process: signed push → 202 → checkout at the pushed commit →
// delivery and deploy recorded with the short hash; then a clean SIGTERM shutdown.
func TestEndToEnd(t *testing.T) {
	origin := testkit.NewOrigin(t)
	dir := t.TempDir()
	checkout := filepath.Join(dir, "site")
	addr := freeAddr(t)
	const secret = "e2e-secret-value-1234"
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`
[server]
listen = %q
database = "data/hookgate.db"

[repos.site]
secret = %q
path = "site"
url = %q
branch = "main"
commands = ["echo live $HOOKGATE_COMMIT > ../live.txt"]
timeout = "1m"
`, addr, secret, origin.Bare)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	var check bytes.Buffer
	if err := Run([]string{"check", "--config", cfgPath}, &check, &check); err != 0 || !strings.Contains(check.String(), "not cloned yet") {
		t.Fatalf("check before the first deploy: %v\n%s", err, check.String())
	}

	var logs syncBuffer
	exited := make(chan int, 1)
	go func() { exited <- Run([]string{"serve", "--config", cfgPath}, &logs, &logs) }()
	t.Cleanup(func() {
		select {
		case err := <-exited:
			exited <- err
		default: // still serving: stop it as the test's end would have
			syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
			<-exited
		}
	})
	testkit.Eventually(t, 30*time.Second, "the gateway to answer /healthz", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// Deploy twice: the first clones, the second fast-forwards to a new commit.
	var deployed string
	for round := range 2 {
		want := origin.Commit(map[string]string{"page.html": fmt.Sprintf("round %d\n", round)}, fmt.Sprintf("round %d", round))
		var out bytes.Buffer
		if err := Run([]string{"send", "site", "--config", cfgPath}, &out, &out); err != 0 || !strings.Contains(out.String(), "202 Accepted") {
			t.Fatalf("send: %v\n%s", err, out.String())
		}
		m := regexp.MustCompile(`"delivery_id":(\d+),"deploy_id":(\d+)`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("202 body names no ids: %s", out.String())
		}
		deliveryID, _ := strconv.ParseInt(m[1], 10, 64)
		deployID, _ := strconv.ParseInt(m[2], 10, 64)

		testkit.Eventually(t, 60*time.Second, "the checkout to reach the pushed commit", func() bool {
			_, err := os.Stat(filepath.Join(checkout, ".git"))
			return err == nil && testkit.CheckoutHead(t, checkout) == want
		})
		st, err := store.Open(context.Background(), filepath.Join(dir, "data", "hookgate.db"))
		if err != nil {
			t.Fatal(err)
		}
		var dp store.Deploy
		testkit.Eventually(t, 30*time.Second, "the deploy to be recorded as finished", func() bool {
			dp, err = st.Deploy(context.Background(), deployID)
			return err == nil && dp.Status != store.DeployQueued && dp.Status != store.DeployRunning
		})
		d, err := st.Delivery(context.Background(), deliveryID)
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		if dp.Status != store.DeploySucceeded || dp.ToCommit != want || d.Commit != want[:7] || d.Signature != store.SignatureValid || d.DeployID != deployID {
			t.Fatalf("round %d: deploy %s %q to %s; delivery commit %s signature %s", round, dp.Status, dp.Error, dp.ToCommit, d.Commit, d.Signature)
		}
		live, _ := os.ReadFile(filepath.Join(dir, "live.txt"))
		if strings.TrimSpace(string(live)) != "live "+want {
			t.Fatalf("deploy command did not run with HOOKGATE_COMMIT: %q", live)
		}
		deployed = want
	}

	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != 0 {
			t.Fatalf("gateway exited with %v after SIGTERM\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not stop within 30s of SIGTERM")
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("the secret appears in the gateway's log")
	}
	if !strings.Contains(logs.String(), deployed[:7]) {
		t.Fatalf("the log does not mention the deployed commit:\n%s", logs.String())
	}
}
