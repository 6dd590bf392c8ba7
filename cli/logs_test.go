package cli

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// TestLogsFollowsADeploy: `hookgate logs site --follow` prints a running deploy's first
// output while the deploy still waits, the rest once it goes on, exits 0 on success, and
// what it printed is the stored log byte for byte; `hookgate logs site` (no --follow)
// then prints the same, and --deploy of an unknown id fails with the API's refusal.
func TestLogsFollowsADeploy(t *testing.T) {
	const token = "cli-logs-operator-token-0123456789"
	gate := filepath.Join(t.TempDir(), "go-on")
	g := gatewaytest.New(t, gatewaytest.Server(`admin_token = "`+token+`"`),
		gatewaytest.Repos(gatewaytest.Repo{Commands: []string{
			`echo fir""st-line`,
			"while [ ! -f " + gate + " ]; do sleep 0.05; done; echo sec\"\"ond-line",
		}}))
	t.Cleanup(func() { os.WriteFile(gate, nil, 0o644) })
	before := g.Origin["site"].Head()
	after := g.Origin["site"].Commit(map[string]string{"index.html": "v2\n"}, "v2")
	resp, out := g.Send(gatewaytest.Delivery{Body: testkit.Push(t, "refs/heads/main", before, after, gatewaytest.Repository)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push answered %d %v", resp.StatusCode, out)
	}
	id := int64(out["deploy_id"].(float64))

	var stdout, stderr gatewaytest.SyncBuffer
	code := make(chan int, 1)
	go func() { code <- Run([]string{"logs", "site", "--follow", "--config", g.Path}, &stdout, &stderr) }()
	testkit.Eventually(t, 30*time.Second, "the first output printed", func() bool {
		return strings.Contains(stdout.String(), "\nfirst-line\n")
	})
	if dp, err := g.Store.Deploy(context.Background(), id); err != nil || dp.Status != store.DeployRunning {
		t.Fatalf("deploy is %q (%v) when logs printed its first output; want running", dp.Status, err)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("logs --follow exited %d: %s", c, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("logs --follow did not end with the deploy; printed:\n%s", stdout.String())
	}
	dp, err := g.Store.Deploy(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if stdout.String() != dp.Log || !strings.Contains(dp.Log, "\nsecond-line\n") {
		t.Errorf("logs --follow printed\n%q\nwant the stored log\n%q", stdout.String(), dp.Log)
	}
	if !strings.Contains(stderr.String(), "succeeded") {
		t.Errorf("stderr %q does not say how the deploy ended", stderr.String())
	}

	var o, e strings.Builder
	if c := Run([]string{"logs", "site", "--config", g.Path}, &o, &e); c != 0 || o.String() != dp.Log {
		t.Errorf("logs (no --follow) exited %d, printed %q (stderr %q)", c, o.String(), e.String())
	}
	o.Reset()
	e.Reset()
	if c := Run([]string{"logs", "site", "--deploy", "999", "--follow", "--config", g.Path}, &o, &e); c != 1 || !strings.Contains(e.String(), "404") {
		t.Errorf("logs --deploy 999 exited %d, stderr %q", c, e.String())
	}
}
