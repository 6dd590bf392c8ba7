package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/repos"
	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// twoRepoGateway is newGateway with two repositories, site and blog, each with its own
// origin and checkout and the same secret.
func twoRepoGateway(t *testing.T) (site, blog *gateway) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hookgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	site = &gateway{t: t, store: st, origin: testkit.NewOrigin(t)}
	blog = &gateway{t: t, store: st, origin: testkit.NewOrigin(t)}
	site.checkout, blog.checkout = site.origin.Clone(), blog.origin.Clone()
	var rs []repos.Repo
	var hooks []server.Hook
	for name, g := range map[string]*gateway{"site": site, "blog": blog} {
		rs = append(rs, repos.Repo{Spec: checkout.Spec{Name: name, Path: g.checkout, Branch: "main"},
			Commands: []string{"echo deployed " + name}, Timeout: time.Minute})
		hooks = append(hooks, server.Hook{Name: name, Secret: []byte(secret), Branch: "main", Path: g.checkout})
	}
	mgr := repos.NewManager(st, rs, repos.Options{Workers: 2, Logger: logger})
	st.OnQueued(mgr.Wake) // as gateway.New wires it
	srv, err := server.New(server.Options{Hooks: hooks, MaxBody: maxBody, Logger: logger}, st, mgr)
	if err != nil {
		t.Fatal(err)
	}
	mgr.Start()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		mgr.Stop(10 * time.Second)
		st.Close()
	})
	for _, g := range []*gateway{site, blog} {
		g.url, g.mgr, g.srv = ts.URL, mgr, srv
	}
	return site, blog
}

// TestRedeliveryIsPerRepositoryAndSigned: through the real router, a GUID is a redelivery
// only of a validly signed delivery to the same hook. Repository site deploys GUID X; a push
// to blog with GUID X is a new delivery and deploys blog. An unsigned request to blog with
// GUID Y (rejected) does not make the forge's later delivery Y a redelivery either.
func TestRedeliveryIsPerRepositoryAndSigned(t *testing.T) {
	site, blog := twoRepoGateway(t)
	ctx := context.Background()

	push := func(g *gateway, guid string, headers map[string]string) (*http.Response, map[string]any, string) {
		t.Helper()
		before := testkit.CheckoutHead(t, g.checkout)
		after := g.origin.Commit(map[string]string{"index.html": guid + "\n"}, guid)
		body := testkit.Push(t, "refs/heads/main", before, after, "")
		resp, out := g.send(delivery{path: "/hooks/" + map[*gateway]string{site: "site", blog: "blog"}[g], event: "push", guid: guid, body: body, headers: headers})
		return resp, out, after
	}
	isNew := func(what string, out map[string]any) {
		t.Helper()
		rec, err := site.store.Delivery(ctx, id(out["delivery_id"]))
		if err != nil {
			t.Fatal(err)
		}
		if rec.Redelivery || rec.Status != store.DeliveryAccepted {
			t.Errorf("%s: recorded as redelivery %v, %s (%s); want a new delivery, accepted", what, rec.Redelivery, rec.Status, rec.Reason)
		}
	}

	resp, out, after := push(site, "guid-x", nil)
	site.deployed(resp, out, after)
	resp, out, after = push(blog, "guid-x", nil)
	blog.deployed(resp, out, after)
	isNew("blog's push with the GUID site deployed", out)

	resp, out, _ = push(blog, "guid-y", map[string]string{"X-Hub-Signature-256": ""})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned request: %d %v", resp.StatusCode, out)
	}
	resp, out, after = push(blog, "guid-y", nil)
	blog.deployed(resp, out, after)
	isNew("the forge's delivery after an unsigned request with its GUID", out)

	// A real redelivery to the same hook is still recognised and not deployed again.
	resp, out, _ = push(site, "guid-x", nil)
	if resp.StatusCode != http.StatusOK || id(out["deploy_id"]) != 0 {
		t.Fatalf("site's redelivery of guid-x: %d %v; want 200 without a deploy", resp.StatusCode, out)
	}
	if rec, err := site.store.Delivery(ctx, id(out["delivery_id"])); err != nil || !rec.Redelivery {
		t.Fatalf("site's redelivery of guid-x recorded as %+v (%v)", rec, err)
	}
}
