package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/policy"
	"github.com/hookgate/hookgate/store"
)

// Full names in the real forge payloads in testdata/.
const (
	giteaFullName  = "example/example"
	gitlabFullName = "mike/diaspora"
)

// forgePayload returns a real payload from testdata/ with ref, before and after
// replaced (GitLab's checkout_sha follows after), so it names the test origin's commits.
// Other top-level fields are set from extra; a nil value deletes the field.
func forgePayload(t *testing.T, name, ref, before, after string, extra map[string]any) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(testkit.Payload(t, name), &p); err != nil {
		t.Fatal(err)
	}
	p["ref"], p["before"], p["after"] = ref, before, after
	if _, ok := p["checkout_sha"]; ok {
		p["checkout_sha"] = after
	}
	if hc, ok := p["head_commit"].(map[string]any); ok {
		hc["id"] = after
	}
	for k, v := range extra {
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forgeSend posts body to path with exactly the given headers (plus Content-Type and
// Content-Length); a header given twice is sent twice.
func (g *gateway) forgeSend(path, ctype string, body []byte, headers http.Header) (*http.Response, map[string]any) {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.url+path, bytes.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	for k, vs := range headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", ctype)
	return g.do(req)
}

// deployed checks that the hook accepted a push (202) and that its deploy succeeded with
// the checkout at after.
func (g *gateway) deployed(resp *http.Response, out map[string]any, after string) store.Deploy {
	g.t.Helper()
	if resp.StatusCode != http.StatusAccepted {
		g.t.Fatalf("status %d %v", resp.StatusCode, out)
	}
	dp := g.waitDeploy(id(out["deploy_id"]))
	if dp.Status != store.DeploySucceeded {
		g.t.Fatalf("deploy %s: %s\n%s", dp.Status, dp.Error, dp.Log)
	}
	if head := testkit.CheckoutHead(g.t, g.checkout); head != after {
		g.t.Fatalf("checkout at %s, want the pushed %s", head, after)
	}
	return dp
}

// giteaHeaders are the headers Gitea sends with a delivery: its own, Gogs' and GitHub's
// (so GitHub-only receivers work), all signed over the JSON payload.
func giteaHeaders(event, guid string, payload []byte) http.Header {
	h := http.Header{
		"User-Agent":         {"Go-http-client/1.1"},
		"X-Gitea-Event-Type": {event},
		"X-Gogs-Delivery":    {guid},
		"X-Gogs-Event":       {event},
		"X-Github-Delivery":  {guid},
		"X-Github-Event":     {event},
	}
	forge.SetDeliveryHeaders(h, forge.ProviderGitea, event, guid, payload, []byte(secret))
	// Gitea sends its one signature under Gogs' name too, and GitHub-style under GitHub's.
	sig := h.Get("X-Gitea-Signature")
	h.Set("X-Gogs-Signature", sig)
	h.Set("X-Hub-Signature-256", "sha256="+sig)
	return h
}

// gitlabHeaders are the headers GitLab sends with a delivery, with event as GitLab spells
// it ("Push Hook") and token as the X-Gitlab-Token the sender was given.
func gitlabHeaders(event, guid, token string) http.Header {
	h := http.Header{
		"User-Agent":            {"GitLab/17.5.0"},
		"X-Gitlab-Webhook-Uuid": {"8f3b3c4e-webhook"},
		"X-Gitlab-Instance":     {"https://gitlab.example.com"},
	}
	forge.SetDeliveryHeaders(h, forge.ProviderGitLab, "", guid, nil, []byte(token))
	h.Set("X-Gitlab-Event", event) // GitLab's own spelling, as given (also "")
	return h
}

// signed is what provider's forge sends with body under the test secret, through
// forge.SetDeliveryHeaders, less the GUID header, and less the event header when event is "".
func signed(provider, event string, body []byte) http.Header {
	h := http.Header{}
	forge.SetDeliveryHeaders(h, provider, event, "", body, []byte(secret))
	f := forge.For(provider)
	for _, k := range f.GUIDHeaders {
		h.Del(k)
	}
	if event == "" {
		for _, k := range f.EventHeaders {
			h.Del(k)
		}
	}
	return h
}

func withHeader(h http.Header, kv ...string) http.Header {
	h = h.Clone()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			h.Del(kv[i])
		} else {
			h.Set(kv[i], kv[i+1])
		}
	}
	return h
}

func (g *gateway) delivery(out map[string]any) store.Delivery {
	g.t.Helper()
	rec, err := g.store.Delivery(context.Background(), id(out["delivery_id"]))
	if err != nil {
		g.t.Fatalf("delivery not recorded: %v (response %v)", err, out)
	}
	return rec
}

// TestGiteaPushDeploys: a real Gitea (or Forgejo) push, as JSON and as a form whose
// signature covers the payload field, deploys the commit and records Gitea's fields.
func TestGiteaPushDeploys(t *testing.T) {
	for _, tc := range []struct {
		name    string
		form    bool
		forgejo bool // Forgejo's own header names only
		noHead  bool // no head_commit: the message comes from commits[last]
	}{
		{name: "json"},
		{name: "form", form: true},
		{name: "forgejo headers", forgejo: true},
		{name: "without head_commit", noHead: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, logs := forgeGateway(t, forge.ProviderGitea, giteaFullName)
			before := testkit.CheckoutHead(t, g.checkout)
			after := g.origin.Commit(map[string]string{"index.html": "<h1>gitea</h1>\n"}, "gitea push")
			var extra map[string]any
			if tc.noHead {
				extra = map[string]any{"head_commit": nil}
			}
			payload := forgePayload(t, "gitea/push.json", "refs/heads/main", before, after, extra)
			guid := "1b2c3d4e-gitea-" + strings.ReplaceAll(tc.name, " ", "-")
			h := giteaHeaders("push", guid, payload)
			if tc.forgejo {
				sig := h.Get("X-Gitea-Signature")
				h = http.Header{"X-Forgejo-Event": {"push"}, "X-Forgejo-Delivery": {guid}, "X-Forgejo-Signature": {sig}}
			}
			body, ctype := payload, "application/json"
			if tc.form {
				body, ctype = []byte(url.Values{"payload": {string(payload)}}.Encode()), "application/x-www-form-urlencoded"
			}
			resp, out := g.forgeSend("/hooks/site", ctype, body, h)
			dp := g.deployed(resp, out, after)
			rec := g.delivery(out)
			if rec.GUID != guid || rec.Event != "push" || rec.Signature != store.SignatureValid ||
				rec.SignatureAlg != "sha256" || rec.Status != store.DeliveryAccepted || rec.Ref != "refs/heads/main" ||
				rec.After != after || rec.Commit != after[:7] || rec.FullName != giteaFullName ||
				rec.RepoURL != "http://localhost:3000/example/example" || rec.Pusher != "example" ||
				rec.Message != "example\n" || rec.DeployID != dp.ID || rec.BodySize != int64(len(body)) {
				t.Fatalf("recorded delivery: %+v", rec)
			}
			if !bytes.Equal(rec.Payload, payload) {
				t.Fatalf("stored payload is not the JSON payload")
			}
			if strings.Contains(logs.String(), secret) {
				t.Fatal("the secret reached the log")
			}
		})
	}
}

// TestGiteaBadInputs: on a Gitea hook only Gitea's signature counts, over the payload;
// nothing here deploys although origin has a new commit.
func TestGiteaBadInputs(t *testing.T) {
	g, _ := forgeGateway(t, forge.ProviderGitea, giteaFullName)
	start := testkit.CheckoutHead(t, g.checkout)
	newer := g.origin.Commit(map[string]string{"index.html": "new\n"}, "not to be deployed")
	good := forgePayload(t, "gitea/push.json", "refs/heads/main", start, newer, nil)
	form := []byte(url.Values{"payload": {string(good)}}.Encode())
	mac := func(b []byte) string { return forge.SignGitea(b, []byte(secret)) }
	const jsonType, formType = "application/json", "application/x-www-form-urlencoded"

	for _, tc := range []struct {
		name      string
		ctype     string
		body      []byte
		h         http.Header
		status    int
		signature string
		result    string
		event     string
	}{
		{name: "signature over the form body instead of the payload", ctype: formType, body: form,
			h: withHeader(giteaHeaders("push", "g1", good), "X-Gitea-Signature", mac(form)), status: 401,
			signature: store.SignatureInvalid, result: store.DeliveryRejected, event: "push"},
		{name: "GitHub signature only", ctype: jsonType, body: good,
			h: withHeader(giteaHeaders("push", "g2", good), "X-Gitea-Signature", "", "X-Gogs-Signature", ""), status: 401,
			signature: store.SignatureMissing, result: store.DeliveryRejected, event: "push"},
		{name: "wrong secret", ctype: jsonType, body: good,
			h: withHeader(giteaHeaders("push", "g3", good), "X-Gitea-Signature", forge.SignGitea(good, []byte("guess"))), status: 401,
			signature: store.SignatureInvalid, result: store.DeliveryRejected, event: "push"},
		{name: "GitHub-style prefix", ctype: jsonType, body: good,
			h: withHeader(giteaHeaders("push", "g4", good), "X-Gitea-Signature", "sha256="+mac(good)), status: 401,
			signature: store.SignatureInvalid, result: store.DeliveryRejected, event: "push"},
		{name: "good Gitea signature with a bad Forgejo one", ctype: jsonType, body: good,
			h: withHeader(giteaHeaders("push", "g5", good), "X-Forgejo-Signature", mac([]byte("{}"))), status: 401,
			signature: store.SignatureInvalid, result: store.DeliveryRejected, event: "push"},
		{name: "Gitea event header wins over GitHub's", ctype: jsonType, body: good,
			h: withHeader(giteaHeaders("push", "g6", good), "X-Gitea-Event", "create"), status: 200,
			signature: store.SignatureValid, result: store.DeliveryIgnored, event: "create"},
		{name: "push to another branch", ctype: jsonType,
			body:   forgePayload(t, "gitea/push.json", "refs/heads/master", start, newer, nil),
			status: 200, signature: store.SignatureValid, result: store.DeliveryIgnored, event: "push"},
		{name: "branch deleted", ctype: jsonType,
			body:   forgePayload(t, "gitea/push.json", "refs/heads/main", newer, strings.Repeat("0", 40), map[string]any{"head_commit": nil, "commits": []any{}}),
			status: 200, signature: store.SignatureValid, result: store.DeliveryIgnored, event: "push"},
		{name: "repository mismatch", ctype: jsonType,
			body:   forgePayload(t, "gitea/push.json", "refs/heads/main", start, newer, map[string]any{"repository": map[string]any{"full_name": "evil/fork"}}),
			status: 200, signature: store.SignatureValid, result: store.DeliveryIgnored, event: "push"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			if h == nil {
				h = giteaHeaders("push", "g-"+tc.name, tc.body)
			}
			resp, out := g.forgeSend("/hooks/site", tc.ctype, tc.body, h)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.status, out)
			}
			rec := g.delivery(out)
			if rec.Signature != tc.signature || rec.Status != tc.result || rec.HTTPStatus != tc.status ||
				rec.Event != tc.event || rec.Reason == "" || rec.DeployID != 0 {
				t.Fatalf("recorded %+v", rec)
			}
			if tc.signature == store.SignatureInvalid && rec.SignatureAlg != "sha256" {
				t.Fatalf("signature algorithm %q, want sha256", rec.SignatureAlg)
			}
			if tc.signature != store.SignatureValid && rec.Payload != nil {
				t.Fatal("payload of an unauthenticated request was stored")
			}
		})
	}
	if q, err := g.store.QueuedRepos(context.Background()); err != nil || len(q) != 0 {
		t.Fatalf("a bad input queued a deploy: %v %v", q, err)
	}
	if head := testkit.CheckoutHead(t, g.checkout); head != start {
		t.Fatalf("checkout moved to %s: a bad input was pulled", head)
	}
}

// TestGitLabPushDeploys: a real GitLab Push Hook with the right token deploys; the token
// is neither recorded nor logged.
func TestGitLabPushDeploys(t *testing.T) {
	g, logs := forgeGateway(t, forge.ProviderGitLab, gitlabFullName)
	before := testkit.CheckoutHead(t, g.checkout)
	after := g.origin.Commit(map[string]string{"index.html": "<h1>gitlab</h1>\n"}, "gitlab push")
	payload := forgePayload(t, "gitlab/push.json", "refs/heads/main", before, after, nil)
	guid := "0f8e7d6c-gitlab-push"
	resp, out := g.forgeSend("/hooks/site", "application/json", payload, gitlabHeaders("Push Hook", guid, secret))
	dp := g.deployed(resp, out, after)
	rec := g.delivery(out)
	if rec.GUID != guid || rec.Event != "push" || rec.Signature != store.SignatureValid ||
		rec.SignatureAlg != "token" || rec.Status != store.DeliveryAccepted || rec.Ref != "refs/heads/main" ||
		rec.Before != before || rec.After != after || rec.FullName != gitlabFullName ||
		rec.RepoURL != "http://example.com/mike/diaspora" || rec.Pusher != "John Smith" ||
		rec.Message != "fixed readme" || rec.UserAgent != "GitLab/17.5.0" || rec.DeployID != dp.ID {
		t.Fatalf("recorded delivery: %+v", rec)
	}
	assertTokenNotKept(t, g, logs, rec)
}

func assertTokenNotKept(t *testing.T, g *gateway, logs *lockedBuffer, rec store.Delivery) {
	t.Helper()
	for k, v := range rec.Headers {
		if strings.EqualFold(k, "X-Gitlab-Token") || strings.Contains(v, secret) {
			t.Fatalf("the token was recorded in header %s", k)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("the token reached the log")
	}
	var page map[string]any
	if code := g.api("GET", "/api/v1/deliveries/"+strconv.FormatInt(rec.ID, 10), "", &page); code != 200 {
		t.Fatalf("API: %d", code)
	}
	if b, _ := json.Marshal(page); bytes.Contains(b, []byte(secret)) {
		t.Fatal("the token is in the API's answer")
	}
}

// TestGitLabBadInputs: on a GitLab hook only X-Gitlab-Token counts; tags and other events
// are recorded and ignored; nothing deploys.
func TestGitLabBadInputs(t *testing.T) {
	g, logs := forgeGateway(t, forge.ProviderGitLab, gitlabFullName)
	start := testkit.CheckoutHead(t, g.checkout)
	newer := g.origin.Commit(map[string]string{"index.html": "new\n"}, "not to be deployed")
	good := forgePayload(t, "gitlab/push.json", "refs/heads/main", start, newer, nil)
	zeros := strings.Repeat("0", 40)
	deleted := forgePayload(t, "gitlab/push.json", "refs/heads/main", newer, zeros,
		map[string]any{"checkout_sha": nil, "commits": []any{}})
	tag := testkit.Payload(t, "gitlab/tag.json")
	ok := func(event, guid string) http.Header { return gitlabHeaders(event, guid, secret) }

	for _, tc := range []struct {
		name      string
		body      []byte
		h         http.Header
		status    int
		signature string
		result    string
		event     string
		guid      string
		ref       string
	}{
		{name: "wrong token", body: good, h: gitlabHeaders("Push Hook", "l1", "guess"),
			status: 401, signature: store.SignatureInvalid, result: store.DeliveryRejected, event: "push", guid: "l1"},
		{name: "token repeated", body: good, h: func() http.Header {
			h := ok("Push Hook", "l2")
			h.Add("X-Gitlab-Token", secret)
			return h
		}(), status: 401, signature: store.SignatureInvalid, result: store.DeliveryRejected, event: "push", guid: "l2"},
		{name: "GitHub signature instead of the token", body: good, h: withHeader(signed(forge.ProviderGitHub, "push", good),
			"X-Gitlab-Event", "Push Hook", "X-Gitlab-Event-Uuid", "l3"), status: 401, signature: store.SignatureMissing, result: store.DeliveryRejected, event: "push", guid: "l3"},
		{name: "Gitea signature instead of the token", body: good, h: withHeader(signed(forge.ProviderGitea, "", good),
			"X-Gitlab-Event", "Push Hook", "X-Gitlab-Event-Uuid", "l4"), status: 401, signature: store.SignatureMissing, result: store.DeliveryRejected, event: "push", guid: "l4"},
		{name: "tag push", body: tag, h: ok("Tag Push Hook", "l5"),
			status: 200, signature: store.SignatureValid, result: store.DeliveryIgnored, event: "tag_push", guid: "l5", ref: "refs/tags/v1.0.0"},
		{name: "GUID from the webhook UUID", body: good, h: withHeader(ok("Merge Request Hook", ""), "X-Gitlab-Event-Uuid", "", "X-Gitlab-Webhook-Uuid", "l6"),
			status: 200, signature: store.SignatureValid, result: store.DeliveryIgnored, event: "merge_request", guid: "l6"},
		{name: "branch deleted", body: deleted, h: ok("Push Hook", "l7"),
			status: 200, signature: store.SignatureValid, result: store.DeliveryIgnored, event: "push", guid: "l7", ref: "refs/heads/main"},
		{name: "push to another branch", body: forgePayload(t, "gitlab/push.json", "refs/heads/master", start, newer, nil), h: ok("Push Hook", "l8"),
			status: 200, signature: store.SignatureValid, result: store.DeliveryIgnored, event: "push", guid: "l8", ref: "refs/heads/master"},
		{name: "no event header", body: good, h: withHeader(ok("", "l9"), "X-Gitlab-Event", ""),
			status: 400, signature: store.SignatureValid, result: store.DeliveryRejected, event: "", guid: "l9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := g.forgeSend("/hooks/site", "application/json", tc.body, tc.h)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.status, out)
			}
			rec := g.delivery(out)
			if rec.Signature != tc.signature || rec.Status != tc.result || rec.HTTPStatus != tc.status ||
				rec.Event != tc.event || rec.GUID != tc.guid || rec.Ref != tc.ref || rec.Reason == "" || rec.DeployID != 0 {
				t.Fatalf("recorded %+v", rec)
			}
			if tc.signature == store.SignatureInvalid && rec.SignatureAlg != "token" {
				t.Fatalf("signature algorithm %q, want token", rec.SignatureAlg)
			}
			if tc.signature != store.SignatureValid && rec.Payload != nil {
				t.Fatal("payload of an unauthenticated request was stored")
			}
			assertTokenNotKept(t, g, logs, rec)
		})
	}
	if q, err := g.store.QueuedRepos(context.Background()); err != nil || len(q) != 0 {
		t.Fatalf("a bad input queued a deploy: %v %v", q, err)
	}
	if head := testkit.CheckoutHead(t, g.checkout); head != start {
		t.Fatalf("checkout moved to %s: a bad input was pulled", head)
	}
	// The history's event filter finds GitLab's tag push under the common name.
	var page deliveriesPage
	if code := g.api("GET", "/api/v1/deliveries?event=tag_push", "", &page); code != 200 || len(page.Deliveries) != 1 {
		t.Fatalf("event filter: %d %v", code, page.Deliveries)
	}
}

// TestGitHubHookIgnoresOtherForgesCredentials: a GitHub hook does not take a GitLab token
// or a Gitea signature, even with the right secret.
func TestGitHubHookIgnoresOtherForgesCredentials(t *testing.T) {
	g := newGateway(t)
	start := testkit.CheckoutHead(t, g.checkout)
	newer := g.origin.Commit(map[string]string{"x.txt": "x\n"}, "x")
	body := testkit.Push(t, "refs/heads/main", start, newer, "binkkatal/sample_app")
	for name, h := range map[string]http.Header{
		"gitlab token":    withHeader(signed(forge.ProviderGitLab, "push", body), "X-Github-Event", "push"),
		"gitea signature": withHeader(signed(forge.ProviderGitea, "push", body), "X-Github-Event", "push"),
	} {
		resp, out := g.forgeSend("/hooks/site", "application/json", body, h)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: status %d %v", name, resp.StatusCode, out)
		}
		if rec := g.delivery(out); rec.Signature != store.SignatureMissing || rec.Status != store.DeliveryRejected {
			t.Fatalf("%s: recorded %+v", name, rec)
		}
	}
	if head := testkit.CheckoutHead(t, g.checkout); head != start {
		t.Fatalf("checkout moved to %s", head)
	}
}

func TestForgeParsers(t *testing.T) {
	sha := strings.Repeat("a", 40)
	t.Run("gitlab checkout_sha when after is missing", func(t *testing.T) {
		p, err := forge.ParseGitLabPush([]byte(`{"ref":"refs/heads/main","before":"` + strings.Repeat("0", 40) +
			`","checkout_sha":"` + sha + `","user_username":"jsmith","user_name":"John Smith","project":{"path_with_namespace":"a/b"},"commits":[{"id":"` + sha + `","message":"one"},{"id":"bbb","message":"older"}]}`))
		if err != nil || p.After != sha || p.Pusher.Name != "jsmith" || p.Repository.FullName != "a/b" || p.HeadCommit == nil || p.HeadCommit.Message != "one" {
			t.Fatalf("%+v %v", p, err)
		}
	})
	t.Run("gitlab deleted branch keeps the zeros", func(t *testing.T) {
		p, err := forge.ParseGitLabPush([]byte(`{"ref":"refs/heads/main","before":"` + sha + `","after":"` + strings.Repeat("0", 40) + `","checkout_sha":null,"commits":[]}`))
		if err != nil || strings.Trim(p.After, "0") != "" || p.HeadCommit != nil {
			t.Fatalf("%+v %v", p, err)
		}
		if d, _ := policy.Screen(policy.Delivery{Hook: policy.Hook{Branch: "main"}, Event: "push", Ref: p.Ref, After: p.After, Deleted: p.Deleted, FullName: p.Repository.FullName}); d.Status != store.DeliveryIgnored {
			t.Fatalf("deleted branch: %+v", d)
		}
	})
	t.Run("gitlab push without a commit hash", func(t *testing.T) {
		if _, err := forge.ParseGitLabPush([]byte(`{"ref":"refs/heads/main","checkout_sha":null}`)); err == nil {
			t.Fatal("accepted a push without after or checkout_sha")
		}
	})
	t.Run("gitea pusher username when login is empty", func(t *testing.T) {
		p, err := forge.ParseGiteaPush([]byte(`{"ref":"refs/heads/main","after":"` + sha + `","pusher":{"username":"u"},"commits":[{"id":"c1","message":"m1"},{"id":"c2","message":"m2"}]}`))
		if err != nil || p.Pusher.Name != "u" || p.HeadCommit == nil || p.HeadCommit.Message != "m2" {
			t.Fatalf("%+v %v", p, err)
		}
	})
	t.Run("gitlab event names", func(t *testing.T) {
		for raw, want := range map[string]string{"Push Hook": "push", "Tag Push Hook": "tag_push",
			"Merge Request Hook": "merge_request", "Pipeline Hook": "pipeline", "System Hook": "system"} {
			if got := forge.GitLabEventName(raw); got != want {
				t.Errorf("%q → %q, want %q", raw, got, want)
			}
		}
	})
}

// TestSetDeliveryHeadersVerify: what `hookgate send` signs, each forge's scheme verifies.
func TestSetDeliveryHeadersVerify(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main"}`)
	for _, p := range forge.Providers() {
		h := http.Header{}
		forge.SetDeliveryHeaders(h, p, "push", "guid", body, []byte(secret))
		var sig forge.Signature
		switch p {
		case forge.ProviderGitHub:
			sig = forge.VerifySignature(h, body, []byte(secret))
		case forge.ProviderGitea:
			sig = forge.VerifyGiteaSignature(h, "application/json", body, []byte(secret))
		case forge.ProviderGitLab:
			sig = forge.VerifyGitLabToken(h, []byte(secret))
			if h.Get("X-Gitlab-Event") != "Push Hook" {
				t.Errorf("gitlab event header %q", h.Get("X-Gitlab-Event"))
			}
		}
		if sig.Result != store.SignatureValid {
			t.Errorf("%s: %+v", p, sig)
		}
	}
}
