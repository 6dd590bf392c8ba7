// nodes_test.go owns the test of a repository's nodes list through a running gateway.

package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// TestNodesListDecidesWorkers drives the gateway as node web1 with two repositories:
// "here" (nodes = ["web1"]) and "there" (nodes = ["web2"]).
//   - A push to "there" is verified and recorded by web1: on PostgreSQL, where a node web2
//     that deploys "there" is registered, it is accepted and queues a deploy for web2; on
//     SQLite (one gateway, no web2) it is ignored with the store's reason. Either way web1
//     runs no worker for it: its reconcile is refused with 409 not_deployed_here, nothing
//     is cloned, no deploy of it runs on web1, and web1 registers only "here".
//   - A reload that adds web1 to there's nodes starts its worker (reconcile answers, a push
//     deploys it) and registers "there" at once; one that takes web1 out again stops it.
func TestNodesListDecidesWorkers(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testNodesListDecidesWorkers(t, `database = "data/hookgate.db"`, nil, false)
	})
	if pgtest.Enabled(t) {
		t.Run("postgres", func(t *testing.T) {
			db := pgtest.Database(t)
			st, err := store.Open(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			err = st.RegisterNode(context.Background(), "web2", "v0", []string{"there"})
			st.Close()
			if err != nil {
				t.Fatal(err)
			}
			testNodesListDecidesWorkers(t, `database_env = "HG_TEST_DB"`, []string{"HG_TEST_DB=" + db}, true)
		})
	}
}

func testNodesListDecidesWorkers(t *testing.T, database string, env []string, web2 bool) {
	origin := testkit.NewOrigin(t)
	head := origin.Commit(map[string]string{"app.txt": "v1\n"}, "v1")
	dir := t.TempDir()
	addr := gatewaytest.FreeAddr(t)
	base := "http://" + addr
	const hereSecret, thereSecret, token = "here-s3cret-1111", "there-s3cret-2222", "t0ken-nodes-3333"
	cfgPath := filepath.Join(dir, "config.toml")
	write := func(thereNodes string) {
		t.Helper()
		body := fmt.Sprintf("[server]\nlisten = %q\n%s\nnode = \"web1\"\nadmin_token = %q\n", addr, database, token)
		for _, r := range []struct{ name, secret, nodes string }{{"here", hereSecret, `["web1"]`}, {"there", thereSecret, thereNodes}} {
			body += fmt.Sprintf("\n[repos.%s]\nsecret = %q\npath = %q\nurl = %q\nnodes = %s\ncommands = [\"touch ../%s-ran\"]\ntimeout = \"1m\"\n",
				r.name, r.secret, r.name, origin.Bare, r.nodes, r.name)
		}
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`["web2"]`)
	g := gatewaytest.Start(t, cfgPath, gatewaytest.Env(env...))
	push := testkit.Push(t, "refs/heads/main", strings.Repeat("0", 40), head, "")
	reconcile := func(repo string) (int, string) {
		var out struct{ Error struct{ Code string } }
		code := gatewaytest.API(t, http.MethodPost, base+"/api/v1/repos/"+repo+"/reconcile", token, &out)
		return code, out.Error.Code
	}
	registered := func() []string {
		var out struct {
			Nodes []struct {
				Name  string
				Repos []string
			}
		}
		if code := gatewaytest.API(t, http.MethodGet, base+"/api/v1/nodes", token, &out); code != http.StatusOK || len(out.Nodes) == 0 || out.Nodes[0].Name != "web1" {
			t.Fatalf("GET /api/v1/nodes: %d %+v", code, out)
		}
		return out.Nodes[0].Repos
	}
	ran := func(repo string) bool {
		_, err := os.Stat(filepath.Join(dir, repo+"-ran"))
		return err == nil
	}

	// "there" first, so a worker for it would have had the whole of here's deploy to run.
	there := gatewaytest.Deliver(t, addr, "there", "push", "there-1", push, []byte(thereSecret))
	wantStatus := store.DeliveryIgnored // no node that deploys it is registered
	if web2 {
		wantStatus = store.DeliveryAccepted
	}
	if there.HTTPStatus/100 != 2 || there.Status != wantStatus || (there.DeployID != 0) != web2 {
		t.Fatalf("push to there (deployed by web2 only): %+v, want %s", there, wantStatus)
	}
	here := gatewaytest.Deliver(t, addr, "here", "push", "here-1", push, []byte(hereSecret))
	if here.HTTPStatus != http.StatusAccepted {
		t.Fatalf("push to here: %+v", here)
	}
	testkit.Eventually(t, 60*time.Second, "here's deploy to run", func() bool {
		return ran("here") && testkit.CheckoutHead(t, filepath.Join(dir, "here")) == head
	})
	var got struct {
		Deliveries []struct {
			GUID, Signature, Status, Reason string
		}
	}
	if code := gatewaytest.API(t, http.MethodGet, base+"/api/v1/deliveries?repo=there", token, &got); code != http.StatusOK ||
		len(got.Deliveries) != 1 || got.Deliveries[0].GUID != "there-1" || got.Deliveries[0].Signature != store.SignatureValid ||
		got.Deliveries[0].Status != wantStatus || (!web2 && !strings.Contains(got.Deliveries[0].Reason, "no node deploys this repository")) {
		t.Fatalf("there's delivery as recorded by web1: %d %+v", code, got)
	}
	if code, errCode := reconcile("there"); code != http.StatusConflict || errCode != "not_deployed_here" {
		t.Fatalf("reconcile of there on web1: %d %q, want 409 not_deployed_here (no worker)", code, errCode)
	}
	// A rollback to a named commit is looked up in the checkout, which web1 does not have.
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/repos/there/rollback", strings.NewReader(`{"commit":"`+head+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(raw), "not_deployed_here") {
		t.Fatalf("rollback of there on web1: %d %s, want 409 not_deployed_here", resp.StatusCode, raw)
	}
	// Unpin lifts a pin for every node; the check of origin is left to the nodes that deploy.
	var unpin struct{ Reason string }
	if code := gatewaytest.API(t, http.MethodPost, base+"/api/v1/repos/there/unpin", token, &unpin); code != http.StatusOK ||
		!strings.Contains(unpin.Reason, "this node does not deploy") {
		t.Fatalf("unpin of there on web1: %d %+v, want 200 saying this node does not deploy it", code, unpin)
	}
	if code, _ := reconcile("here"); code != http.StatusOK {
		t.Fatalf("reconcile of here on web1: %d, want 200", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "there")); !os.IsNotExist(err) || ran("there") {
		t.Fatalf("web1 cloned or deployed there, which it does not deploy (stat: %v)", err)
	}
	if web2 {
		var dp struct{ Node, Status string }
		gatewaytest.API(t, http.MethodGet, fmt.Sprintf("%s/api/v1/deploys/%d", base, there.DeployID), token, &dp)
		if dp.Node != "web2" || dp.Status != store.DeployQueued {
			t.Fatalf("there's deploy %d: node %q, %s; want web2's, queued (web2 is not running)", there.DeployID, dp.Node, dp.Status)
		}
	}
	if repos := registered(); !slices.Equal(repos, []string{"here"}) {
		t.Fatalf("web1 registered %v, want [here]", repos)
	}

	// web1 joins there's nodes: its worker starts, and the nodes table says so at once.
	write(`["web2", "web1"]`)
	var rep struct {
		Changes struct{ Added, Removed, Changed []string }
	}
	if code := gatewaytest.API(t, http.MethodPost, base+"/api/v1/reload", token, &rep); code != http.StatusOK ||
		!slices.Equal(rep.Changes.Changed, []string{"there"}) || len(rep.Changes.Added)+len(rep.Changes.Removed) != 0 {
		t.Fatalf("reload adding web1 to there's nodes: %d %+v", code, rep)
	}
	if repos := registered(); !slices.Equal(repos, []string{"here", "there"}) {
		t.Fatalf("after the reload web1 registered %v, want [here there]", repos)
	}
	if code, _ := reconcile("there"); code != http.StatusOK {
		t.Fatalf("reconcile of there after web1 joined its nodes: %d, want 200", code)
	}
	newer := origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	if a := gatewaytest.Deliver(t, addr, "there", "push", "there-2", testkit.Push(t, "refs/heads/main", head, newer, ""), []byte(thereSecret)); a.HTTPStatus != http.StatusAccepted {
		t.Fatalf("second push to there: %+v", a)
	}
	testkit.Eventually(t, 60*time.Second, "web1 to deploy there", func() bool {
		_, err := os.Stat(filepath.Join(dir, "there", ".git"))
		return err == nil && ran("there") && testkit.CheckoutHead(t, filepath.Join(dir, "there")) == newer
	})

	// And out again: the worker stops, the registration follows.
	write(`["web2"]`)
	if code := gatewaytest.API(t, http.MethodPost, base+"/api/v1/reload", token, &rep); code != http.StatusOK {
		t.Fatalf("reload taking web1 out of there's nodes: %d", code)
	}
	if code, errCode := reconcile("there"); code != http.StatusConflict || errCode != "not_deployed_here" {
		t.Fatalf("reconcile of there after web1 left its nodes: %d %q, want 409 not_deployed_here", code, errCode)
	}
	if repos := registered(); !slices.Equal(repos, []string{"here"}) {
		t.Fatalf("after leaving there's nodes web1 registered %v, want [here]", repos)
	}
	if err := g.Stop(); err != nil {
		t.Fatalf("gateway exited with %v\n%s", err, g.Logs.String())
	}
}
