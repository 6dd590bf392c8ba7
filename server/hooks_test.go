package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/repos"
	gitcheckout "github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

const (
	secret  = "It's a Secret to Everybody"
	maxBody = 64 << 10
)

// gateway is the real thing in one process: a SQLite file, a git origin and checkout, the
// deploy workers and the Gin router behind real HTTP.
type gateway struct {
	t        *testing.T
	store    *store.Store
	database string // the store's database, for a second store on it (another node)
	origin   *testkit.Origin
	checkout string
	url      string
	mgr      *repos.Manager
	srv      *server.Server
}

// testNode is the node ([server] node) the test gateway's store records on its deploys.
const testNode = "gw-test"

func newGateway(t *testing.T, configure ...func(*server.Options)) *gateway {
	t.Helper()
	g := newIdleGateway(t, configure...)
	g.mgr.Start()
	return g
}

// newIdleGateway is newGateway with its deploy workers not started: a deploy queued stays
// queued, so a test can set up the queue exactly; g.mgr.Start() starts them.
func newIdleGateway(t *testing.T, configure ...func(*server.Options)) *gateway {
	t.Helper()
	database := testDatabase(t)
	st, err := store.Open(context.Background(), database, store.WithNode(testNode))
	if err != nil {
		t.Fatal(err)
	}
	origin := testkit.NewOrigin(t)
	checkout := origin.Clone()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := repos.NewManager(st, []repos.Repo{{
		Spec:     gitcheckout.Spec{Name: "site", Path: checkout, Branch: "main"},
		Commands: []string{"echo deployed $HOOKGATE_COMMIT"},
		Timeout:  time.Minute,
	}}, repos.Options{Workers: 2, Logger: logger})
	st.OnQueued(mgr.Wake) // as gateway.New wires it
	opts := server.Options{
		Hooks:   []server.Hook{{Name: "site", Secret: []byte(secret), Branch: "main", Repository: "binkkatal/sample_app", Path: checkout}},
		MaxBody: maxBody,
		Logger:  logger,
	}
	for _, f := range configure {
		f(&opts)
	}
	srv, err := server.New(opts, st, mgr)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		mgr.Stop(10 * time.Second)
		st.Close()
	})
	return &gateway{t: t, store: st, database: database, origin: origin, checkout: checkout, url: ts.URL, mgr: mgr, srv: srv}
}

type delivery struct {
	path    string
	method  string
	event   string
	guid    string
	ctype   string
	body    []byte
	headers map[string]string // set as given; "" deletes
}

func (g *gateway) send(d delivery) (*http.Response, map[string]any) {
	g.t.Helper()
	if d.method == "" {
		d.method = http.MethodPost
	}
	if d.path == "" {
		d.path = "/hooks/site"
	}
	if d.ctype == "" {
		d.ctype = "application/json"
	}
	req, err := http.NewRequest(d.method, g.url+d.path, bytes.NewReader(d.body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", d.ctype)
	req.Header.Set("User-Agent", "GitHub-Hookshot/test")
	forge.SetDeliveryHeaders(req.Header, forge.ProviderGitHub, d.event, d.guid, d.body, []byte(secret))
	for k, v := range d.headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return g.do(req)
}

// do sends req and decodes the JSON answer, which every hook answer is.
func (g *gateway) do(req *http.Request) (*http.Response, map[string]any) {
	g.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			g.t.Fatalf("response is not JSON: %q", raw)
		}
	}
	return resp, out
}

func (g *gateway) waitDeploy(id int64) store.Deploy {
	g.t.Helper()
	var dp store.Deploy
	testkit.Eventually(g.t, 30*time.Second, "deploy to finish", func() bool {
		var err error
		dp, err = g.store.Deploy(context.Background(), id)
		if err != nil {
			g.t.Fatal(err)
		}
		return dp.Status != store.DeployQueued && dp.Status != store.DeployRunning
	})
	return dp
}

func id(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

func TestPushDeploys(t *testing.T) {
	for _, tc := range []struct {
		name string
		form bool
		sha1 bool
	}{
		{name: "json"},
		{name: "form", form: true},
		{name: "legacy sha1", sha1: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t)
			before := testkit.CheckoutHead(t, g.checkout)
			after := g.origin.Commit(map[string]string{"index.html": "<h1>v2</h1>\n"}, "v2")
			payload := testkit.Push(t, "refs/heads/main", before, after, "binkkatal/sample_app")
			d := delivery{event: "push", guid: "72d3162e-cc78-11e3-81ab-4c9367dc0958", body: payload}
			if tc.form {
				d.ctype = "application/x-www-form-urlencoded"
				d.body = []byte(url.Values{"payload": {string(payload)}}.Encode())
			}
			if tc.sha1 {
				mac := hmac.New(sha1.New, []byte(secret))
				mac.Write(d.body)
				d.headers = map[string]string{"X-Hub-Signature-256": "", "X-Hub-Signature": "sha1=" + hex.EncodeToString(mac.Sum(nil))}
			}
			resp, out := g.send(d)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("status %d %v", resp.StatusCode, out)
			}
			deliveryID, deployID := id(out["delivery_id"]), id(out["deploy_id"])
			if deliveryID == 0 || deployID == 0 {
				t.Fatalf("202 body must name the delivery and deploy: %v", out)
			}
			dp := g.waitDeploy(deployID)
			if dp.Status != store.DeploySucceeded {
				t.Fatalf("deploy %s: %s\n%s", dp.Status, dp.Error, dp.Log)
			}
			if head := testkit.CheckoutHead(t, g.checkout); head != after {
				t.Fatalf("checkout at %s, want the pushed %s", head, after)
			}
			if dp.FromCommit != before || dp.ToCommit != after || !strings.Contains(dp.Log, "deployed "+after) {
				t.Fatalf("deploy record: from %s to %s log %q", dp.FromCommit, dp.ToCommit, dp.Log)
			}
			rec, err := g.store.Delivery(context.Background(), deliveryID)
			if err != nil {
				t.Fatal(err)
			}
			wantAlg := "sha256"
			if tc.sha1 {
				wantAlg = "sha1"
			}
			if rec.Commit != after[:7] || rec.Ref != "refs/heads/main" || rec.Signature != store.SignatureValid ||
				rec.SignatureAlg != wantAlg || rec.Status != store.DeliveryAccepted || rec.GUID != d.guid ||
				rec.Pusher != "binkkatal" || rec.FullName != "binkkatal/sample_app" || rec.UserAgent != "GitHub-Hookshot/test" ||
				rec.BodySize != int64(len(d.body)) || rec.DeployID != deployID || rec.RemoteAddr != "127.0.0.1" {
				t.Fatalf("recorded delivery: %+v", rec)
			}
		})
	}
}

// TestBadInputs sends each kind of bad or non-deploying delivery and checks the status
// code, what was recorded, and that nothing was pulled although origin has a new commit.
func TestBadInputs(t *testing.T) {
	g := newGateway(t)
	start := testkit.CheckoutHead(t, g.checkout)
	newer := g.origin.Commit(map[string]string{"index.html": "new\n"}, "not to be deployed")
	push := func(ref, after, fullName string) []byte {
		return testkit.Push(t, ref, start, after, fullName)
	}
	good := push("refs/heads/main", newer, "binkkatal/sample_app")
	var deleted map[string]any
	json.Unmarshal(push("refs/heads/main", strings.Repeat("0", 40), "binkkatal/sample_app"), &deleted)
	deleted["deleted"] = true
	deletedBody, _ := json.Marshal(deleted)
	oversize := append(bytes.Repeat([]byte(" "), maxBody+1-len(good)), good...)
	exact := append(bytes.Repeat([]byte(" "), maxBody-len(good)), good...)

	for _, tc := range []struct {
		name      string
		d         delivery
		status    int
		recorded  bool
		signature string
		result    string
		// wantAccepted is true only for the one control case that must deploy.
	}{
		{name: "unknown hook", d: delivery{path: "/hooks/nope", event: "push", body: good}, status: 404},
		{name: "dot-dot hook", d: delivery{path: "/hooks/..", event: "push", body: good}, status: 404},
		{name: "wrong method", d: delivery{method: http.MethodGet, event: "push"}, status: 405},
		{name: "no signature", d: delivery{event: "push", body: good, headers: map[string]string{"X-Hub-Signature-256": ""}},
			status: 401, recorded: true, signature: store.SignatureMissing, result: store.DeliveryRejected},
		{name: "wrong secret", d: delivery{event: "push", body: good, headers: map[string]string{"X-Hub-Signature-256": forge.Sign(good, []byte("guess"))}},
			status: 401, recorded: true, signature: store.SignatureInvalid, result: store.DeliveryRejected},
		{name: "non-hex sha256", d: delivery{event: "push", body: good, headers: map[string]string{"X-Hub-Signature-256": "sha256=" + strings.Repeat("zz", 32)}},
			status: 401, recorded: true, signature: store.SignatureInvalid, result: store.DeliveryRejected},
		{name: "short sha256", d: delivery{event: "push", body: good, headers: map[string]string{"X-Hub-Signature-256": forge.Sign(good, []byte(secret))[:20]}},
			status: 401, recorded: true, signature: store.SignatureInvalid, result: store.DeliveryRejected},
		{name: "bad sha256 with good sha1", d: delivery{event: "push", body: good, headers: map[string]string{
			"X-Hub-Signature-256": forge.Sign(good, []byte("guess")),
			"X-Hub-Signature":     sha1Sig(good),
		}}, status: 401, recorded: true, signature: store.SignatureInvalid, result: store.DeliveryRejected},
		{name: "signature of another body", d: delivery{event: "push", body: good, headers: map[string]string{"X-Hub-Signature-256": forge.Sign([]byte("{}"), []byte(secret))}},
			status: 401, recorded: true, signature: store.SignatureInvalid, result: store.DeliveryRejected},
		{name: "body over max_body", d: delivery{event: "push", body: oversize},
			status: 413, recorded: true, signature: store.SignatureUnchecked, result: store.DeliveryRejected},
		{name: "empty body", d: delivery{event: "push", body: []byte{}},
			status: 400, recorded: true, signature: store.SignatureValid, result: store.DeliveryRejected},
		{name: "truncated JSON", d: delivery{event: "push", body: good[:len(good)/2]},
			status: 400, recorded: true, signature: store.SignatureValid, result: store.DeliveryRejected},
		{name: "form without payload", d: delivery{event: "push", ctype: "application/x-www-form-urlencoded", body: []byte("other=1")},
			status: 400, recorded: true, signature: store.SignatureValid, result: store.DeliveryRejected},
		{name: "wrong content type", d: delivery{event: "push", ctype: "text/plain", body: good},
			status: 415, recorded: true, signature: store.SignatureValid, result: store.DeliveryRejected},
		{name: "no event header", d: delivery{event: "", body: good, headers: map[string]string{"X-GitHub-Event": ""}},
			status: 400, recorded: true, signature: store.SignatureValid, result: store.DeliveryRejected},
		{name: "push to another branch", d: delivery{event: "push", body: push("refs/heads/feature", newer, "binkkatal/sample_app")},
			status: 200, recorded: true, signature: store.SignatureValid, result: store.DeliveryIgnored},
		{name: "tag push", d: delivery{event: "push", body: push("refs/tags/v1.0.0", newer, "binkkatal/sample_app")},
			status: 200, recorded: true, signature: store.SignatureValid, result: store.DeliveryIgnored},
		{name: "branch deleted", d: delivery{event: "push", body: deletedBody},
			status: 200, recorded: true, signature: store.SignatureValid, result: store.DeliveryIgnored},
		{name: "repository mismatch", d: delivery{event: "push", body: push("refs/heads/main", newer, "evil/fork")},
			status: 200, recorded: true, signature: store.SignatureValid, result: store.DeliveryIgnored},
		{name: "ping", d: delivery{event: "ping", body: testkit.Payload(t, "github/ping.json")},
			status: 200, recorded: true, signature: store.SignatureValid, result: store.DeliveryIgnored},
		{name: "release event", d: delivery{event: "release", body: testkit.Payload(t, "github/release.json")},
			status: 200, recorded: true, signature: store.SignatureValid, result: store.DeliveryIgnored},
		{name: "pull request event", d: delivery{event: "pull_request", body: testkit.Payload(t, "github/pull-request.json")},
			status: 200, recorded: true, signature: store.SignatureValid, result: store.DeliveryIgnored},
		{name: "create event", d: delivery{event: "create", body: testkit.Payload(t, "github/create.json")},
			status: 200, recorded: true, signature: store.SignatureValid, result: store.DeliveryIgnored},
		{name: "delete event", d: delivery{event: "delete", body: testkit.Payload(t, "github/delete.json")},
			status: 200, recorded: true, signature: store.SignatureValid, result: store.DeliveryIgnored},
		{name: "signed push as another event", d: delivery{event: "workflow_run", body: good},
			status: 200, recorded: true, signature: store.SignatureValid, result: store.DeliveryIgnored},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.d.guid == "" {
				tc.d.guid = "guid-" + strings.ReplaceAll(tc.name, " ", "-")
			}
			resp, out := g.send(tc.d)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.status, out)
			}
			if resp.StatusCode >= 400 {
				if e, ok := out["error"].(map[string]any); !ok || e["code"] == "" || e["message"] == "" {
					t.Fatalf("error body %v", out)
				}
			}
			did := id(out["delivery_id"])
			if !tc.recorded {
				if did != 0 {
					t.Fatalf("recorded as %d but must not be", did)
				}
				return
			}
			rec, err := g.store.Delivery(context.Background(), did)
			if err != nil {
				t.Fatalf("delivery not recorded: %v (response %v)", err, out)
			}
			if rec.Signature != tc.signature || rec.Status != tc.result || rec.HTTPStatus != tc.status || rec.Reason == "" || rec.DeployID != 0 {
				t.Fatalf("recorded %+v", rec)
			}
			if tc.signature != store.SignatureValid && rec.Payload != nil {
				t.Fatalf("payload of an unauthenticated request was stored")
			}
		})
	}
	if q, err := g.store.QueuedRepos(context.Background()); err != nil || len(q) != 0 {
		t.Fatalf("a bad input queued a deploy: %v %v", q, err)
	}
	if head := testkit.CheckoutHead(t, g.checkout); head != start {
		t.Fatalf("checkout moved to %s: a bad input was pulled", head)
	}
	if g.srv.UnknownHooks() != 2 {
		t.Fatalf("unknown hooks counted %d, want 2", g.srv.UnknownHooks())
	}

	// The limit is inclusive: a body of exactly max_body is accepted and deployed.
	resp, out := g.send(delivery{event: "push", guid: "exact", body: exact})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("body of exactly max_body: %d %v", resp.StatusCode, out)
	}
	if dp := g.waitDeploy(id(out["deploy_id"])); dp.Status != store.DeploySucceeded || testkit.CheckoutHead(t, g.checkout) != newer {
		t.Fatalf("control push did not deploy: %+v", dp)
	}
}

func sha1Sig(body []byte) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(body)
	return "sha1=" + hex.EncodeToString(mac.Sum(nil))
}

func TestRedelivery(t *testing.T) {
	g := newGateway(t)
	after := g.origin.Commit(map[string]string{"a.txt": "a\n"}, "a")
	body := testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")
	d := delivery{event: "push", guid: "redeliver-me", body: body}
	resp, out := g.send(d)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first: %d %v", resp.StatusCode, out)
	}
	if dp := g.waitDeploy(id(out["deploy_id"])); dp.Status != store.DeploySucceeded {
		t.Fatalf("first deploy %s", dp.Status)
	}
	// GitHub's "Redeliver" sends the same GUID: recorded again, not deployed again.
	resp, out = g.send(d)
	if resp.StatusCode != http.StatusOK || out["status"] != store.DeliveryIgnored {
		t.Fatalf("redelivery: %d %v", resp.StatusCode, out)
	}
	rec, err := g.store.Delivery(context.Background(), id(out["delivery_id"]))
	if err != nil || !rec.Redelivery || rec.DeployID != 0 {
		t.Fatalf("redelivery record %+v %v", rec, err)
	}
}

func TestHealthz(t *testing.T) {
	g := newGateway(t)
	resp, err := http.Get(g.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	g.store.Close()
	resp, err = http.Get(g.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz with the database closed: %d", resp.StatusCode)
	}
}
