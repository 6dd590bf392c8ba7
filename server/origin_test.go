package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// reply is one HTTP reply: status, the error code of a JSON error, and the body.
type reply struct {
	status int
	code   string
	body   string
}

// call sends method path to g with the given headers (a "Host" entry sets the Host
// header) and follows no redirect.
func (g *gateway) call(method, path string, headers map[string]string) reply {
	g.t.Helper()
	req, err := http.NewRequest(method, g.url+path, nil)
	if err != nil {
		g.t.Fatal(err)
	}
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(raw, &e) // pages reply HTML; then code stays ""
	return reply{resp.StatusCode, e.Error.Code, string(raw)}
}

// counts is what a state-changing request leaves behind: deliveries recorded, deploys
// queued, reloads run.
type counts struct{ deliveries, deploys, reloads int }

func (g *gateway) counts(reloads *atomic.Int64) counts {
	g.t.Helper()
	ctx := context.Background()
	ds, err := g.store.ListDeliveries(ctx, store.DeliveryFilter{Page: store.Page{Limit: store.MaxLimit}})
	if err != nil {
		g.t.Fatal(err)
	}
	dps, err := g.store.ListDeploys(ctx, store.DeployFilter{Page: store.Page{Limit: store.MaxLimit}})
	if err != nil {
		g.t.Fatal(err)
	}
	return counts{len(ds), len(dps), int(reloads.Load())}
}

// stateChanging lists the router's own routes that change state (every method but GET and
// HEAD), except the hook endpoint, with their parameters filled in: so a POST added
// later is checked here without anyone listing it.
func stateChanging(t *testing.T, srv *server.Server, id int64) []gin.RouteInfo {
	t.Helper()
	param := regexp.MustCompile(`[:*]\w+`)
	var out []gin.RouteInfo
	for _, r := range srv.Handler().(*gin.Engine).Routes() {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || strings.HasPrefix(r.Path, "/hooks/") {
			continue
		}
		r.Path = param.ReplaceAllStringFunc(r.Path, func(p string) string {
			if p == ":name" {
				return "site"
			}
			return fmt.Sprint(id)
		})
		out = append(out, r)
	}
	for _, want := range []string{
		"POST /api/v1/repos/site/deploy", fmt.Sprintf("POST /api/v1/deliveries/%d/redeliver", id), "POST /api/v1/reload",
		"POST /repos/site/deploy", fmt.Sprintf("POST /deliveries/%d/redeliver", id),
	} {
		if !slices.ContainsFunc(out, func(r gin.RouteInfo) bool { return r.Method+" "+r.Path == want }) {
			t.Fatalf("the router has no %s; routes walked: %v", want, out)
		}
	}
	return out
}

// TestCrossSiteRequestsRefused: every state-changing operator route refuses a request a
// browser sent for another site (the no-cors POST any page can make to loopback), with or
// without the operator's credentials, and nothing is queued, recorded or reloaded; the
// same requests from hookgate's own pages or from a CLI client (no Origin, no
// Sec-Fetch-Site) work, and the hook endpoint takes deliveries whatever their Origin.
func TestCrossSiteRequestsRefused(t *testing.T) {
	var reloads atomic.Int64
	reload := func(o *server.Options) {
		o.Reload = func(context.Context) (server.ReloadReport, error) {
			reloads.Add(1)
			return server.ReloadReport{}, nil
		}
	}
	crossSite := []map[string]string{
		{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:1"}, // another port is another origin
		{"Origin": "https://evil.example"},                              // a browser without Fetch Metadata
		{"Origin": "null"},                                              // a sandboxed frame or a data: URL
	}
	pushed := func(g *gateway) int64 {
		after := g.origin.Commit(map[string]string{"x.txt": "x\n"}, "to replay")
		resp, out := g.send(delivery{event: "push", guid: "push-1", body: testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("push: %d %v", resp.StatusCode, out)
		}
		g.waitDeploy(id(out["deploy_id"]))
		return id(out["delivery_id"])
	}

	t.Run("loopback mode", func(t *testing.T) {
		g := newGateway(t, reload)
		orig := pushed(g)
		routes := stateChanging(t, g.srv, orig)
		before := g.counts(&reloads)
		for _, r := range routes {
			for _, h := range crossSite {
				if a := g.call(r.Method, r.Path, h); a.status != http.StatusForbidden || a.code != "cross_origin" {
					t.Errorf("%s %s with %v: %d %q, want 403 cross_origin", r.Method, r.Path, h, a.status, a.code)
				}
			}
		}
		if after := g.counts(&reloads); after != before {
			t.Fatalf("cross-site requests changed state: %+v, before %+v", after, before)
		}

		u, err := url.Parse(g.url)
		if err != nil {
			t.Fatal(err)
		}
		// A pin would turn the manual deploys after it into 409 pinned: pin last, and
		// unpin after each round.
		slices.SortStableFunc(routes, func(a, b gin.RouteInfo) int {
			return cmpBool(strings.HasSuffix(a.Path, "/pin"), strings.HasSuffix(b.Path, "/pin"))
		})
		for name, h := range map[string]map[string]string{
			"CLI":                  nil,
			"same-origin page":     {"Sec-Fetch-Site": "same-origin", "Origin": g.url},
			"Origin only, matches": {"Origin": "http://" + u.Host},
			"typed in the address": {"Sec-Fetch-Site": "none"},
		} {
			for _, r := range routes {
				// The request reached its handler: it may still refuse on its own terms
				// (409 no_previous_deploy for a rollback with none), never with 403.
				if a := g.call(r.Method, r.Path, h); a.status == http.StatusForbidden || a.status >= 500 {
					t.Errorf("%s: %s %s: %d %s", name, r.Method, r.Path, a.status, a.body)
				}
			}
			if a := g.call(http.MethodPost, "/api/v1/repos/site/unpin", nil); a.status != http.StatusOK {
				t.Fatalf("unpin: %d %s", a.status, a.body)
			}
		}
		after := g.counts(&reloads)
		if after.reloads != before.reloads+4 || after.deploys <= before.deploys || after.deliveries != before.deliveries+8 {
			t.Fatalf("allowed requests: %+v, before %+v; want 4 reloads, manual deploys and 8 replays", after, before)
		}

		// Forges post from their servers; an Origin header on a delivery changes nothing.
		resp, out := g.send(delivery{event: "ping", guid: "ping-x", body: testkit.Payload(t, "github/ping.json"),
			headers: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}})
		if resp.StatusCode != http.StatusOK || id(out["delivery_id"]) == 0 {
			t.Fatalf("a delivery with a foreign Origin: %d %v", resp.StatusCode, out)
		}
	})

	t.Run("admin token", func(t *testing.T) {
		// Browsers resend basic auth by themselves: the right credentials do not make a
		// cross-site request acceptable.
		g := newGateway(t, reload, func(o *server.Options) { o.AdminToken = adminToken })
		orig := pushed(g)
		before := g.counts(&reloads)
		for _, r := range stateChanging(t, g.srv, orig) {
			for _, h := range crossSite {
				h = maps(h, "Authorization", "Bearer "+adminToken)
				if !strings.HasPrefix(r.Path, "/api/") {
					h["Authorization"] = "Basic " + basic("admin", adminToken)
				}
				if a := g.call(r.Method, r.Path, h); a.status != http.StatusForbidden || a.code != "cross_origin" {
					t.Errorf("%s %s with %v: %d %q, want 403 cross_origin", r.Method, r.Path, h, a.status, a.code)
				}
			}
		}
		if after := g.counts(&reloads); after != before {
			t.Fatalf("cross-site requests changed state: %+v, before %+v", after, before)
		}
		if a := g.call("POST", "/api/v1/reload", map[string]string{"Authorization": "Bearer " + adminToken}); a.status != http.StatusOK {
			t.Fatalf("CLI reload with the token: %d %s", a.status, a.body)
		}
	})
}

// maps copies m and sets k to v.
func maps(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for kk, vv := range m {
		out[kk] = vv
	}
	return out
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "http://x/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestRebindingHostRefused: without an admin token, the pages and the API reply only
// under a loopback name or address, or a name in [server] hostnames: a DNS-rebinding page
// (its own name now pointing at 127.0.0.1) can neither read the history nor change
// anything. The hook endpoint and the health check reply any Host, as a proxy's public
// name reaches them.
func TestRebindingHostRefused(t *testing.T) {
	g := newGateway(t, func(o *server.Options) { o.TrustedProxies = []string{"127.0.0.1"} })
	_, out := g.send(delivery{event: "ping", guid: "ping-1", body: testkit.Payload(t, "github/ping.json")})
	ping := id(out["delivery_id"])
	u, err := url.Parse(g.url)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	operator := []struct{ method, path string }{
		{"GET", "/api/v1/deliveries"}, {"GET", fmt.Sprintf("/api/v1/deliveries/%d", ping)},
		{"GET", fmt.Sprintf("/api/v1/deliveries/%d/payload", ping)}, {"GET", "/api/v1/repos"},
		{"GET", "/"}, {"GET", fmt.Sprintf("/deliveries/%d", ping)}, {"GET", "/repos"}, {"GET", "/metrics"},
		{"POST", "/api/v1/repos/site/deploy"}, {"POST", "/repos/site/deploy"},
	}
	manual := func() int {
		dps, err := g.store.ListDeploys(context.Background(), store.DeployFilter{Trigger: store.TriggerManual})
		if err != nil {
			t.Fatal(err)
		}
		return len(dps)
	}

	for _, host := range []string{
		"rebind.example:" + port, "rebind.example", "127.0.0.1.nip.io:" + port, "localhost.rebind.example:" + port,
		"192.0.2.1:" + port, "gateway.internal",
		// *.localhost is loopback by RFC 6761; a name merely ending in "localhost" is not.
		"evillocalhost:" + port, "evillocalhost", "attacker-localhost.",
	} {
		for _, r := range operator {
			a := g.call(r.method, r.path, map[string]string{"Host": host})
			if a.status != http.StatusForbidden || a.code != "host_not_allowed" {
				t.Errorf("%s %s with Host %s: %d %q, want 403 host_not_allowed", r.method, r.path, host, a.status, a.code)
			}
			if strings.Contains(a.body, `"repo"`) || strings.Contains(a.body, "ping-1") {
				t.Errorf("%s %s with Host %s shows the history: %s", r.method, r.path, host, a.body)
			}
		}
	}
	if n := manual(); n != 0 {
		t.Fatalf("a request under a foreign Host queued %d deploys", n)
	}
	for _, host := range []string{"rebind.example:" + port, "hooks.example.com"} {
		if a := g.call("GET", "/healthz", map[string]string{"Host": host}); a.status != http.StatusOK {
			t.Errorf("healthz with Host %s: %d", host, a.status)
		}
		resp, out := g.send(delivery{event: "ping", guid: "ping-" + host, body: testkit.Payload(t, "github/ping.json"), headers: map[string]string{"Host": host}})
		if resp.StatusCode != http.StatusOK || id(out["delivery_id"]) == 0 {
			t.Errorf("hook with Host %s: %d %v", host, resp.StatusCode, out)
		}
	}

	for _, host := range []string{
		"localhost:" + port, "localhost", "LocalHost.:" + port, "app.localhost:" + port, "127.0.0.1:" + port,
		"127.8.9.10:" + port, "[::1]:" + port, "[::1]", "[::ffff:127.0.0.1]:" + port,
	} {
		for _, r := range operator {
			if a := g.call(r.method, r.path, map[string]string{"Host": host}); a.status >= 400 {
				t.Errorf("%s %s with Host %s: %d %s", r.method, r.path, host, a.status, a.body)
			}
		}
	}

	// A name of this host's own (Debian maps the host name to 127.0.1.1 in /etc/hosts):
	// refused until listed in hostnames, which a reload can change.
	ownName := map[string]string{"Host": "Gateway.Internal:" + port}
	if a := g.call("GET", "/api/v1/deliveries", ownName); a.status != http.StatusForbidden || a.code != "host_not_allowed" {
		t.Fatalf("unlisted own name: %d %q", a.status, a.code)
	}
	hooks := []server.Hook{{Name: "site", Secret: []byte(secret), Branch: "main", Repository: "binkkatal/sample_app", Path: g.checkout}}
	if err := g.srv.Apply(server.Settings{Hooks: hooks, MaxBody: maxBody, Hostnames: []string{"gateway.internal"}}); err != nil {
		t.Fatal(err)
	}
	if a := g.call("GET", "/api/v1/deliveries", ownName); a.status != http.StatusOK {
		t.Fatalf("listed own name: %d %s", a.status, a.body)
	}
	if a := g.call("GET", "/api/v1/deliveries", map[string]string{"Host": "rebind.example"}); a.code != "host_not_allowed" {
		t.Fatalf("an unlisted name after listing another: %d %q", a.status, a.code)
	}
	if err := g.srv.Apply(server.Settings{Hooks: hooks, MaxBody: maxBody, Hostnames: []string{"https://x"}}); err == nil {
		t.Fatal("Apply took a hostname with a scheme")
	}

	// With an admin token the token is the defence (a rebinding page's origin has no
	// credentials), so any Host is answered.
	if err := g.srv.Apply(server.Settings{Hooks: hooks, MaxBody: maxBody, AdminToken: adminToken}); err != nil {
		t.Fatal(err)
	}
	if a := g.call("GET", "/api/v1/deliveries", map[string]string{"Host": "hooks.example.com", "Authorization": "Bearer " + adminToken}); a.status != http.StatusOK {
		t.Fatalf("token mode, public name: %d %s", a.status, a.body)
	}
}

// TestEveryRouteGuarded walks the router's own routes, so that a route added later is
// checked without anyone listing it: every one but the hook endpoint and the health check
// needs the admin token when one is set (401), refuses a client elsewhere without one
// (403), and refuses a cross-site request of any method but GET, HEAD and OPTIONS.
func TestEveryRouteGuarded(t *testing.T) {
	open := func(path string) bool { return strings.HasPrefix(path, "/hooks/") || path == "/healthz" }
	param := regexp.MustCompile(`[:*]\w+`)
	fill := func(path string) string { return param.ReplaceAllString(path, "1") }
	withToken := newGateway(t, func(o *server.Options) { o.AdminToken = adminToken })
	noToken := newGateway(t, func(o *server.Options) { o.TrustedProxies = []string{"127.0.0.1"} })
	routes := withToken.srv.Handler().(*gin.Engine).Routes()
	if len(routes) < 15 {
		t.Fatalf("only %d routes: %v", len(routes), routes)
	}
	for _, r := range routes {
		if open(r.Path) {
			continue
		}
		path := fill(r.Path)
		if a := withToken.call(r.Method, path, nil); a.status != http.StatusUnauthorized {
			t.Errorf("%s %s without the token: %d, want 401", r.Method, path, a.status)
		}
		if a := noToken.call(r.Method, path, map[string]string{"X-Forwarded-For": "203.0.113.9"}); a.status != http.StatusForbidden {
			t.Errorf("%s %s from 203.0.113.9 without a token: %d, want 403", r.Method, path, a.status)
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if a := noToken.call(r.Method, path, map[string]string{"Sec-Fetch-Site": "cross-site"}); a.code != "cross_origin" {
				t.Errorf("%s %s cross-site: %d %q, want 403 cross_origin", r.Method, path, a.status, a.code)
			}
		}
	}
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
