package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// tagGateway is the real gateway, workers running, with one tag target, prod (tags v*,
// mode reset, as a target whose tags may be on several lines needs), cloned from origin
// on its first deploy; with a health check (withHealth) of a service that is healthy while
// the checkout's health.txt says "ok"; and origin with v1.0.0 on a release line
// (release-1.0, not in main's history) and v1.1.0 (annotated) on main. It returns their
// commits.
func tagGateway(t *testing.T, withHealth bool) (g *gateway, origin *testkit.Origin, v100, v110 string) {
	t.Helper()
	origin = testkit.NewOrigin(t)
	base := origin.Head()
	testkit.Git(t, origin.Seed, "checkout", "-q", "-b", "release-1.0", base)
	origin.Branch = "release-1.0"
	v100 = origin.Commit(map[string]string{"app.txt": "1.0\n", "health.txt": "ok\n"}, "release 1.0")
	origin.Tag("v1.0.0", v100)
	testkit.Git(t, origin.Seed, "checkout", "-q", "main")
	origin.Branch = "main"
	v110 = origin.Commit(map[string]string{"app.txt": "1.1\n", "health.txt": "broken\n"}, "release 1.1")
	origin.AnnotatedTag("v1.1.0", v110, "1.1")

	dir := t.TempDir()
	health := ""
	if withHealth {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if b, _ := os.ReadFile(filepath.Join(dir, "prod", "health.txt")); string(b) != "ok\n" {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}))
		t.Cleanup(srv.Close)
		health = fmt.Sprintf("\n[repos.prod.health]\nurl = %q\ninterval = \"20ms\"\ndeadline = \"500ms\"\n", srv.URL)
	}
	cfg := gatewaytest.WriteConfig(t, fmt.Sprintf(`[server]
listen = %q
database = %q
node = %q

[repos.prod]
secret = %q
url = %q
path = %q
tags = "v*"
mode = "reset"
%s`, gatewaytest.FreeAddr(t), filepath.Join(dir, "hookgate.db"), testNode, secret, origin.Bare, filepath.Join(dir, "prod"), health))
	gw := gatewaytest.Start(t, cfg)
	g = &gateway{t: t, store: gw.Store, database: gw.Database, url: gw.URL, srv: gw.G.Server(), mgr: gw.G.Manager(), checkout: filepath.Join(dir, "prod")}
	return g, origin, v100, v110
}

// errMessage is the message of an error answer, "" for another answer.
func errMessage(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

// deployTagPush sends a signed push of refs/tags/tag to prod and waits for its deploy.
func (g *gateway) deployTagPush(tag, commit string) store.Deploy {
	g.t.Helper()
	resp, out := g.send(delivery{path: "/hooks/prod", event: "push", guid: gatewaytest.NewGUID(),
		body: testkit.Push(g.t, "refs/tags/"+tag, "", commit, "octo/shop")})
	if resp.StatusCode != http.StatusAccepted {
		g.t.Fatalf("push of %s: %d %v", tag, resp.StatusCode, out)
	}
	return g.waitDeploy(id(out["deploy_id"]))
}

// TestTagTargetRollbackAndPinThroughTheAPI: a tag target rolls back, through the API, to
// the commit live before the live one (without a body) though it is on another line than
// the live tag's, to a commit named by hash, and to a tag named by its name (an annotated
// tag to the commit it points to); a pin takes a tag name too; a name that is neither a
// tag deployed here nor a commit is refused, saying so.
func TestTagTargetRollbackAndPinThroughTheAPI(t *testing.T) {
	g, _, v100, v110 := tagGateway(t, false)
	for _, c := range []struct{ tag, commit string }{{"v1.0.0", v100}, {"v1.1.0", v110}} {
		if dp := g.deployTagPush(c.tag, c.commit); dp.Status != store.DeploySucceeded || dp.ToCommit != c.commit {
			t.Fatalf("deploy of %s: %s %s, to %s\n%s", c.tag, dp.Status, dp.Error, dp.ToCommit, dp.Log)
		}
	}
	rollback := func(body, want string) {
		t.Helper()
		code, out := g.post("/api/v1/repos/prod/rollback", body)
		if code != http.StatusAccepted || out["commit"] != want {
			t.Fatalf("rollback %s: %d %v; want 202 to %s", body, code, out, want)
		}
		dp := g.waitDeploy(id(out["deploy_id"]))
		if dp.Status != store.DeploySucceeded || testkit.CheckoutHead(t, g.checkout) != want {
			t.Fatalf("rollback %s: %s %s, HEAD %s; want %s\n%s", body, dp.Status, dp.Error, testkit.CheckoutHead(t, g.checkout), want, dp.Log)
		}
	}
	rollback("", v100) // the commit live before v1.1.0's: v1.0.0's, on release-1.0
	rollback(`{"commit": "`+v110[:9]+`"}`, v110)
	rollback(`{"commit": "v1.0.0"}`, v100)
	rollback(`{"commit": "refs/tags/v1.1.0"}`, v110) // annotated: its commit, not the tag object

	code, out := g.post("/api/v1/repos/prod/pin", `{"commit": "v1.0.0"}`)
	if pin, _ := out["pinned"].(map[string]any); code != http.StatusOK || pin["commit"] != v100 {
		t.Fatalf("pin v1.0.0: %d %v; want pinned at %s", code, out, v100)
	}
	for body, want := range map[string]string{
		`{"commit": "v9.9.9"}`: `"v9.9.9" is neither a tag deployed here before nor a commit hash`,
		`{"commit": "0123456789abcdef0123456789abcdef01234567"}`: "is not a tag deployed here before nor a commit in the history of the live commit or of those tags",
	} {
		code, out := g.post("/api/v1/repos/prod/rollback", body)
		msg := errMessage(out)
		if code != http.StatusUnprocessableEntity || errCode(out) != "unknown_commit" || !strings.Contains(msg, want) {
			t.Errorf("rollback %s: %d %v; want 422 unknown_commit saying %q", body, code, out, want)
		}
	}
}

// TestTagTargetManualDeployOfABadTag: when origin's newest tag points to a commit that
// failed its health check on a tag target, "Deploy now" is refused (409 bad_commit, as for
// a branch target's bad head) unless forced, and forced it deploys that commit.
func TestTagTargetManualDeployOfABadTag(t *testing.T) {
	g, _, v100, v110 := tagGateway(t, true)
	if dp := g.deployTagPush("v1.0.0", v100); dp.Status != store.DeploySucceeded {
		t.Fatalf("v1.0.0: %s %s\n%s", dp.Status, dp.Error, dp.Log)
	}
	if dp := g.deployTagPush("v1.1.0", v110); dp.Status != store.DeployFailed || dp.ToCommit != v110 {
		t.Fatalf("v1.1.0: %s %s to %s; want its check to fail", dp.Status, dp.Error, dp.ToCommit)
	}
	testkit.Eventually(t, 30*time.Second, "the automatic rollback to v1.0.0", func() bool {
		dps, err := g.store.ListDeploys(context.Background(), store.DeployFilter{Repo: "prod", Trigger: store.TriggerAutoRollback})
		return err == nil && len(dps) == 1 && dps[0].Status == store.DeploySucceeded
	})
	code, out := g.post("/api/v1/repos/prod/deploy", "")
	msg := errMessage(out)
	if code != http.StatusConflict || errCode(out) != "bad_commit" || !strings.Contains(msg, "commit "+v110[:7]+" failed its health check") {
		t.Fatalf("deploy now with v1.1.0 bad: %d %v; want 409 bad_commit", code, out)
	}
	code, out = g.post("/api/v1/repos/prod/deploy", `{"force": true}`)
	if code != http.StatusAccepted {
		t.Fatalf("forced deploy: %d %v", code, out)
	}
	if dp := g.waitDeploy(id(out["id"])); dp.ToCommit != v110 || dp.Status == store.DeploySkipped {
		t.Fatalf("forced deploy: %s to %s %q; want it to deploy %s", dp.Status, dp.ToCommit, dp.Error, v110)
	}
}
