package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
)

// shownCap is what the delivery page shows of a payload at most (docs/api.md).
const shownCap = 256 << 10

// pageBound is the most a delivery page may weigh, whatever its payload: the shown text
// escaped (html/template writes at most 5 bytes for one: &#34;), plus the rest of the
// page with its bounded headers and deploy log.
const pageBound = 5*shownCap + 512<<10

// nestedPayload is the real ping payload with three arrays nested 9,000 deep beside its
// fields (encoding/json accepts 10,000 levels): about 55 KB that json.Indent turns into
// 480 MB, every line indented by its depth.
func nestedPayload(t testing.TB) []byte {
	ping := testkit.Payload(t, "github/ping.json")
	var b bytes.Buffer
	b.Write(bytes.TrimRight(bytes.TrimSpace(ping), "}"))
	for i := range 3 {
		fmt.Fprintf(&b, `,"deep%d":%s%s`, i, strings.Repeat("[", 9000), strings.Repeat("]", 9000))
	}
	b.WriteString("}")
	if !json.Valid(b.Bytes()) {
		t.Fatal("the nested payload is not JSON")
	}
	return b.Bytes()
}

// get GETs url and reads at most limit bytes of the answer, so a page that is too large
// fails the test without being held in memory.
func get(t *testing.T, url string, limit int64) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) > limit {
		t.Fatalf("GET %s: more than %d bytes", url, limit)
	}
	return resp, b
}

var payloadPre = regexp.MustCompile(`(?s)<pre class="payload">(.*?)</pre>`)

// TestDeepPayloadPageBounded sends a signed, deeply nested payload through the real hook
// endpoint: its delivery page stays within a linear bound (the payload shown is cut at
// 256 KiB with a note and a link), and the raw payload routes answer the exact bytes as
// JSON that no browser renders as a page.
func TestDeepPayloadPageBounded(t *testing.T) {
	g := newGateway(t)
	body := nestedPayload(t)
	resp, out := g.send(delivery{event: "ping", guid: "deep-1", body: body})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("deep ping: %d %v", resp.StatusCode, out)
	}
	deep := id(out["delivery_id"])

	resp, page := get(t, fmt.Sprintf("%s/deliveries/%d", g.url, deep), pageBound)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delivery page: %d\n%s", resp.StatusCode, page)
	}
	m := payloadPre.FindSubmatch(page)
	if m == nil {
		t.Fatalf("the page shows no payload:\n%.2000s", page)
	}
	shown := html.UnescapeString(string(m[1]))
	if len(shown) > shownCap || !strings.HasPrefix(shown, "{\n  \"zen\": ") || !strings.Contains(shown, "  \"deep0\": [\n    [\n      [\n") {
		t.Fatalf("shown payload: %d bytes (cap %d), starting %.200q", len(shown), shownCap, shown)
	}
	for _, want := range []string{
		fmt.Sprintf(`<a href="/deliveries/%d/payload">Raw payload</a>`, deep),
		`<p class="truncated">`,
	} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the page lacks %q", want)
		}
	}
	t.Logf("a %d-byte payload nested 9,000 deep: a %d-byte page", len(body), len(page))

	for _, path := range []string{fmt.Sprintf("/api/v1/deliveries/%d/payload", deep), fmt.Sprintf("/deliveries/%d/payload", deep)} {
		resp, raw := get(t, g.url+path, int64(len(body)))
		if resp.StatusCode != http.StatusOK || !bytes.Equal(raw, body) {
			t.Fatalf("GET %s: %d, %d bytes, equal to the body sent: %v", path, resp.StatusCode, len(raw), bytes.Equal(raw, body))
		}
		for k, want := range map[string]string{
			"Content-Type":            "application/json",
			"X-Content-Type-Options":  "nosniff",
			"Content-Security-Policy": "default-src 'none'; sandbox",
			"Content-Disposition":     fmt.Sprintf(`inline; filename="delivery-%d-payload.json"`, deep),
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("GET %s: %s %q, want %q", path, k, got, want)
			}
		}
	}
}

// TestPayloadRoute: the raw payload is the stored JSON document as sent (a form-encoded
// delivery's payload field, a JSON delivery's body), always as plain application/json:
// no parameter of the sender's Content-Type (charset=utf-7) reaches it; a small payload is
// shown whole on its page; a delivery without a stored payload, an unknown id and a bad
// id get 404, 404 and 400.
func TestPayloadRoute(t *testing.T) {
	g := newGateway(t)
	ping := testkit.Payload(t, "github/ping.json")
	send := func(ctype string, body []byte, headers map[string]string) int64 {
		t.Helper()
		resp, out := g.send(delivery{event: "ping", guid: fmt.Sprint(len(body), ctype), ctype: ctype, body: body, headers: headers})
		if id(out["delivery_id"]) == 0 {
			t.Fatalf("not recorded: %d %v", resp.StatusCode, out)
		}
		return id(out["delivery_id"])
	}
	form := send("application/x-www-form-urlencoded", []byte("payload="+url.QueryEscape(string(ping))), nil)
	withCharset := send("application/json; charset=utf-7", ping, nil)
	unsigned := send("application/json", ping, map[string]string{"X-Hub-Signature-256": ""})

	for _, tc := range []struct {
		id    int64
		ctype string
	}{{form, "application/json"}, {withCharset, "application/json"}} {
		for _, path := range []string{"/api/v1/deliveries/%d/payload", "/deliveries/%d/payload"} {
			resp, raw := get(t, g.url+fmt.Sprintf(path, tc.id), 1<<20)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(raw, ping) || resp.Header.Get("Content-Type") != tc.ctype ||
				resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: %d %q (nosniff: %q), %d bytes, the ping payload: %v", fmt.Sprintf(path, tc.id), resp.StatusCode,
					resp.Header.Get("Content-Type"), resp.Header.Get("X-Content-Type-Options"), len(raw), bytes.Equal(raw, ping))
			}
		}
	}
	var want bytes.Buffer
	if err := json.Indent(&want, ping, "", "  "); err != nil {
		t.Fatal(err)
	}
	page := okPage(t, g.url, fmt.Sprintf("/deliveries/%d", withCharset))
	m := payloadPre.FindStringSubmatch(page)
	if m == nil || html.UnescapeString(m[1]) != strings.TrimSpace(want.String()) || strings.Contains(page, `class="truncated"`) {
		t.Errorf("a small payload is not shown whole and indented:\n%s", page)
	}

	for _, tc := range []struct {
		path, code string
		status     int
	}{
		{fmt.Sprintf("/api/v1/deliveries/%d/payload", unsigned), "no_payload", http.StatusNotFound},
		{"/api/v1/deliveries/999999/payload", "not_found", http.StatusNotFound},
		{"/api/v1/deliveries/x/payload", "invalid_parameter", http.StatusBadRequest},
	} {
		if a := g.call("GET", tc.path, nil); a.status != tc.status || a.code != tc.code {
			t.Errorf("GET %s: %d %q, want %d %q", tc.path, a.status, a.code, tc.status, tc.code)
		}
	}
	if a := g.call("GET", fmt.Sprintf("/deliveries/%d/payload", unsigned), nil); a.status != http.StatusNotFound || !strings.Contains(a.body, "no stored payload") {
		t.Errorf("page route, no payload: %d %s", a.status, a.body)
	}
}

// BenchmarkDeliveryPageNestedPayload serves the delivery page of nestedPayload through
// the real router: B/op is the memory one viewer costs.
func BenchmarkDeliveryPageNestedPayload(b *testing.B) {
	gw := startTestGateway(b, nil, nil, func(o *server.Options) { o.Hooks[0].Repository = "" })
	srv := gw.G.Server()
	body := nestedPayload(b)
	req := httptest.NewRequest("POST", "/hooks/site", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	forge.SetDeliveryHeaders(req.Header, forge.ProviderGitHub, "ping", "", body, []byte(secret))
	req.Header.Del("X-GitHub-Delivery") // this ping carries no GUID
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("deep ping: %d %s", w.Code, w.Body)
	}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		w := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "http://127.0.0.1/deliveries/1", nil)
		req.RemoteAddr = "127.0.0.1:40000"
		srv.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("page: %d", w.Code)
		}
		size = w.Body.Len()
	}
	b.ReportMetric(float64(size), "page-bytes")
}
