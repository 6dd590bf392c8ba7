package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// nodeFixture is a repository deployed by three nodes, written straight through their
// stores so that no worker of the test gateway is woken: the gateway's own node (gw-test)
// has head live; web2 has c0 live, a deploy running and one queued; web3 deploys site and
// never ran it. All three are registered.
type nodeFixture struct {
	head, c0         string
	running, queued  int64
	gwLive, web2Live int64 // the succeeded deploys
}

func newNodeFixture(t *testing.T, g *gateway) nodeFixture {
	t.Helper()
	ctx := context.Background()
	web2, err := store.Open(ctx, g.database, store.WithNode("web2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { web2.Close() })
	// gw-test's own deploy through a store of its own: the gateway's store tells its
	// subscriber, which would wake gw-test's worker.
	gw, err := store.Open(ctx, g.database, store.WithNode(testNode))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	f := nodeFixture{head: testkit.CheckoutHead(t, g.checkout)}
	f.c0 = g.origin.Commit(map[string]string{"c0.txt": "0\n"}, "c0")
	finish := func(s *store.Store, commit string) int64 {
		t.Helper()
		if _, err := s.EnqueueManual(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		dp, err := s.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if commit != "" {
			if err := s.FinishDeploy(ctx, dp.ID, store.Result{Status: store.DeploySucceeded, ToCommit: commit}); err != nil {
				t.Fatal(err)
			}
		}
		return dp.ID
	}
	f.web2Live = finish(web2, f.c0)
	f.running = finish(web2, "")
	// gw-test's deploy finishes while web2's runs: the newest finished deploy is not the
	// running one.
	f.gwLive = finish(gw, f.head)
	q, err := web2.EnqueueManual(ctx, "site")
	if err != nil {
		t.Fatal(err)
	}
	f.queued = q.ID
	// Registered last: once nodes are registered, a new deploy goes to the nodes that
	// deploy the repository (on PostgreSQL) rather than to the store's own node.
	for _, n := range []string{testNode, "web2", "web3"} {
		if err := g.store.RegisterNode(ctx, n, "v1.5.0", []string{"site"}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// TestAPIRepoNodes: GET /api/v1/repos and GET /api/v1/repos/:name give, per repository,
// "nodes": each node that deploys it or ran it, by name, with its live commit and its
// running and queued deploy ids (null when none); [] before any; an unknown name is a
// 404 unknown_repo.
func TestAPIRepoNodes(t *testing.T) {
	g := newGateway(t)
	var list struct {
		Repos []map[string]any `json:"repos"`
	}
	if code := g.api("GET", "/api/v1/repos", "", &list); code != 200 || len(list.Repos) != 1 {
		t.Fatalf("repos: %d %v", code, list)
	}
	if nodes, ok := list.Repos[0]["nodes"].([]any); !ok || len(nodes) != 0 {
		t.Fatalf("nodes before any deploy: %#v, want []", list.Repos[0]["nodes"])
	}
	var e map[string]map[string]string
	if code := g.api("GET", "/api/v1/repos/nope", "", &e); code != http.StatusNotFound || e["error"]["code"] != "unknown_repo" {
		t.Fatalf("unknown repository: %d %v", code, e)
	}

	f := newNodeFixture(t, g)
	null := any(nil)
	want := []map[string]any{
		{"node": testNode, "live_commit": f.head, "running_deploy_id": null, "queued_deploy_id": null, "down_since": null},
		{"node": "web2", "live_commit": f.c0, "running_deploy_id": float64(f.running), "queued_deploy_id": float64(f.queued), "down_since": null},
		{"node": "web3", "live_commit": "", "running_deploy_id": null, "queued_deploy_id": null, "down_since": null},
	}
	check := func(where string, got any) {
		t.Helper()
		nodes, ok := got.([]any)
		if !ok || len(nodes) != len(want) {
			t.Fatalf("%s: nodes %#v, want %v", where, got, want)
		}
		for i, n := range nodes {
			m, _ := n.(map[string]any)
			// Every key present, ids null rather than left out.
			if len(m) != len(want[i]) || fmt.Sprint(m) != fmt.Sprint(want[i]) {
				t.Fatalf("%s: node %d is %#v, want %v", where, i, n, want[i])
			}
		}
	}
	if code := g.api("GET", "/api/v1/repos", "", &list); code != 200 {
		t.Fatalf("repos: %d", code)
	}
	check("GET /api/v1/repos", list.Repos[0]["nodes"])
	var one map[string]any
	if code := g.api("GET", "/api/v1/repos/site", "", &one); code != 200 || one["name"] != "site" {
		t.Fatalf("repos/site: %d %v", code, one)
	}
	check("GET /api/v1/repos/site", one["nodes"])
	// The one repository reads as it does in the list.
	if fmt.Sprint(one) != fmt.Sprint(list.Repos[0]) {
		t.Fatalf("repos/site differs from its entry in the list:\n%v\n%v", one, list.Repos[0])
	}
}

// TestReposPageShowsEachNode: one gateway on its own sees the repositories page as before
// (one live commit, linked to its deploy); in a fleet, each node's live commit and its
// running and queued deploys, and the row keeps polling while any node has one.
func TestReposPageShowsEachNode(t *testing.T) {
	g := newGateway(t)
	ctx := context.Background()
	gw1, err := store.Open(ctx, g.database, store.WithNode(testNode)) // wakes no worker of g
	if err != nil {
		t.Fatal(err)
	}
	defer gw1.Close()
	if _, err := gw1.EnqueueManual(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	dp, err := gw1.ClaimDeploy(ctx, "site")
	if err != nil {
		t.Fatal(err)
	}
	head := testkit.CheckoutHead(t, g.checkout)
	if err := gw1.FinishDeploy(ctx, dp.ID, store.Result{Status: store.DeploySucceeded, ToCommit: head}); err != nil {
		t.Fatal(err)
	}
	if err := g.store.RegisterNode(ctx, testNode, "v1.5.0", []string{"site"}); err != nil {
		t.Fatal(err)
	}
	alone := okPage(t, g.url, "/repos")
	wellFormed(t, alone)
	if want := fmt.Sprintf(`<td data-label="Live"><a href="/deploys/%d"><code title="%s">%s</code></a>`, dp.ID, head, head[:7]); !strings.Contains(alone, want) {
		t.Fatalf("a lone gateway's repositories page lacks %q:\n%s", want, alone)
	}
	if strings.Contains(alone, `<ul class="nodes">`) {
		t.Fatalf("a lone gateway's repositories page lists nodes")
	}

	g2 := newGateway(t)
	f := newNodeFixture(t, g2)
	body := okPage(t, g2.url, "/repos")
	wellFormed(t, body)
	for _, want := range []string{
		`<li data-node="` + testNode + `"><span class="node">` + testNode + `</span> <code title="` + f.head + `">` + f.head[:7] + `</code></li>`,
		fmt.Sprintf(`<li data-node="web2"><span class="node">web2</span> <code title="%s">%s</code> <a href="/deploys/%d">#%d</a> <span class="badge tone-busy">running</span> <a href="/deploys/%d">#%d</a> <span class="badge tone-busy">queued</span></li>`,
			f.c0, f.c0[:7], f.running, f.running, f.queued, f.queued),
		`<li data-node="web3"><span class="node">web3</span> <span class="muted">nothing live</span></li>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("repositories page lacks %q", want)
		}
	}
	if got := regexp.MustCompile(`<li data-node="([^"]+)"`).FindAllStringSubmatch(body, -1); len(got) != 3 ||
		got[0][1] != testNode || got[1][1] != "web2" || got[2][1] != "web3" {
		t.Errorf("nodes listed %v, want gw-test, web2, web3 in that order", got)
	}
	if !regexp.MustCompile(`<tr [^>]*data-live="repo-site" data-active>`).MatchString(body) {
		t.Errorf("web2's running and queued deploys do not keep the row polling")
	}

	// Another node's deploy still running, older than this node's finished one, with
	// nothing queued: the row polls until it ends.
	ctx = context.Background()
	g3 := newGateway(t)
	web2, err := store.Open(ctx, g3.database, store.WithNode("web2"))
	if err != nil {
		t.Fatal(err)
	}
	defer web2.Close()
	gw, err := store.Open(ctx, g3.database, store.WithNode(testNode)) // wakes no worker of g3
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	for _, s := range []*store.Store{web2, gw} {
		if _, err := s.EnqueueManual(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		if dp, err = s.ClaimDeploy(ctx, "site"); err != nil {
			t.Fatal(err)
		}
	}
	if err := g3.store.FinishDeploy(ctx, dp.ID, store.Result{Status: store.DeploySucceeded, ToCommit: head}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{testNode, "web2"} {
		if err := g3.store.RegisterNode(ctx, n, "v1.5.0", []string{"site"}); err != nil {
			t.Fatal(err)
		}
	}
	if body := okPage(t, g3.url, "/repos"); !regexp.MustCompile(`<tr [^>]*data-live="repo-site" data-active>`).MatchString(body) {
		t.Errorf("web2's running deploy does not keep the row polling:\n%s", body)
	}
}

// TestNodesPage: /nodes lists every registered gateway by name with its status (up, or
// down after three silent heartbeats), version, start, last heartbeat and repositories,
// escaped; the nav links to it on every page.
func TestNodesPage(t *testing.T) {
	g := newGateway(t)
	ctx := context.Background()
	empty := okPage(t, g.url, "/nodes")
	wellFormed(t, empty)
	if !strings.Contains(empty, "No gateway has registered with this database yet.") {
		t.Fatalf("an empty nodes page does not say so:\n%s", empty)
	}

	g.store.SetNow(func() time.Time { return time.Now().UTC().Add(-4 * store.HeartbeatEvery) })
	if err := g.store.RegisterNode(ctx, "web2", "v1.4.0", []string{"blog"}); err != nil {
		t.Fatal(err)
	}
	g.store.SetNow(func() time.Time { return time.Now().UTC() })
	if err := g.store.RegisterNode(ctx, "web1", `v1.5.0 <b>"dev"</b>`, []string{"site", `a<script>x</script>`}); err != nil {
		t.Fatal(err)
	}
	resp, body := page(t, g.url, "/nodes")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != "default-src 'self'; style-src 'self'; script-src 'self'" {
		t.Fatalf("GET /nodes: %d %v", resp.StatusCode, resp.Header)
	}
	wellFormed(t, body)
	row := func(name string) string {
		m := regexp.MustCompile(`(?s)<tr class="[^"]*" data-node="` + name + `">.*?</tr>`).FindString(body)
		if m == "" {
			t.Fatalf("no row for %s:\n%s", name, body)
		}
		return m
	}
	web1, web2 := row("web1"), row("web2")
	for _, want := range []string{`class="tone-ok"`, `<span class="badge tone-ok">up</span>`,
		`<code>v1.5.0 &lt;b&gt;&#34;dev&#34;&lt;/b&gt;</code>`, `<a href="/?repo=site">site</a>, `,
		`<a href="/?repo=a%3cscript%3ex%3c%2fscript%3e">a&lt;script&gt;x&lt;/script&gt;</a>`, `>just now</time>`} {
		if !strings.Contains(web1, want) {
			t.Errorf("web1's row lacks %q:\n%s", want, web1)
		}
	}
	for _, want := range []string{`class="tone-bad"`, `<span class="badge tone-bad">down</span>`, `<a href="/?repo=blog">blog</a>`} {
		if !strings.Contains(web2, want) {
			t.Errorf("web2's row lacks %q:\n%s", want, web2)
		}
	}
	// Its last heartbeat was 40 s before the page (a loaded machine may take a moment more).
	if !regexp.MustCompile(`>4\d s ago</time>`).MatchString(web2) {
		t.Errorf("web2's row does not say it was last seen about 40 s ago:\n%s", web2)
	}
	if strings.Index(body, `data-node="web1"`) > strings.Index(body, `data-node="web2"`) {
		t.Errorf("nodes are not listed by name")
	}
	if strings.Contains(body, "<script>x") || strings.Contains(body, `<b>"dev"`) {
		t.Errorf("the nodes page shows a registered value unescaped")
	}
	if !strings.Contains(body, `1 down`) || !strings.Contains(body, `<a href="/nodes" aria-current="page">Nodes</a>`) {
		t.Errorf("the nodes page lacks its down count or its current nav entry")
	}
	if !strings.Contains(okPage(t, g.url, "/"), `<a href="/nodes">Nodes</a>`) {
		t.Errorf("the history's nav does not link to the nodes page")
	}
}

// TestHistoryShowsEachNode: a delivery's deploy is shown as before by a lone gateway; once
// several nodes work the database, the history and the delivery page name the node of
// each deploy beside its status.
func TestHistoryShowsEachNode(t *testing.T) {
	g := newGateway(t)
	ctx := context.Background()
	after := g.origin.Commit(map[string]string{"v.txt": "1\n"}, "one")
	resp, out := g.send(delivery{event: "push", guid: "fleet-push-1", body: testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d %v", resp.StatusCode, out)
	}
	pushID, deployID := id(out["delivery_id"]), id(out["deploy_id"])
	g.waitDeploy(deployID)
	if err := g.store.RegisterNode(ctx, testNode, "v1.5.0", []string{"site"}); err != nil {
		t.Fatal(err)
	}

	row := func(body string) string {
		t.Helper()
		m := regexp.MustCompile(fmt.Sprintf(`(?s)<tr [^>]*data-id="%d".*?</tr>`, pushID)).FindString(body)
		if m == "" {
			t.Fatalf("no row for delivery %d:\n%s", pushID, body)
		}
		return m
	}
	alone := okPage(t, g.url, "/")
	wellFormed(t, alone)
	if r := row(alone); !strings.Contains(r, fmt.Sprintf(`<a href="/deploys/%d" class="badge tone-ok" title="deploy #%d">succeeded</a>`, deployID, deployID)) ||
		strings.Contains(r, `class="nodes"`) {
		t.Fatalf("a lone gateway's history row changed:\n%s", r)
	}
	if d := okPage(t, g.url, fmt.Sprintf("/deliveries/%d", pushID)); strings.Contains(d, "<dt>Deploys</dt>") {
		t.Fatalf("a lone gateway's delivery page lists deploys per node")
	}

	if err := g.store.RegisterNode(ctx, "web2", "v1.5.0", []string{"blog"}); err != nil {
		t.Fatal(err)
	}
	nodeDeploy := fmt.Sprintf(`<li><span class="node">%s</span> <a href="/deploys/%d" class="badge tone-ok" title="deploy #%d on %s">succeeded</a></li>`,
		testNode, deployID, deployID, testNode)
	fleet := okPage(t, g.url, "/")
	wellFormed(t, fleet)
	if r := row(fleet); !strings.Contains(r, nodeDeploy) || !strings.Contains(r, `<tr class="tone-ok"`) {
		t.Fatalf("history row in a fleet lacks %q:\n%s", nodeDeploy, r)
	}
	d := okPage(t, g.url, fmt.Sprintf("/deliveries/%d", pushID))
	wellFormed(t, d)
	if !strings.Contains(d, "<dt>Deploys</dt><dd><ul class=\"nodes\">\n  "+nodeDeploy) {
		t.Fatalf("delivery page in a fleet lacks %q:\n%s", nodeDeploy, d)
	}
}

// voidElements have no end tag; optionalEnd may lose theirs to the next sibling or the
// end of their parent (as <option> does in the history's datalist).
var (
	voidElements = map[string]bool{"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true,
		"img": true, "input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true}
	optionalEnd = map[string]bool{"li": true, "option": true, "p": true, "td": true, "th": true, "tr": true,
		"dt": true, "dd": true, "thead": true, "tbody": true, "optgroup": true}
)

// wellFormed fails t unless every element of the page that needs an end tag has one, in
// order, and nothing is closed that was not open: a template that drops or misplaces a
// closing tag shows up here, which the browser's forgiving parser would hide.
func wellFormed(t *testing.T, page string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(page))
	var open []string
	for {
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatalf("page does not parse: %v", z.Err())
			}
			for len(open) > 0 && optionalEnd[open[len(open)-1]] {
				open = open[:len(open)-1]
			}
			if len(open) > 0 {
				t.Fatalf("elements never closed: %v", open)
			}
			return
		case html.StartTagToken:
			name, _ := z.TagName()
			if !voidElements[string(name)] {
				open = append(open, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			i := len(open) - 1
			for i >= 0 && open[i] != string(name) && optionalEnd[open[i]] {
				i--
			}
			if i < 0 || open[i] != string(name) {
				t.Fatalf("</%s> closes nothing open (open: %v)", name, open)
			}
			open = slices.Delete(open, i, len(open))
		}
	}
}

// TestReposPageSaysWhoItWaitsFor: in a fleet, a deploy queued for a node that is down
// says it waits for that node and since when; a repository this node leaves to others is
// "not deployed here", not a red "not cloned yet"; the API says the same.
func TestReposPageSaysWhoItWaitsFor(t *testing.T) {
	gw := startTestGateway(t, nil, []gatewaytest.Option{gatewaytest.Repos(
		gatewaytest.Repo{Name: "site"},
		gatewaytest.Repo{Name: "docs", NotCloned: true, TOML: `nodes = ["web2"]`},
	)})
	g := gatewayOf(t, gw, "site")
	ctx := context.Background()
	web2, err := store.Open(ctx, g.database, store.WithNode("web2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { web2.Close() })
	queued, err := web2.EnqueueManual(ctx, "docs")
	if err != nil {
		t.Fatal(err)
	}
	// web2's last heartbeat was four intervals ago: down.
	lastSeen := time.Now().UTC().Add(-4 * store.HeartbeatEvery)
	g.store.SetNow(func() time.Time { return lastSeen })
	if err := g.store.RegisterNode(ctx, "web2", "v1.5.0", []string{"docs", "site"}); err != nil {
		t.Fatal(err)
	}
	g.store.SetNow(func() time.Time { return time.Now().UTC() })
	if err := g.store.RegisterNode(ctx, testNode, "v1.5.0", []string{"site"}); err != nil {
		t.Fatal(err)
	}

	body := okPage(t, g.url, "/repos")
	wellFormed(t, body)
	docs := regexp.MustCompile(`(?s)<tr [^>]*data-live="repo-docs".*?</tr>`).FindString(body)
	if docs == "" {
		t.Fatalf("no row for docs:\n%s", body)
	}
	if !strings.Contains(docs, `<td data-label="Checkout" class="checkout"><span class="muted">not deployed here</span></td>`) || strings.Contains(docs, "not cloned yet") {
		t.Errorf("docs, which gw-test does not deploy, is not shown as not deployed here:\n%s", docs)
	}
	want := fmt.Sprintf(`<a href="/deploys/%d">#%d</a> <span class="badge tone-bad waiting">waiting for web2: down since %s</span>`,
		queued.ID, queued.ID, lastSeen.Format("15:04:05 UTC"))
	if !strings.Contains(docs, want) {
		t.Errorf("docs' queued deploy does not say it waits for web2:\nwant %s\n%s", want, docs)
	}
	site := regexp.MustCompile(`(?s)<tr [^>]*data-live="repo-site".*?</tr>`).FindString(body)
	if strings.Contains(site, "not deployed here") || !strings.Contains(site, `<span class="badge tone-bad">down since `) {
		t.Errorf("site, deployed here, with web2 down:\n%s", site)
	}

	var repo map[string]any
	if code := g.api("GET", "/api/v1/repos/docs", "", &repo); code != 200 {
		t.Fatalf("GET /api/v1/repos/docs: %d", code)
	}
	if repo["deployed_here"] != false || repo["head_error"] != nil {
		t.Errorf("API: deployed_here %v, head_error %v; want false and none", repo["deployed_here"], repo["head_error"])
	}
	nodes, _ := repo["nodes"].([]any)
	n, _ := func() (map[string]any, bool) {
		for _, x := range nodes {
			if m, _ := x.(map[string]any); m["node"] == "web2" {
				return m, true
			}
		}
		return nil, false
	}()
	since, _ := n["down_since"].(string)
	if at, err := time.Parse(time.RFC3339Nano, since); err != nil || at.Sub(lastSeen).Abs() > time.Second {
		t.Errorf("API: web2 %v, want down_since its last heartbeat %s", n, lastSeen)
	}
	if code := g.api("GET", "/api/v1/repos/site", "", &repo); code != 200 || repo["deployed_here"] != true {
		t.Errorf("API: site deployed_here %v", repo["deployed_here"])
	}
}
