package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

const adminToken = "admin-token-for-tests-0123456789"

// api calls the API with the admin token (when the gateway has one) and decodes JSON.
func (g *gateway) api(method, path string, token string, out any) int {
	g.t.Helper()
	req, err := http.NewRequest(method, g.url+path, nil)
	if err != nil {
		g.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			g.t.Fatalf("%s %s: %d, not JSON: %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

type deliveriesPage struct {
	Deliveries []map[string]any `json:"deliveries"`
	NextCursor *string          `json:"next_cursor"`
}

type deploysPage struct {
	Deploys    []map[string]any `json:"deploys"`
	NextCursor *string          `json:"next_cursor"`
}

func ids(rows []map[string]any) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = id(r["id"])
	}
	return out
}

// seed records a mixed history straight into the store: n ignored pushes spread over
// two repositories, plus one rejected delivery.
func (g *gateway) seed(n int) {
	g.t.Helper()
	ctx := context.Background()
	for i := range n {
		repo := "site"
		if i%3 == 0 {
			repo = "blog"
		}
		after := fmt.Sprintf("%040x", 0xabc000+i)
		d := &store.Delivery{GUID: fmt.Sprintf("seed-%d", i), Repo: repo, Event: "push",
			Ref: "refs/heads/feature", After: after, Commit: after[:7], Signature: store.SignatureValid,
			SignatureAlg: "sha256", Status: store.DeliveryIgnored, HTTPStatus: 200, Reason: "other branch"}
		if err := g.store.RecordDelivery(ctx, d); err != nil {
			g.t.Fatal(err)
		}
	}
}

func TestAPIDeliveriesAndDeploys(t *testing.T) {
	g := newGateway(t)
	before := time.Now().UTC()
	// A real deploy through the hook: push → 202 → succeeded.
	after := g.origin.Commit(map[string]string{"v.txt": "1\n"}, "one")
	resp, out := g.send(delivery{event: "push", guid: "api-push", body: testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d %v", resp.StatusCode, out)
	}
	deployID := id(out["deploy_id"])
	g.waitDeploy(deployID)
	between := time.Now().UTC()
	resp, _ = g.send(delivery{event: "push", guid: "api-bad", body: []byte(`{}`), headers: map[string]string{"X-Hub-Signature-256": "sha256=00"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", resp.StatusCode)
	}
	g.send(delivery{event: "ping", guid: "api-ping", body: testkit.Payload(t, "github/ping.json")})

	var page deliveriesPage
	if code := g.api("GET", "/api/v1/deliveries", "", &page); code != 200 || len(page.Deliveries) != 3 || page.NextCursor != nil {
		t.Fatalf("list: %d %+v", code, page)
	}
	newest, push := page.Deliveries[0], page.Deliveries[2]
	if newest["event"] != "ping" || push["commit"] != after[:7] || push["signature"] != "valid" ||
		push["status"] != "accepted" || id(push["deploy_id"]) != deployID || push["guid"] != "api-push" ||
		push["repo"] != "site" || push["ref"] != "refs/heads/main" || push["deploy_status"] != "succeeded" {
		t.Fatalf("delivery fields: %v", push)
	}
	if _, err := time.Parse(time.RFC3339, push["received_at"].(string)); err != nil {
		t.Fatalf("received_at is not RFC 3339: %v", push["received_at"])
	}
	if newest["deploy_id"] != nil {
		t.Fatalf("a ping joined a deploy: %v", newest)
	}

	for _, tc := range []struct {
		query string
		want  []string // guids, newest first
	}{
		{"repo=site", []string{"api-ping", "api-bad", "api-push"}},
		{"repo=nope", nil},
		{"status=rejected", []string{"api-bad"}},
		{"status=succeeded", []string{"api-push"}},
		{"status=failed", nil},
		{"event=ping", []string{"api-ping"}},
		{"signature=invalid", []string{"api-bad"}},
		{"signature=valid&event=push", []string{"api-push"}},
		{"commit=" + after[:5], []string{"api-push"}},
		{"commit=" + strings.ToUpper(after[:9]), []string{"api-push"}},
		{"since=" + url.QueryEscape(between.Format(time.RFC3339Nano)), []string{"api-ping", "api-bad"}},
		{"until=" + url.QueryEscape(between.Format(time.RFC3339Nano)), []string{"api-push"}},
		{"since=" + url.QueryEscape(before.Format(time.RFC3339Nano)) + "&limit=1", []string{"api-ping"}},
	} {
		var p deliveriesPage
		if code := g.api("GET", "/api/v1/deliveries?"+tc.query, "", &p); code != 200 {
			t.Fatalf("%s: %d", tc.query, code)
		}
		var got []string
		for _, d := range p.Deliveries {
			got = append(got, d["guid"].(string))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("?%s: got %v, want %v", tc.query, got, tc.want)
		}
	}

	var one map[string]any
	if code := g.api("GET", fmt.Sprintf("/api/v1/deliveries/%d", id(push["id"])), "", &one); code != 200 ||
		one["pusher"] != "binkkatal" || one["headers"] == nil {
		t.Fatalf("one delivery: %d %v", code, one)
	}
	if hs, _ := one["headers"].(map[string]any); hs["X-Github-Delivery"] != "api-push" {
		t.Fatalf("headers: %v", one["headers"])
	}

	var deploys deploysPage
	if code := g.api("GET", "/api/v1/deploys", "", &deploys); code != 200 || len(deploys.Deploys) != 1 {
		t.Fatalf("deploys: %d %+v", code, deploys)
	}
	dp := deploys.Deploys[0]
	if id(dp["id"]) != deployID || dp["status"] != "succeeded" || dp["trigger"] != "push" || dp["to_commit"] != after ||
		len(dp["from_commit"].(string)) != 40 || dp["started_at"] == nil || dp["finished_at"] == nil || dp["error"] != "" ||
		fmt.Sprint(dp["delivery_ids"]) != fmt.Sprintf("[%d]", id(push["id"])) || dp["log"] != nil {
		t.Fatalf("deploy fields: %v", dp)
	}
	for q, n := range map[string]int{"repo=site": 1, "repo=blog": 0, "status=succeeded": 1, "status=failed": 0,
		"trigger=push": 1, "trigger=manual": 0, "commit=" + after[:7]: 1, "commit=ffff": 0,
		"since=" + url.QueryEscape(between.Format(time.RFC3339Nano)): 0} {
		var p deploysPage
		if code := g.api("GET", "/api/v1/deploys?"+q, "", &p); code != 200 || len(p.Deploys) != n {
			t.Errorf("deploys?%s: %d, %d rows, want %d", q, code, len(p.Deploys), n)
		}
	}
	var full map[string]any
	if code := g.api("GET", fmt.Sprintf("/api/v1/deploys/%d", deployID), "", &full); code != 200 ||
		!strings.Contains(full["log"].(string), "deployed "+after) {
		t.Fatalf("deploy with log: %d %v", code, full)
	}
}

func TestAPIRepos(t *testing.T) {
	g := newGateway(t)
	var out struct {
		Repos []map[string]any `json:"repos"`
	}
	head := testkit.CheckoutHead(t, g.checkout)
	if code := g.api("GET", "/api/v1/repos", "", &out); code != 200 || len(out.Repos) != 1 {
		t.Fatalf("repos: %d %+v", code, out)
	}
	r := out.Repos[0]
	if r["name"] != "site" || r["branch"] != "main" || r["head"] != head || r["head_branch"] != "main" ||
		r["last_deploy"] != nil || r["running_deploy_id"] != nil || r["queued_deploy_id"] != nil {
		t.Fatalf("repo before any deploy: %v", r)
	}
	if r["hook"] != "site" || r["tags"] != "" || fmt.Sprint(r["paths"]) != "[]" || r["live_tag"] != "" {
		t.Errorf("a repository with its own secret: hook %v tags %v paths %v live_tag %v, want its own name, \"\", [] and \"\"",
			r["hook"], r["tags"], r["paths"], r["live_tag"])
	}

	newer := g.origin.Commit(map[string]string{"m.txt": "manual\n"}, "for a manual deploy")
	var dp map[string]any
	if code := g.api("POST", "/api/v1/repos/site/deploy", "", &dp); code != http.StatusAccepted || dp["trigger"] != "manual" || id(dp["id"]) == 0 {
		t.Fatalf("manual deploy: %d %v", code, dp)
	}
	if got := g.waitDeploy(id(dp["id"])); got.Status != store.DeploySucceeded || got.ToCommit != newer {
		t.Fatalf("manual deploy ran: %+v", got)
	}
	g.api("GET", "/api/v1/repos", "", &out)
	r = out.Repos[0]
	last, _ := r["last_deploy"].(map[string]any)
	if r["head"] != newer || r["live_commit"] != newer || last == nil || last["status"] != "succeeded" {
		t.Fatalf("repo after a manual deploy: %v", r)
	}
	if code := g.api("POST", "/api/v1/repos/nope/deploy", "", &dp); code != http.StatusNotFound {
		t.Fatalf("manual deploy of an unknown repository: %d", code)
	}
}

func TestAPIBadParametersAndUnknownIDs(t *testing.T) {
	g := newGateway(t)
	for _, path := range []string{
		"/api/v1/deliveries?limit=0", "/api/v1/deliveries?limit=501", "/api/v1/deliveries?limit=ten",
		"/api/v1/deliveries?status=exploded", "/api/v1/deliveries?signature=maybe",
		"/api/v1/deliveries?commit=xyz", "/api/v1/deliveries?since=yesterday", "/api/v1/deliveries?until=2026-13-01",
		"/api/v1/deliveries?cursor=garbage", "/api/v1/deliveries?cursor=" + url.QueryEscape("djE6LTE"),
		"/api/v1/deploys?status=accepted", "/api/v1/deploys?trigger=cron", "/api/v1/deploys?limit=-1",
		"/api/v1/deploys?cursor=%%%", "/api/v1/deliveries/abc", "/api/v1/deploys/0",
	} {
		var out map[string]map[string]string
		if code := g.api("GET", path, "", &out); code != http.StatusBadRequest || out["error"]["code"] != "invalid_parameter" || out["error"]["message"] == "" {
			t.Errorf("%s: %d %v", path, code, out)
		}
	}
	for _, path := range []string{"/api/v1/deliveries/424242", "/api/v1/deploys/424242"} {
		var out map[string]map[string]string
		if code := g.api("GET", path, "", &out); code != http.StatusNotFound || out["error"]["code"] != "not_found" {
			t.Errorf("%s: %d %v", path, code, out)
		}
	}
}

// TestAPIPagingWhileDeliveriesArrive walks the history with cursors while new deliveries
// keep arriving: every row that existed at the start is seen exactly once, in order.
func TestAPIPagingWhileDeliveriesArrive(t *testing.T) {
	g := newGateway(t)
	g.seed(120)
	var seen []int64
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("paging does not end")
		}
		var p deliveriesPage
		path := "/api/v1/deliveries?limit=25"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		if code := g.api("GET", path, "", &p); code != 200 {
			t.Fatalf("%s: %d", path, code)
		}
		seen = append(seen, ids(p.Deliveries)...)
		g.seed(7) // arrivals between pages
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
	}
	if len(seen) != 120 {
		t.Fatalf("saw %d rows, want the 120 that existed at the start", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Fatalf("rows out of order or repeated at %d: %d after %d", i, seen[i], seen[i-1])
		}
	}
	if seen[0] != 120 || seen[119] != 1 {
		t.Fatalf("first %d last %d: rows skipped", seen[0], seen[119])
	}

	// The same walk over deploys, with a filter.
	ctx := context.Background()
	for i := range 30 {
		d := &store.Delivery{GUID: fmt.Sprintf("dep-%d", i), Repo: "site", Event: "push", Signature: "valid",
			Status: store.DeliveryAccepted, HTTPStatus: 202}
		if err := g.store.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		g.mgr.Wake("site")
		g.waitDeploy(d.DeployID)
	}
	var deployIDs []int64
	cursor = ""
	for {
		var p deploysPage
		path := "/api/v1/deploys?repo=site&limit=7"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		g.api("GET", path, "", &p)
		deployIDs = append(deployIDs, ids(p.Deploys)...)
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
	}
	var all deploysPage
	g.api("GET", "/api/v1/deploys?limit=500", "", &all)
	if !slices.Equal(deployIDs, ids(all.Deploys)) || len(deployIDs) == 0 {
		t.Fatalf("paged deploys %v differ from the full listing %v", deployIDs, ids(all.Deploys))
	}
}

// TestAccessControl checks every operator route for 401/403, and that /hooks and /healthz
// stay open.
func TestAccessControl(t *testing.T) {
	operatorRoutes := []struct{ method, path string }{
		{"GET", "/api/v1/deliveries"}, {"GET", "/api/v1/deliveries/1"}, {"GET", "/api/v1/deploys"},
		{"GET", "/api/v1/deploys/1"}, {"GET", "/api/v1/repos"}, {"POST", "/api/v1/repos/site/deploy"},
		{"POST", "/api/v1/deliveries/1/redeliver"}, {"GET", "/api/v1/notifications"}, {"POST", "/api/v1/reload"}, {"GET", "/api/v1/nodes"},
		{"GET", "/api/v1/repos/site"}, {"GET", "/nodes"},
		{"GET", "/metrics"},
		{"GET", "/"}, {"GET", "/deliveries/1"}, {"GET", "/deploys/1"}, {"GET", "/repos"},
		{"POST", "/repos/site/deploy"}, {"POST", "/deliveries/1/redeliver"}, {"GET", "/static/style.css"},
	}
	do := func(g *gateway, method, path string, set func(*http.Request)) int {
		req, _ := http.NewRequest(method, g.url+path, nil)
		if set != nil {
			set(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	t.Run("with admin token", func(t *testing.T) {
		g := newGateway(t, func(o *server.Options) { o.AdminToken = adminToken })
		for _, r := range operatorRoutes {
			api := strings.HasPrefix(r.path, "/api/") || r.path == "/metrics"
			for name, set := range map[string]func(*http.Request){
				"none":         nil,
				"wrong bearer": func(q *http.Request) { q.Header.Set("Authorization", "Bearer wrong") },
				"wrong basic":  func(q *http.Request) { q.SetBasicAuth("admin", "wrong") },
				"other scheme": func(q *http.Request) {
					if api {
						q.SetBasicAuth("admin", adminToken)
					} else {
						q.Header.Set("Authorization", "Bearer "+adminToken)
					}
				},
			} {
				if code := do(g, r.method, r.path, set); code != http.StatusUnauthorized {
					t.Errorf("%s %s with %s credentials: %d, want 401", r.method, r.path, name, code)
				}
			}
		}
		if q, err := g.store.QueuedRepos(context.Background()); err != nil || len(q) != 0 {
			t.Errorf("an unauthorized request queued a deploy: %v (%v)", q, err)
		}
		for _, r := range operatorRoutes {
			right := func(q *http.Request) {
				if strings.HasPrefix(r.path, "/api/") || r.path == "/metrics" {
					q.Header.Set("Authorization", "Bearer "+adminToken)
				} else {
					q.SetBasicAuth("admin", adminToken)
				}
			}
			if code := do(g, r.method, r.path, right); code == http.StatusUnauthorized || code == http.StatusForbidden {
				t.Errorf("%s %s with the right token: %d", r.method, r.path, code)
			}
		}
		if code := do(g, "GET", "/healthz", nil); code != 200 {
			t.Errorf("healthz needs no token: %d", code)
		}
		if resp, _ := g.send(delivery{event: "ping", guid: "p", body: testkit.Payload(t, "github/ping.json")}); resp.StatusCode != 200 {
			t.Errorf("hooks need no token: %d", resp.StatusCode)
		}
	})

	t.Run("without token, loopback only", func(t *testing.T) {
		g := newGateway(t, func(o *server.Options) { o.TrustedProxies = []string{"127.0.0.1"} })
		for _, r := range operatorRoutes {
			// Through a trusted proxy for a client elsewhere.
			remote := func(q *http.Request) { q.Header.Set("X-Forwarded-For", "203.0.113.9") }
			if code := do(g, r.method, r.path, remote); code != http.StatusForbidden {
				t.Errorf("%s %s from 203.0.113.9: %d, want 403", r.method, r.path, code)
			}
			if code := do(g, r.method, r.path, nil); code == http.StatusForbidden || code == http.StatusUnauthorized {
				t.Errorf("%s %s from loopback: %d", r.method, r.path, code)
			}
		}
		manual, err := g.store.ListDeploys(context.Background(), store.DeployFilter{Trigger: store.TriggerManual})
		if err != nil || len(manual) == 0 {
			t.Errorf("loopback manual deploys queued nothing: %v %v", manual, err)
		}
	})

	t.Run("untrusted forwarding from loopback", func(t *testing.T) {
		// A reverse proxy on this host that hookgate was not told to trust: its clients are
		// not loopback clients.
		g := newGateway(t)
		for _, r := range operatorRoutes {
			fwd := func(q *http.Request) { q.Header.Set("X-Forwarded-For", "127.0.0.1") }
			if code := do(g, r.method, r.path, fwd); code != http.StatusForbidden {
				t.Errorf("%s %s forwarded by an untrusted proxy: %d, want 403", r.method, r.path, code)
			}
		}
	})
}

// TestReplay re-runs a recorded push from the API and from the page: a new delivery marked
// as a replay, deployed again; deliveries that could not deploy cannot be replayed.
func TestReplay(t *testing.T) {
	g := newGateway(t)
	after := g.origin.Commit(map[string]string{"r.txt": "r\n"}, "replay me")
	resp, out := g.send(delivery{event: "push", guid: "to-replay", body: testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	origID := id(out["delivery_id"])
	g.waitDeploy(id(out["deploy_id"]))

	var replayed map[string]any
	if code := g.api("POST", fmt.Sprintf("/api/v1/deliveries/%d/redeliver", origID), "", &replayed); code != http.StatusAccepted {
		t.Fatalf("replay: %d %v", code, replayed)
	}
	if id(replayed["replay_of"]) != origID || replayed["commit"] != after[:7] || id(replayed["deploy_id"]) == 0 || id(replayed["id"]) == origID {
		t.Fatalf("replayed delivery %v", replayed)
	}
	dp := g.waitDeploy(id(replayed["deploy_id"]))
	if dp.Status != store.DeploySucceeded || dp.Trigger != store.TriggerReplay {
		t.Fatalf("replay deploy %s trigger %s", dp.Status, dp.Trigger)
	}

	_, bad := g.send(delivery{event: "push", guid: "unsigned", body: []byte(`{}`), headers: map[string]string{"X-Hub-Signature-256": ""}})
	_, ping := g.send(delivery{event: "ping", guid: "ping", body: testkit.Payload(t, "github/ping.json")})
	for _, tc := range []struct {
		id   int64
		code int
	}{{id(bad["delivery_id"]), http.StatusConflict}, {id(ping["delivery_id"]), http.StatusConflict}, {999999, http.StatusNotFound}} {
		var e map[string]any
		if code := g.api("POST", fmt.Sprintf("/api/v1/deliveries/%d/redeliver", tc.id), "", &e); code != tc.code {
			t.Errorf("replay of %d: %d %v, want %d", tc.id, code, e, tc.code)
		}
	}

	// From the page: cross-site refused, same-origin redirected to the new deploy.
	post := func(site string) *http.Response {
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/deliveries/%d/redeliver", g.url, origID), nil)
		req.Header.Set("Sec-Fetch-Site", site)
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site replay: %d", resp.StatusCode)
	}
	resp = post("same-origin")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/deploys/") {
		t.Fatalf("page replay: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	var dpID int64
	fmt.Sscanf(resp.Header.Get("Location"), "/deploys/%d", &dpID)
	if dp := g.waitDeploy(dpID); dp.Status != store.DeploySucceeded {
		t.Fatalf("page replay deploy %s", dp.Status)
	}
}
