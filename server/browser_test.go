package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// chromium finds a Chromium or Chrome binary. Without one the browser test is skipped on a
// developer's machine but fails in CI, where .ci/run installs it: a CI run must never
// pass by skipping it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found; .ci/run must install it")
	}
	t.Skip("chromium not found; install it to run the browser test")
	return ""
}

// browser starts a headless Chromium with its own profile and returns a tab's context.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Names for the hostile pages of TestBrowserCrossSite: attacker.test and
		// rebind.test resolve to this machine, as a DNS-rebinding name does.
		chromedp.Flag("host-resolver-rules", "MAP *.test 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first action starts the browser and binds it to ctx, so it runs without a
	// deadline; each step below gets its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// step runs browser actions with a deadline, failing the test with what was being done.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition in the page until it holds. An evaluation that
// fails because the page is navigating counts as "not yet".
func waitFor(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	var last error
	ok := func() bool {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		v, err := chromedp.Run(ectx, chromedp.Evaluate[bool](`Boolean(`+cond+`)`))
		last = err
		return err == nil && v
	}
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			body, _ := chromedp.Run(ectx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("timed out waiting for %s (%s; last error %v); the page says:\n%s", what, cond, last, body)
		}
		time.Sleep(20 * time.Millisecond) // between polls of the condition, not instead of it
	}
}

// TestBrowser drives the real pages in headless Chromium: the history, its filter form, a
// delivery with its deploy's output, and "Deploy now" followed live without a reload.
// With HOOKGATE_SCREENSHOT=1 it also saves docs/history.png.
func TestBrowser(t *testing.T) {
	ctx := browser(t)
	f := newFleet(t,
		repoSpec{name: "site", commands: []string{`echo "build: site at $HOOKGATE_COMMIT"`, gateCommand, `echo "site is live"`}},
		repoSpec{name: "api", commands: []string{
			`echo "migrate: applying pending migrations"`,
			`test ! -e BROKEN || { echo 'migration 0042_orders_total failed: column "total" does not exist' >&2; exit 1; }`,
			`echo "api restarted"`,
		}},
		repoSpec{name: "docs", commands: []string{`echo "docs built: 42 pages"`}},
	)
	at := func(ago time.Duration) { f.back.Store(int64(ago)) }
	done := func(deployID int64, want string) {
		t.Helper()
		if dp := f.waitDeploy(deployID); dp.Status != want {
			t.Fatalf("deploy %d %s, want %s: %s", deployID, dp.Status, want, dp.Error)
		}
	}

	// A morning of deliveries across three repositories, oldest first.
	at(5*time.Hour + 12*time.Minute)
	_, dp, _ := f.pushed("docs", "docs: fix typo in install guide", nil)
	done(dp, store.DeploySucceeded)
	at(3*time.Hour + 4*time.Minute)
	_, dp, _ = f.pushed("api", "api: add /v2/orders endpoint", nil)
	done(dp, store.DeploySucceeded)
	at(2*time.Hour + 50*time.Minute)
	f.other("site", delivery{event: "ping", body: testkit.Payload(t, "github/ping.json")}, 200)
	at(2 * time.Hour)
	f.other("site", delivery{event: "push", body: refPush(t, "site", "refs/heads/feature/pricing", f.origins["site"].Head())}, 200)
	at(94 * time.Minute)
	_, dp, _ = f.pushed("site", "site: new pricing page", nil)
	f.release(dp)
	done(dp, store.DeploySucceeded)
	at(41 * time.Minute)
	f.other("api", delivery{event: "push", body: []byte(`{"ref":"refs/heads/main"}`), headers: map[string]string{"X-Hub-Signature-256": "sha256=" + strings.Repeat("0", 64)}}, 401)
	at(26 * time.Minute)
	broken, dp, _ := f.pushed("api", "api: add total column to orders", map[string]string{"BROKEN": "yes\n"})
	done(dp, store.DeployFailed)
	at(12 * time.Minute)
	_, dp, _ = f.pushed("docs", "docs: webhook setup guide", nil)
	done(dp, store.DeploySucceeded)
	at(6 * time.Minute)
	_, dp, _ = f.pushed("api", "api: revert total column", map[string]string{"BROKEN": ""})
	done(dp, store.DeploySucceeded)
	at(2 * time.Minute)
	_, held, _ := f.pushed("site", "site: hero image for the spring sale", nil)
	testkit.Eventually(t, 30*time.Second, "the site deploy to run", func() bool {
		d, err := f.store.Deploy(context.Background(), held)
		return err == nil && d.Status == store.DeployRunning
	})
	at(0)

	// The history: every row, the failed one red, the running one amber.
	step(t, ctx, "load the history", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(f.url+"/"), chromedp.WaitVisible(chromedp.CSS("table.deliveries")))
	if n := eval[int](t, ctx, `document.querySelectorAll("table.deliveries tbody tr").length`); n != 10 {
		t.Fatalf("history shows %d rows, want 10", n)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("tr.tone-busy[data-active]").length`); n != 1 {
		t.Fatalf("%d running rows, want 1", n)
	}
	failedRow := fmt.Sprintf(`tr[data-id="%d"]`, broken)
	if c := eval[string](t, ctx, fmt.Sprintf(`getComputedStyle(document.querySelector('%s td')).backgroundColor`, failedRow)); c == "rgba(0, 0, 0, 0)" || c == "" {
		t.Fatalf("the failed row is not tinted: %q", c)
	}
	if os.Getenv("HOOKGATE_SCREENSHOT") == "1" {
		// A short viewport, so the full-page image ends where the page does.
		step(t, ctx, "size for the screenshot", chromedp.EmulateViewport(1280, 400))
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "history.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Filter by repository with the form: the result is a shareable URL.
	step(t, ctx, "filter by repository",
		chromedp.SetValue(chromedp.CSS(`select[name="repo"]`), "api"),
		chromedp.Click(chromedp.CSS(`form.filters button`)))
	waitFor(t, ctx, "the filtered page", `location.search.includes("repo=api") && document.readyState === "complete"`)
	repos := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("table.deliveries td.repo"), td => td.textContent)`)
	if len(repos) != 4 || strings.Count(strings.Join(repos, ","), "api") != 4 {
		t.Fatalf("filtered rows: %v", repos)
	}

	// Open the failed delivery and read its deploy's output.
	step(t, ctx, "open the failed delivery", chromedp.Click(chromedp.CSS(failedRow+` a[href^="/deliveries/"]`)))
	waitFor(t, ctx, "the delivery page", fmt.Sprintf(`location.pathname === "/deliveries/%d" && document.querySelector("pre.log") !== null`, broken))
	log := eval[string](t, ctx, `document.querySelector("pre.log").textContent`)
	if !strings.Contains(log, `migration 0042_orders_total failed: column "total" does not exist`) {
		t.Fatalf("deploy output on the delivery page: %q", log)
	}
	if msg := eval[string](t, ctx, `document.querySelector("pre.message").textContent`); msg != "api: add total column to orders" {
		t.Fatalf("commit message %q", msg)
	}

	// Deploy now, then watch the deploy go queued → running → succeeded on one page load.
	step(t, ctx, "open the repositories", chromedp.Navigate(f.url+"/repos"), chromedp.WaitVisible(chromedp.CSS(`tr[data-live="repo-site"] button`)))
	step(t, ctx, "press Deploy now", chromedp.Click(chromedp.CSS(`tr[data-live="repo-site"] button`)))
	waitFor(t, ctx, "the deploy page", `location.pathname.startsWith("/deploys/") && document.readyState === "complete"`)
	manual, err := strconv.ParseInt(strings.TrimPrefix(eval[string](t, ctx, `location.pathname`), "/deploys/"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	badge := fmt.Sprintf(`document.querySelector('[data-live="deploy-%d"] h2 .badge').textContent`, manual)
	if s := eval[string](t, ctx, badge); s != store.DeployQueued {
		t.Fatalf("a deploy behind a running one shows %q, want queued", s)
	}
	// A reload would lose this; live updates keep it.
	eval[chromedp.Void](t, ctx, `window.hookgateNoReload = true`)
	f.release(held)
	waitFor(t, ctx, "running", badge+` === "running"`)
	// The output is tailed from the log stream into a <pre> the script made (the polling
	// would bring a plain one): the first line while the deploy waits at its gate, then
	// the last one after it.
	streamed := `document.querySelector("pre.log[data-streamed]")`
	waitFor(t, ctx, "the first line from the stream", `document.querySelector('[data-stream="open"]') && `+streamed+` && `+streamed+`.textContent.includes("build: site")`)
	if got := eval[string](t, ctx, streamed+`.textContent`); strings.Contains(got, "site is live") {
		t.Fatalf("the last line shows before the gate opened: %q", got)
	}
	f.release(manual)
	waitFor(t, ctx, "the last line from the stream", streamed+` && `+streamed+`.textContent.includes("site is live")`)
	waitFor(t, ctx, "succeeded", badge+` === "succeeded" && document.querySelector("pre.log").textContent.includes("site is live")`)
	if s := eval[string](t, ctx, `document.querySelector("[data-stream-src]").getAttribute("data-stream")`); s != "ended" {
		t.Fatalf("the stream marker says %q once the deploy ended, want ended", s)
	}
	if d, err := f.store.Deploy(context.Background(), manual); err != nil {
		t.Fatal(err)
	} else if got := eval[string](t, ctx, streamed+`.textContent`); got != d.Log {
		t.Fatalf("streamed output\n%q\ndiffers from the stored log\n%q", got, d.Log)
	}
	if !eval[bool](t, ctx, `window.hookgateNoReload === true`) {
		t.Fatalf("the page was reloaded; it should have updated in place")
	}
	if d, err := f.store.Deploy(context.Background(), manual); err != nil || d.Trigger != store.TriggerManual || d.Status != store.DeploySucceeded {
		t.Fatalf("manual deploy %+v %v", d, err)
	}
}

// refPush is a signed-to-be push of repo's current head to another ref.
func refPush(t *testing.T, repo, ref, head string) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(pushPayload(t, repo, head, head, "wip: pricing experiments", "mona"), &p); err != nil {
		t.Fatal(err)
	}
	p["ref"] = ref
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seenRequest is a request that reached hookgate, as the browser sent it.
type seenRequest struct {
	method, path, fetchSite, origin string
	status                          int
	answer                          string
}

// statusWriter remembers what a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
	body   strings.Builder
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

// attackScript is the hostile page's script: the no-cors POSTs any page can send to a
// loopback address, then the outcome in the title.
const attackScript = `
const t = %q;
Promise.allSettled([
  fetch(t + "/api/v1/repos/site/deploy", {method: "POST", mode: "no-cors"}),
  fetch(t + "/api/v1/reload", {method: "POST", mode: "no-cors"}),
  fetch(t + "/api/v1/deliveries/%d/redeliver", {method: "POST", mode: "no-cors"}),
  fetch(t + "/repos/site/deploy", {method: "POST", mode: "no-cors", body: new URLSearchParams()}),
]).then(r => { document.title = "sent: " + r.map(x => x.status).join(","); });
`

// TestBrowserCrossSite: in real Chromium, a page of another site POSTs to the loopback
// API and pages the way any site can (no-cors fetch), and a DNS-rebinding page reaches
// hookgate under its own name: the requests arrive and are refused, and nothing is
// queued, replayed or reloaded. The same POST from hookgate's own page works.
func TestBrowserCrossSite(t *testing.T) {
	ctx := browser(t)
	var reloads atomic.Int64
	g := newGateway(t, func(o *server.Options) {
		o.Reload = func(context.Context) (server.ReloadReport, error) {
			reloads.Add(1)
			return server.ReloadReport{}, nil
		}
	})
	after := g.origin.Commit(map[string]string{"x.txt": "x\n"}, "a push to replay")
	resp, out := g.send(delivery{event: "push", guid: "push-1", body: testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d %v", resp.StatusCode, out)
	}
	pushID := id(out["delivery_id"])
	g.waitDeploy(id(out["deploy_id"]))

	// hookgate as the browser reaches it, recording what arrives.
	var mu sync.Mutex
	var seen []seenRequest
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		g.srv.Handler().ServeHTTP(sw, r)
		mu.Lock()
		seen = append(seen, seenRequest{r.Method, r.URL.Path, r.Header.Get("Sec-Fetch-Site"), r.Header.Get("Origin"), sw.status, sw.body.String()})
		mu.Unlock()
	}))
	defer gw.Close()
	port := strings.TrimPrefix(gw.URL, "http://127.0.0.1:")
	posts := func() []seenRequest {
		mu.Lock()
		defer mu.Unlock()
		var out []seenRequest
		for _, r := range seen {
			if r.method == http.MethodPost {
				out = append(out, r)
			}
		}
		seen = nil
		return out
	}
	state := func() counts {
		t.Helper()
		return g.counts(&reloads)
	}
	before := state()

	// Another site, on another port and name: its requests are cross-site.
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>cute cats</title><script>"+attackScript+"</script>", gw.URL, pushID)
	}))
	defer attacker.Close()
	evil := "http://attacker.test:" + strings.TrimPrefix(attacker.URL, "http://127.0.0.1:")
	step(t, ctx, "visit the attacker's page", chromedp.Navigate(evil+"/"))
	waitFor(t, ctx, "the attack to be sent", `document.title.startsWith("sent: ")`)
	sent := posts()
	if len(sent) != 4 {
		t.Fatalf("%d of the 4 POSTs reached hookgate: %+v", len(sent), sent)
	}
	for _, r := range sent {
		if r.fetchSite != "cross-site" || r.origin != evil || r.status != http.StatusForbidden || !strings.Contains(r.answer, `"cross_origin"`) {
			t.Errorf("%s %s: Sec-Fetch-Site %q, Origin %q, answered %d %s; want cross-site, %s, 403 cross_origin", r.method, r.path, r.fetchSite, r.origin, r.status, r.answer, evil)
		}
	}
	if now := state(); now != before {
		t.Fatalf("the attacker's page changed state: %+v, before %+v", now, before)
	}

	// DNS rebinding: the attacker's name now points at hookgate, so the page is same-origin
	// with it: it can send what it likes and read the answers, and its Origin matches the
	// Host, so the origin check lets it through (Chromium sends no Sec-Fetch-Site to a
	// plain-http name). The Host gives it away.
	rebind := "http://rebind.test:" + port
	step(t, ctx, "open hookgate under the rebinding name", chromedp.Navigate(rebind+"/api/v1/deliveries"))
	if body := eval[string](t, ctx, `document.body.innerText`); !strings.Contains(body, "host_not_allowed") || strings.Contains(body, "push-1") {
		t.Fatalf("the history under a rebinding name: %s", body)
	}
	step(t, ctx, "run the attack from the rebinding origin", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(attackScript, rebind, pushID)))
	waitFor(t, ctx, "the rebinding attack to be sent", `document.title.startsWith("sent: ")`)
	sent = posts()
	if len(sent) != 4 {
		t.Fatalf("%d of the 4 rebinding POSTs reached hookgate: %+v", len(sent), sent)
	}
	for _, r := range sent {
		if r.origin != rebind || r.status != http.StatusForbidden || !strings.Contains(r.answer, `"host_not_allowed"`) {
			t.Errorf("rebinding %s %s: Origin %q, answered %d %s; want %s, 403 host_not_allowed", r.method, r.path, r.origin, r.status, r.answer, rebind)
		}
	}
	if now := state(); now != before {
		t.Fatalf("the rebinding page changed state: %+v, before %+v", now, before)
	}

	// hookgate's own page, same request: it works, so the refusals above are not the
	// browser failing to send.
	u, err := url.Parse(gw.URL)
	if err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "open hookgate's own page", chromedp.Navigate(gw.URL+"/repos"), chromedp.WaitVisible(chromedp.CSS(`tr[data-live="repo-site"] button`)))
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	status, err := chromedp.Run(sctx, chromedp.Evaluate[int](`fetch("/api/v1/reload", {method: "POST"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || reloads.Load() != 1 {
		t.Fatalf("same-origin reload from %s: %d, %d reloads", u.Host, status, reloads.Load())
	}
}

// TestBrowserRollback presses "Roll back to this commit" on an earlier deploy, sees the
// repository pinned on the repositories page, and unpins it there.
func TestBrowserRollback(t *testing.T) {
	ctx := browser(t)
	g := newGateway(t)
	g.origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	earlier := g.manualDeploy()
	latest := g.origin.Commit(map[string]string{"app.txt": "v3\n"}, "v3")
	live := g.manualDeploy()

	// The live deploy offers no rollback; the earlier one does.
	step(t, ctx, "open the live deploy", chromedp.Navigate(fmt.Sprintf("%s/deploys/%d", g.url, live.ID)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-live="deploy-%d"]`, live.ID))))
	if eval[bool](t, ctx, `document.querySelector("form.rollback") !== null`) {
		t.Fatal("the live deploy offers a rollback to itself")
	}
	step(t, ctx, "open the earlier deploy", chromedp.Navigate(fmt.Sprintf("%s/deploys/%d", g.url, earlier.ID)),
		chromedp.WaitVisible(chromedp.CSS(`form.rollback button`)))
	if b := eval[string](t, ctx, `document.querySelector("form.rollback button").textContent`); b != "Roll back to this commit" {
		t.Fatalf("button reads %q", b)
	}
	step(t, ctx, "press Roll back to this commit", chromedp.Click(chromedp.CSS(`form.rollback button`)))
	waitFor(t, ctx, "the rollback's deploy page", fmt.Sprintf(`location.pathname.startsWith("/deploys/") && location.pathname !== "/deploys/%d" && document.readyState === "complete"`, earlier.ID))
	rb, err := strconv.ParseInt(strings.TrimPrefix(eval[string](t, ctx, `location.pathname`), "/deploys/"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if dp := g.waitDeploy(rb); dp.Status != store.DeploySucceeded || dp.Trigger != store.TriggerRollback || testkit.CheckoutHead(t, g.checkout) != earlier.ToCommit {
		t.Fatalf("rollback deploy %s %s; HEAD %s, want %s", dp.Status, dp.Trigger, testkit.CheckoutHead(t, g.checkout), earlier.ToCommit)
	}
	waitFor(t, ctx, "the reason on the deploy page", `document.querySelector("dd.reason") !== null && document.querySelector("dd.reason").textContent.includes("rollback to `+earlier.ToCommit[:7]+`")`)

	step(t, ctx, "open the repositories", chromedp.Navigate(g.url+"/repos"), chromedp.WaitVisible(chromedp.CSS(`tr[data-live="repo-site"]`)))
	if badge := eval[string](t, ctx, `(document.querySelector('tr[data-live="repo-site"] .badge.pinned') || {}).textContent`); badge != "pinned at "+earlier.ToCommit[:7] {
		t.Fatalf("pinned badge reads %q", badge)
	}
	if eval[bool](t, ctx, `Array.from(document.querySelectorAll('tr[data-live="repo-site"] button'), b => b.textContent).includes("Deploy now")`) {
		t.Fatal("a pinned repository offers Deploy now")
	}
	step(t, ctx, "press Unpin", chromedp.Click(chromedp.CSS(`tr[data-live="repo-site"] form[action$="/unpin"] button`)))
	waitFor(t, ctx, "the reconcile deploy's page", `location.pathname.startsWith("/deploys/") && document.readyState === "complete"`)
	rc, err := strconv.ParseInt(strings.TrimPrefix(eval[string](t, ctx, `location.pathname`), "/deploys/"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if dp := g.waitDeploy(rc); dp.Trigger != store.TriggerReconcile || testkit.CheckoutHead(t, g.checkout) != latest {
		t.Fatalf("after Unpin: deploy %s; HEAD %s, want origin's %s", dp.Trigger, testkit.CheckoutHead(t, g.checkout), latest)
	}
}

// TestBrowserDeploysAndButtons: the nav leads to the Deploys page, whose trigger filter
// finds a deploy no delivery started; on the repositories page, beside a long origin
// error, every button's box and text stay inside its cell.
func TestBrowserDeploysAndButtons(t *testing.T) {
	ctx := browser(t)
	// docs' checkout is a folder that is not a git work tree, under a long path: its
	// Checkout column shows a long error.
	long := filepath.Join(t.TempDir(), strings.Repeat("a-very-long-directory-name-", 6)+"docs")
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Fatal(err)
	}
	gw := startTestGateway(t, nil, []gatewaytest.Option{gatewaytest.Repos(gatewaytest.Repo{Name: "site"}, gatewaytest.Repo{Name: "docs", Path: long})})
	g := gatewayOf(t, gw, "site")
	g.mgr.Start()
	after := g.origin.Commit(map[string]string{"v.txt": "1"}, "v1")
	resp, out := g.send(delivery{event: "push", guid: "72d3162e-cc78-11e3-81ab-4c9367dc0958", body: testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d %v", resp.StatusCode, out)
	}
	g.waitDeploy(id(out["deploy_id"]))
	manual := pressDeployNow(t, g, "site")
	if dp := g.waitDeploy(manual); dp.Status != store.DeploySucceeded {
		t.Fatalf("manual deploy %s: %s", dp.Status, dp.Error)
	}
	step(t, ctx, "open the history", chromedp.Navigate(g.url+"/"), chromedp.WaitVisible(chromedp.CSS(`nav a[href="/deploys"]`)))
	fits := `document.querySelector("table.list").getBoundingClientRect().right <= document.querySelector("main").getBoundingClientRect().right + 0.5`
	if !eval[bool](t, ctx, fits) {
		t.Fatal("the history's table, with its GUID and HTTP columns, is wider than the page")
	}
	step(t, ctx, "follow Deploys", chromedp.Click(chromedp.CSS(`nav a[href="/deploys"]`)))
	waitFor(t, ctx, "the deploys page", `location.pathname === "/deploys" && document.querySelector("table.deploys") !== null`)
	// Set and submit in one script: live.js may swap the page's nodes between two
	// separate DevTools steps ("No node with given id found").
	eval[bool](t, ctx, `(() => {
		const form = document.querySelector("form.filters");
		form.querySelector('select[name="trigger"]').value = "manual";
		form.querySelector("button").click();
		return true;
	})()`)
	waitFor(t, ctx, "the filtered deploys", `location.search.includes("trigger=manual") && document.readyState === "complete"`)
	if rows := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("table.deploys tbody tr"), tr => tr.querySelector("td.trigger").textContent + " " + tr.querySelector("a").textContent)`); len(rows) != 1 || rows[0] != fmt.Sprintf("manual #%d", manual) {
		t.Fatalf("deploys filtered by trigger=manual: %v", rows)
	}
	if cur := eval[string](t, ctx, `document.querySelector('nav a[aria-current="page"]').textContent`); cur != "Deploys" {
		t.Fatalf("current nav entry %q", cur)
	}
	if !eval[bool](t, ctx, fits) {
		t.Fatal("the deploys table is wider than the page")
	}

	step(t, ctx, "open the repositories", chromedp.Navigate(g.url+"/repos"), chromedp.WaitVisible(chromedp.CSS(`tr[data-live="repo-site"] td.action button`)))
	if !eval[bool](t, ctx, `document.querySelector('tr[data-live="repo-docs"] td.checkout').textContent.includes("a-very-long-directory-name-")`) {
		t.Fatalf("docs' Checkout column does not show the long error: %q", eval[string](t, ctx, `document.querySelector('tr[data-live="repo-docs"] td.checkout').textContent`))
	}
	// Each button inside its cell and the page (no sideways scrolling to reach it), and
	// its text inside the button.
	spills := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("td.action button")).flatMap(b => {
		const cell = b.closest("td").getBoundingClientRect(), box = b.getBoundingClientRect(), out = [];
		const page = document.querySelector("main").getBoundingClientRect();
		if (box.right > page.right + 0.5 || box.right > document.documentElement.clientWidth)
			out.push(b.textContent + ": button " + JSON.stringify(box) + " beyond the page " + JSON.stringify(page));
		if (box.left < cell.left - 0.5 || box.right > cell.right + 0.5 || box.top < cell.top - 0.5 || box.bottom > cell.bottom + 0.5)
			out.push(b.textContent + ": button " + JSON.stringify(box) + " outside its cell " + JSON.stringify(cell));
		if (b.scrollWidth > b.clientWidth + 1)
			out.push(b.textContent + ": text " + b.scrollWidth + "px wide in a " + b.clientWidth + "px button");
		return out;
	})`)
	if len(spills) > 0 {
		t.Fatalf("buttons overflow on the repositories page:\n%s", strings.Join(spills, "\n"))
	}
}

// TestBrowserHookTargets: the repositories page, as a browser lays it out, shows a shared
// hook's heading over its targets and a tag target's live tag in its Live column.
func TestBrowserHookTargets(t *testing.T) {
	ctx := browser(t)
	g := environmentsGateway(t)
	resp, answer := g.send(delivery{path: "/hooks/shop", event: "push", guid: gatewaytest.NewGUID(), body: shopPush(t, "refs/tags/v1.1.0", "release", false)})
	if resp.StatusCode != 202 {
		t.Fatalf("tag push: %d %v", resp.StatusCode, answer)
	}
	dp, err := g.store.ClaimDeploy(context.Background(), "prod")
	if err != nil || dp.ID != id(answer["deploy_id"]) {
		t.Fatalf("claim prod: %+v %v", dp, err)
	}
	if err := g.store.FinishDeploy(context.Background(), dp.ID, store.Result{Status: store.DeploySucceeded, ToCommit: "fd489864e7642b48eaad6e3f155c10e46810ec72"}); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "open the repositories", chromedp.Navigate(g.url+"/repos"), chromedp.WaitVisible(chromedp.CSS(`tr[data-live="repo-prod"]`)))
	heading := eval[string](t, ctx, `document.querySelector('tbody[data-hook="shop"] th[scope=rowgroup]').innerText`)
	live := eval[string](t, ctx, `document.querySelector('tbody[data-hook="shop"] tr[data-live="repo-prod"] td[data-label="Live"]').innerText`)
	if !strings.HasPrefix(heading, "[hooks.shop]") || !strings.Contains(live, "tag v1.1.0") {
		t.Fatalf("the shop hook's heading reads %q, prod's Live %q; want [hooks.shop] and tag v1.1.0", heading, live)
	}
}
