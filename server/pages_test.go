package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// repoSpec is one repository of a fleet.
type repoSpec struct {
	name     string
	commands []string
	missing  bool // configure a checkout path that does not exist (never cloned)
}

// fleet is a gateway with several repositories, each with its own origin and checkout.
// It reuses gateway's send and waitDeploy; gateway.origin and checkout are the first
// repository's.
type fleet struct {
	*gateway
	origins   map[string]*testkit.Origin
	checkouts map[string]string
	gates     string
	guids     atomic.Int64
	// back sets the server's clock this far behind real time, so a test can record
	// deliveries "hours ago" while deploys run now.
	back atomic.Int64
}

// gateCommand, as a deploy command, waits until the test releases that deploy (or all of
// them), so a test can look at a deploy while it runs. newFleet fills in the folder.
const gateCommand = `while [ ! -e "$GATES/$HOOKGATE_DEPLOY" ] && [ ! -e "$GATES/all" ]; do sleep 0.02; done`

func newFleet(t *testing.T, specs ...repoSpec) *fleet {
	t.Helper()
	f := &fleet{origins: map[string]*testkit.Origin{}, checkouts: map[string]string{}, gates: t.TempDir()}
	var rs []gatewaytest.Repo
	for _, sp := range specs {
		cmds := []string{}
		for _, c := range sp.commands {
			cmds = append(cmds, strings.ReplaceAll(c, "$GATES", f.gates))
		}
		rs = append(rs, gatewaytest.Repo{Name: sp.name, Repository: "acme/" + sp.name, Commands: cmds, NotCloned: sp.missing})
	}
	gw := startTestGateway(t, nil, []gatewaytest.Option{gatewaytest.Repos(rs...), gatewaytest.Workers(4)})
	for _, sp := range specs {
		if !sp.missing {
			f.origins[sp.name] = gw.Origin[sp.name]
		}
		f.checkouts[sp.name] = gw.Checkout[sp.name]
	}
	gw.G.Server().SetNow(func() time.Time { return time.Now().UTC().Add(-time.Duration(f.back.Load())) })
	gw.G.Manager().Start()
	t.Cleanup(f.releaseAll)
	first := specs[0].name
	f.gateway = gatewayOf(t, gw, first)
	f.gateway.origin = f.origins[first]
	return f
}

func (f *fleet) release(deployID int64) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.gates, strconv.FormatInt(deployID, 10)), nil, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) releaseAll() {
	os.WriteFile(filepath.Join(f.gates, "all"), nil, 0o644)
}

// pushed commits files to repo's origin and sends the push GitHub would send for it. It
// returns the delivery id, the deploy id (0 if none) and the new commit.
func (f *fleet) pushed(repo, msg string, files map[string]string) (deliveryID, deployID int64, after string) {
	f.t.Helper()
	o := f.origins[repo]
	before := o.Head()
	if files == nil {
		files = map[string]string{"CHANGES": msg + "\n"}
	}
	after = o.Commit(files, msg)
	body := pushPayload(f.t, repo, before, after, msg, "octocat")
	resp, out := f.send(delivery{path: "/hooks/" + repo, event: "push", guid: f.guid(), body: body})
	if resp.StatusCode != http.StatusAccepted {
		f.t.Fatalf("push to %s: %d %v", repo, resp.StatusCode, out)
	}
	return id(out["delivery_id"]), id(out["deploy_id"]), after
}

// other sends a delivery that does not deploy and returns its id.
func (f *fleet) other(repo string, d delivery, want int) int64 {
	f.t.Helper()
	d.path = "/hooks/" + repo
	if d.guid == "" {
		d.guid = f.guid()
	}
	resp, out := f.send(d)
	if resp.StatusCode != want {
		f.t.Fatalf("%s delivery to %s: %d, want %d: %v", d.event, repo, resp.StatusCode, want, out)
	}
	return id(out["delivery_id"])
}

func (f *fleet) guid() string {
	return fmt.Sprintf("a1b2c3d4-0000-11ef-8000-%012d", f.guids.Add(1))
}

// pushPayload is the real GitHub push payload, naming acme/<repo> and the given commits,
// message and pusher.
func pushPayload(t testing.TB, repo, before, after, msg, pusher string) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(testkit.Push(t, "refs/heads/main", before, after, "acme/"+repo), &p); err != nil {
		t.Fatal(err)
	}
	p["repository"].(map[string]any)["html_url"] = "https://github.com/acme/" + repo
	p["head_commit"].(map[string]any)["message"] = msg
	p["pusher"].(map[string]any)["name"] = pusher
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// page GETs path and returns the response and its body.
func page(t *testing.T, base, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func okPage(t *testing.T, base, path string) string {
	t.Helper()
	resp, body := page(t, base, path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, body)
	}
	return body
}

var rowIDRe = regexp.MustCompile(`<tr [^>]*data-id="(\d+)"`)

// rowIDs returns the delivery ids of the history's rows, in page order.
func rowIDs(body string) []int64 {
	var out []int64
	for _, m := range rowIDRe.FindAllStringSubmatch(body, -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		out = append(out, n)
	}
	return out
}

// pagerLink returns the href of the pager link with this rel ("next" is older, "prev"
// newer), unescaped, or "".
func pagerLink(body, rel string) string {
	m := regexp.MustCompile(`<a rel="` + rel + `" href="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func TestHistoryPage(t *testing.T) {
	g := newGateway(t)
	var afters []string
	for i := range 2 {
		before := testkit.CheckoutHead(t, g.checkout)
		after := g.origin.Commit(map[string]string{"v.txt": strconv.Itoa(i)}, "v"+strconv.Itoa(i))
		resp, out := g.send(delivery{event: "push", guid: "push-" + strconv.Itoa(i), body: testkit.Push(t, "refs/heads/main", before, after, "binkkatal/sample_app")})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("push: %d %v", resp.StatusCode, out)
		}
		if dp := g.waitDeploy(id(out["deploy_id"])); dp.Status != store.DeploySucceeded {
			t.Fatalf("deploy %s: %s", dp.Status, dp.Error)
		}
		afters = append(afters, after)
	}
	g.send(delivery{event: "ping", guid: "ping-1", body: testkit.Payload(t, "github/ping.json")})
	g.send(delivery{event: "push", guid: "forged", body: []byte(`{}`), headers: map[string]string{"X-Hub-Signature-256": forge.Sign([]byte(`{}`), []byte("guess"))}})

	resp, body := page(t, g.url, "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %d\n%s", resp.StatusCode, body)
	}
	for k, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "same-origin",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	ids := rowIDs(body)
	if len(ids) != 4 || !slices.IsSortedFunc(ids, func(a, b int64) int { return int(b - a) }) {
		t.Fatalf("rows %v: want 4, newest first", ids)
	}
	for _, after := range afters {
		link := `<a class="commit" href="https://github.com/binkkatal/sample_app/commit/` + after + `"><code>` + after[:7] + `</code></a>`
		if !strings.Contains(body, link) {
			t.Errorf("no commit link %s", link)
		}
	}
	for _, want := range []string{`<time datetime="`, `>succeeded</a>`, `>rejected</span>`, `>ignored</span>`, `tr class="tone-bad"`, `>invalid</span>`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Nothing runs, so nothing polls and nothing refreshes.
	if strings.Contains(body, "data-active") || strings.Contains(body, "http-equiv") {
		t.Errorf("an idle page is marked active")
	}
	if strings.Contains(body, `rel="prev"`) || strings.Contains(body, `rel="next"`) {
		t.Errorf("one page of rows has paging links")
	}
}

func TestHistoryFilters(t *testing.T) {
	f := newFleet(t,
		repoSpec{name: "site", commands: []string{"echo site ok"}},
		repoSpec{name: "api", commands: []string{`test ! -e BROKEN || { echo "migration 0042 failed" >&2; exit 1; }`}},
	)
	sitePush, dp, _ := f.pushed("site", "site: new header", nil)
	f.waitDeploy(dp)
	sitePing := f.other("site", delivery{event: "ping", body: testkit.Payload(t, "github/ping.json")}, 200)
	apiOK, dp, _ := f.pushed("api", "api: add endpoint", nil)
	f.waitDeploy(dp)
	apiBroken, dp, _ := f.pushed("api", "api: break it", map[string]string{"BROKEN": "yes\n"})
	if st := f.waitDeploy(dp); st.Status != store.DeployFailed {
		t.Fatalf("the broken deploy %s", st.Status)
	}
	apiForged := f.other("api", delivery{event: "push", body: []byte(`{}`), headers: map[string]string{"X-Hub-Signature-256": ""}}, 401)

	for _, tc := range []struct {
		query string
		want  []int64 // newest first
	}{
		{"", []int64{apiForged, apiBroken, apiOK, sitePing, sitePush}},
		{"repo=site", []int64{sitePing, sitePush}},
		{"repo=api", []int64{apiForged, apiBroken, apiOK}},
		{"status=failed", []int64{apiBroken}},
		{"status=succeeded", []int64{apiOK, sitePush}},
		{"status=accepted", []int64{apiBroken, apiOK, sitePush}},
		{"status=ignored", []int64{sitePing}},
		{"status=rejected", []int64{apiForged}},
		{"status=running", nil},
		{"event=ping", []int64{sitePing}},
		{"event=push&repo=site", []int64{sitePush}},
		{"repo=api&status=accepted", []int64{apiBroken, apiOK}},
		{"repo=gone", nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			body := okPage(t, f.url, "/?"+tc.query)
			if got := rowIDs(body); !slices.Equal(got, tc.want) {
				t.Fatalf("rows %v, want %v", got, tc.want)
			}
			if tc.want == nil && !strings.Contains(body, "No deliveries match this filter") {
				t.Errorf("an empty filtered page does not say so")
			}
		})
	}
	// The form shows the filter it produced, so a shared link reads right.
	body := okPage(t, f.url, "/?repo=api&status=failed&event=push")
	for _, want := range []string{`<option selected>api</option>`, `<option selected>failed</option>`, `name="event" list="events" value="push"`} {
		if !strings.Contains(body, want) {
			t.Errorf("form lacks %q", want)
		}
	}
	if !regexp.MustCompile(`<tr class="tone-bad" data-id="` + strconv.FormatInt(apiBroken, 10)).MatchString(body) {
		t.Errorf("the failed delivery's row is not marked bad")
	}
}

func TestHistoryPaging(t *testing.T) {
	g := newGateway(t)
	var all []int64
	for i := range 11 {
		_, out := g.send(delivery{event: "ping", guid: fmt.Sprintf("ping-%d", i), body: testkit.Payload(t, "github/ping.json")})
		all = append(all, id(out["delivery_id"]))
		if i%4 == 0 {
			// Rows the filter below must skip, between the ones it keeps.
			g.send(delivery{event: "push", guid: fmt.Sprintf("bad-%d", i), body: []byte(`{}`), headers: map[string]string{"X-Hub-Signature-256": ""}})
		}
	}
	slices.Reverse(all)

	for _, limit := range []int{1, 3, 4, 11, 12} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			start := fmt.Sprintf("/?event=ping&limit=%d", limit)
			// Older links from the first page to the last.
			var seen []int64
			var last string
			for link := start; link != ""; {
				body := okPage(t, g.url, link)
				rows := rowIDs(body)
				if len(rows) == 0 || len(rows) > limit {
					t.Fatalf("%s: %d rows", link, len(rows))
				}
				if link == start && (pagerLink(body, "prev") != "" || strings.Contains(body, "newest")) {
					t.Fatalf("the first page links to newer rows")
				}
				if link != start && pagerLink(body, "prev") == "" {
					t.Fatalf("%s: no newer link on a later page", link)
				}
				seen = append(seen, rows...)
				last = link
				link = pagerLink(body, "next")
				if link != "" && (!strings.Contains(link, "event=ping") || !strings.Contains(link, fmt.Sprintf("limit=%d", limit))) {
					t.Fatalf("paging link %q drops the filter", link)
				}
			}
			if !slices.Equal(seen, all) {
				t.Fatalf("walking older saw %v, want %v", seen, all)
			}
			// Newer links from the last page back to the first.
			var back [][]int64
			for link := last; link != ""; {
				body := okPage(t, g.url, link)
				back = append(back, rowIDs(body))
				link = pagerLink(body, "prev")
			}
			slices.Reverse(back)
			if got := slices.Concat(back...); !slices.Equal(got, all) {
				t.Fatalf("walking newer saw %v, want %v", back, all)
			}
		})
	}
}

func TestPagesBadRequests(t *testing.T) {
	g := newGateway(t)
	for _, tc := range []struct {
		method, path string
		status       int
		says         string
	}{
		{"GET", "/?before=abc", 400, "before must be a delivery id"},
		{"GET", "/?before=-1", 400, "before must be a delivery id"},
		{"GET", "/?after=0x10", 400, "after must be a delivery id"},
		{"GET", "/?before=5&after=2", 400, "not both"},
		{"GET", "/?status=bogus", 400, "status must be one of accepted, ignored, rejected"},
		{"GET", "/?status=%3Cscript%3E", 400, "status must be one of"},
		{"GET", "/?limit=0", 400, "limit must be"},
		{"GET", "/?limit=100000", 400, "limit must be"},
		{"GET", "/deliveries/abc", 400, "is not an id"},
		{"GET", "/deliveries/0", 400, "is not an id"},
		{"GET", "/deliveries/999", 404, "Delivery 999 does not exist."},
		{"GET", "/deploys/%3Cb%3E", 400, "&#34;&lt;b&gt;&#34; is not an id"},
		{"GET", "/deploys/999", 404, "Deploy 999 does not exist."},
		{"GET", "/static/nope.js", 404, "No such file."},
		{"POST", "/repos/nope/deploy", 404, "No repository is configured under this name."},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, g.url+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("%d %s, want %d HTML\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, b)
			}
			if !strings.Contains(string(b), tc.says) {
				t.Fatalf("page does not say %q:\n%s", tc.says, b)
			}
		})
	}
}

func TestDeliveryPage(t *testing.T) {
	g := newGateway(t)
	before := testkit.CheckoutHead(t, g.checkout)
	msg := `Fix <script>alert("owned")</script> & friends`
	after := g.origin.Commit(map[string]string{"x.txt": "x\n"}, msg)
	var p map[string]any
	json.Unmarshal(testkit.Push(t, "refs/heads/main", before, after, "binkkatal/sample_app"), &p)
	p["head_commit"].(map[string]any)["message"] = msg
	body, _ := json.Marshal(p)
	resp, out := g.send(delivery{event: "push", guid: "detail-guid-1", body: body, headers: map[string]string{
		"X-Trace-Id":    "trace-42",
		"Authorization": "Bearer sekrit-token",
		"Cookie":        "session=sekrit-cookie",
	}})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d %v", resp.StatusCode, out)
	}
	deliveryID, deployID := id(out["delivery_id"]), id(out["deploy_id"])
	g.waitDeploy(deployID)

	page := okPage(t, g.url, fmt.Sprintf("/deliveries/%d", deliveryID))
	for _, want := range []string{
		"detail-guid-1", "X-Trace-Id", "trace-42", "X-Github-Event", "GitHub-Hookshot/test",
		"binkkatal", // the pusher
		`Fix &lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt; &amp; friends`,
		after, `href="https://github.com/binkkatal/sample_app/commit/` + after + `"`,
		fmt.Sprintf(`<a href="/deploys/%d">#%d</a>`, deployID, deployID),
		`<pre class="log">`, "\ndeployed " + after,
		">succeeded</span>", "sha256", "HTTP 202",
		`<pre class="payload">{`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("delivery page lacks %q", want)
		}
	}
	for _, never := range []string{"<script>alert", "sekrit", secret} {
		if strings.Contains(page, never) {
			t.Errorf("delivery page contains %q", never)
		}
	}
	if strings.Contains(okPage(t, g.url, "/"), "<script>alert") {
		t.Errorf("history page has the raw script")
	}

	dp := okPage(t, g.url, fmt.Sprintf("/deploys/%d", deployID))
	for _, want := range []string{"deployed " + after, fmt.Sprintf(`<a href="/deliveries/%d">#%d</a>`, deliveryID, deliveryID), ">succeeded</span>", ">push"} {
		if !strings.Contains(dp, want) {
			t.Errorf("deploy page lacks %q", want)
		}
	}
}

func TestReposPage(t *testing.T) {
	f := newFleet(t,
		repoSpec{name: "site", commands: []string{"echo ok"}},
		repoSpec{name: "docs", missing: true},
	)
	_, dp, after := f.pushed("site", "ship it", nil)
	if st := f.waitDeploy(dp); st.Status != store.DeploySucceeded {
		t.Fatalf("deploy %s %s", st.Status, st.Error)
	}
	body := okPage(t, f.url, "/repos")
	for _, want := range []string{
		`<code title="` + after + `">` + after[:7] + `</code> on <code>main</code>`,
		"not cloned yet",
		`<form method="post" action="/repos/site/deploy">`,
		`<form method="post" action="/repos/docs/deploy">`,
		fmt.Sprintf(`<a href="/deploys/%d">#%d</a> <span class="badge tone-ok">succeeded</span>`, dp, dp),
		"never deployed", "acme/site",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("repositories page lacks %q", want)
		}
	}
	if i, j := strings.Index(body, `data-live="repo-docs"`), strings.Index(body, `data-live="repo-site"`); i < 0 || j < 0 || i > j {
		t.Errorf("repositories are not listed sorted by name")
	}
	// Repositories that are each their own hook are shown as before hooks could be shared.
	if strings.Contains(body, `class="hook"`) || strings.Contains(body, "[repos.") {
		t.Errorf("a repository with its own secret is shown under a hook heading")
	}
}

func TestDeployNow(t *testing.T) {
	g := newGateway(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(headers map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, g.url+"/repos/site/deploy", nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	manual := func() []store.Deploy {
		dps, err := g.store.ListDeploys(context.Background(), store.DeployFilter{Trigger: store.TriggerManual})
		if err != nil {
			t.Fatal(err)
		}
		return dps
	}

	// Basic auth rides along with every request a browser makes, so a form on another
	// site must not be able to press the button.
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site", "Origin": "https://other.example.com"},
		{"Origin": "https://evil.example"},
	} {
		resp, body := post(h)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "came from another site") {
			t.Fatalf("%v: %d\n%s", h, resp.StatusCode, body)
		}
	}
	if n := len(manual()); n != 0 {
		t.Fatalf("a cross-site request queued %d deploys", n)
	}

	resp, body := post(map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": g.url})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deploy now: %d\n%s", resp.StatusCode, body)
	}
	dps := manual()
	if len(dps) != 1 || resp.Header.Get("Location") != fmt.Sprintf("/deploys/%d", dps[0].ID) {
		t.Fatalf("redirect to %q; manual deploys %+v", resp.Header.Get("Location"), dps)
	}
	if dp := g.waitDeploy(dps[0].ID); dp.Status != store.DeploySucceeded || dp.Trigger != store.TriggerManual {
		t.Fatalf("manual deploy %+v", dp)
	}
	page := okPage(t, g.url, resp.Header.Get("Location"))
	if !strings.Contains(page, "manual") || !strings.Contains(page, ">succeeded</span>") {
		t.Fatalf("deploy page:\n%s", page)
	}
	// No delivery joined it: the page says why, for this trigger only.
	if !strings.Contains(page, "None: this deploy was started by hand.") || strings.Contains(page, "recovery") {
		t.Fatalf("deploy page of a manual deploy does not say it was started by hand:\n%s", page)
	}
}

// TestLiveMarkers checks what live.js and the no-script refresh rely on: a queued or
// running deploy marks its elements active, a finished one does not.
func TestLiveMarkers(t *testing.T) {
	f := newFleet(t, repoSpec{name: "site", commands: []string{"echo started", gateCommand}})
	deliveryID, deployID, _ := f.pushed("site", "slow deploy", nil)
	testkit.Eventually(t, 30*time.Second, "the deploy to run", func() bool {
		dp, err := f.store.Deploy(context.Background(), deployID)
		return err == nil && dp.Status == store.DeployRunning
	})
	live := fmt.Sprintf(`data-live="delivery-%d" data-active`, deliveryID)
	for path, want := range map[string]string{
		"/": live,
		fmt.Sprintf("/deliveries/%d", deliveryID): fmt.Sprintf(`data-live="deploy-%d" data-active`, deployID),
		fmt.Sprintf("/deploys/%d", deployID):      fmt.Sprintf(`data-live="deploy-%d" data-active`, deployID),
		"/repos":                                  `data-live="repo-site" data-active`,
	} {
		body := okPage(t, f.url, path)
		if !strings.Contains(body, want) || !strings.Contains(body, `<noscript><meta http-equiv="refresh" content="5"></noscript>`) ||
			!strings.Contains(body, `<script src="/static/live.js" defer></script>`) {
			t.Errorf("%s while running: no %q, refresh or script\n%s", path, want, body)
		}
	}
	if body := okPage(t, f.url, "/"); !strings.Contains(body, `tr class="tone-busy"`) || !strings.Contains(body, "so far") {
		t.Errorf("running row is not amber or has no running time")
	}

	f.release(deployID)
	f.waitDeploy(deployID)
	for _, path := range []string{"/", fmt.Sprintf("/deploys/%d", deployID), "/repos"} {
		if body := okPage(t, f.url, path); strings.Contains(body, "data-active") || strings.Contains(body, "http-equiv") {
			t.Errorf("%s still active after the deploy finished", path)
		}
	}
}

func TestStaticFiles(t *testing.T) {
	g := newGateway(t)
	for file, ctype := range map[string]string{"live.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"} {
		resp, body := page(t, g.url, "/static/"+file)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ctype || len(body) < 100 {
			t.Fatalf("%s: %d %q", file, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		req, _ := http.NewRequest(http.MethodGet, g.url+"/static/"+file, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		again, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		again.Body.Close()
		if resp.Header.Get("ETag") == "" || again.StatusCode != http.StatusNotModified {
			t.Fatalf("%s: revalidation answered %d", file, again.StatusCode)
		}
	}
}
