package server_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// fannedOut is a push the test gateway (which deploys nothing itself) received for a
// repository that two other nodes, web1 and web2, deploy: one delivery, one queued deploy
// on each. Only PostgreSQL has a fleet (on SQLite a gateway deploys for itself alone), so
// the tests below run under TestOnPostgres.
type fannedOut struct {
	delivery       int64
	web1, web2     *store.Store
	web1ID, web2ID int64 // their deploys
	after          string
}

func newFannedOut(t *testing.T, g *gateway) fannedOut {
	t.Helper()
	ctx := context.Background()
	f := fannedOut{}
	if err := g.store.RegisterNode(ctx, testNode, "v1.5.0", []string{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"web1", "web2"} {
		if err := g.store.RegisterNode(ctx, n, "v1.5.0", []string{"site"}); err != nil {
			t.Fatal(err)
		}
		s, err := store.Open(ctx, g.database, store.WithNode(n))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if n == "web1" {
			f.web1 = s
		} else {
			f.web2 = s
		}
	}
	f.after = g.origin.Commit(map[string]string{"v.txt": "fleet\n"}, "fleet push")
	resp, out := g.send(delivery{event: "push", guid: "fanout-1", body: testkit.Push(t, "refs/heads/main", "", f.after, "binkkatal/sample_app")})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d %v", resp.StatusCode, out)
	}
	f.delivery = id(out["delivery_id"])
	d, err := g.store.Delivery(ctx, f.delivery)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Deploys) != 2 || d.Deploys[0].Node != "web1" || d.Deploys[1].Node != "web2" {
		t.Fatalf("the push's deploys: %+v, want one on web1 and one on web2", d.Deploys)
	}
	f.web1ID, f.web2ID = d.Deploys[0].ID, d.Deploys[1].ID
	return f
}

// finish runs node's queued deploy of site to status, as that node's worker would.
func (f fannedOut) finish(t *testing.T, s *store.Store, want int64, status string) {
	t.Helper()
	ctx := context.Background()
	dp, err := s.ClaimDeploy(ctx, "site")
	if err != nil || dp.ID != want {
		t.Fatalf("claim: deploy %d %v, want %d", dp.ID, err, want)
	}
	if err := s.FinishDeploy(ctx, dp.ID, store.Result{Status: status, ToCommit: f.after}); err != nil {
		t.Fatal(err)
	}
}

// testHistoryShowsEachNodesDeploy: a delivery that became a deploy on each of two nodes
// shows both in the history, each with its node and status; the row is amber and polls
// while any is queued, red once one failed; the delivery page lists both.
func testHistoryShowsEachNodesDeploy(t *testing.T) {
	g := newGateway(t)
	f := newFannedOut(t, g)
	row := func() string {
		t.Helper()
		body := okPage(t, g.url, "/")
		wellFormed(t, body)
		m := regexp.MustCompile(fmt.Sprintf(`(?s)<tr [^>]*data-id="%d".*?</tr>`, f.delivery)).FindString(body)
		if m == "" {
			t.Fatalf("no row for delivery %d:\n%s", f.delivery, body)
		}
		return m
	}
	li := func(node string, id int64, tone, status string) string {
		return fmt.Sprintf(`<li><span class="node">%s</span> <a href="/deploys/%d" class="badge tone-%s" title="deploy #%d on %s">%s</a></li>`,
			node, id, tone, id, node, status)
	}
	r := row()
	for _, want := range []string{`<tr class="tone-busy"`, " data-active>", li("web1", f.web1ID, "busy", "queued"), li("web2", f.web2ID, "busy", "queued")} {
		if !strings.Contains(r, want) {
			t.Errorf("queued on both: row lacks %q:\n%s", want, r)
		}
	}
	f.finish(t, f.web1, f.web1ID, store.DeploySucceeded)
	r = row()
	for _, want := range []string{`<tr class="tone-busy"`, " data-active>", li("web1", f.web1ID, "ok", "succeeded"), li("web2", f.web2ID, "busy", "queued")} {
		if !strings.Contains(r, want) {
			t.Errorf("web1 done, web2 queued: row lacks %q:\n%s", want, r)
		}
	}
	f.finish(t, f.web2, f.web2ID, store.DeployFailed)
	r = row()
	for _, want := range []string{`<tr class="tone-bad"`, li("web1", f.web1ID, "ok", "succeeded"), li("web2", f.web2ID, "bad", "failed")} {
		if !strings.Contains(r, want) {
			t.Errorf("web2 failed: row lacks %q:\n%s", want, r)
		}
	}
	if strings.Contains(r, "data-active") {
		t.Errorf("a finished row still polls:\n%s", r)
	}
	d := okPage(t, g.url, fmt.Sprintf("/deliveries/%d", f.delivery))
	wellFormed(t, d)
	for _, want := range []string{"<dt>Deploys</dt>", li("web1", f.web1ID, "ok", "succeeded"), li("web2", f.web2ID, "bad", "failed")} {
		if !strings.Contains(d, want) {
			t.Errorf("delivery page lacks %q", want)
		}
	}
}

// testBrowserFleetHistory: in Chromium, the history follows each node's deploy of one
// delivery in place, without a reload, and the nav leads to the nodes page.
func testBrowserFleetHistory(t *testing.T) {
	ctx := browser(t)
	g := newGateway(t)
	f := newFannedOut(t, g)
	rowSel := fmt.Sprintf(`tr[data-id="%d"]`, f.delivery)
	badges := fmt.Sprintf(`Array.from(document.querySelectorAll('%s ul.nodes li'), li => li.textContent.replace(/\s+/g, " ").trim()).join(",")`, rowSel)

	step(t, ctx, "load the history", chromedp.Navigate(g.url+"/"), chromedp.WaitVisible(chromedp.CSS(rowSel)))
	if b := eval[string](t, ctx, badges); b != "web1 queued,web2 queued" {
		t.Fatalf("the row shows %q, want web1 queued, web2 queued", b)
	}
	eval[chromedp.Void](t, ctx, `window.hookgateNoReload = true`)
	f.finish(t, f.web1, f.web1ID, store.DeploySucceeded)
	waitFor(t, ctx, "web1's success", badges+` === "web1 succeeded,web2 queued"`)
	f.finish(t, f.web2, f.web2ID, store.DeployFailed)
	waitFor(t, ctx, "web2's failure, the row red", badges+` === "web1 succeeded,web2 failed" && document.querySelector('`+rowSel+`').classList.contains("tone-bad")`)
	if !eval[bool](t, ctx, `window.hookgateNoReload === true`) {
		t.Fatal("the page was reloaded; it should have updated in place")
	}

	step(t, ctx, "open the nodes page", chromedp.Click(chromedp.CSS(`header.top nav a[href="/nodes"]`)))
	waitFor(t, ctx, "the nodes page", `location.pathname === "/nodes" && document.querySelector('tr[data-node="web2"]') !== null`)
	if s := eval[string](t, ctx, `document.querySelector('tr[data-node="web1"] .badge').textContent`); s != "up" {
		t.Fatalf("web1 shows %q, want up", s)
	}
}
