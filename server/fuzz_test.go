package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/policy"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// The fuzz targets below run their seeds with every `go test`; .ci/run fuzzes each (and
// those of forge/scan_test.go and store) for a bounded time, for example:
//
//	go test -run '^$' -fuzz '^FuzzHookRequest$' -fuzztime 15s ./server/

// trueMAC is the expected signature hex, computed here with crypto/hmac rather than with
// anything from the server package.
func trueMAC(alg func() hash.Hash, body, key []byte) string {
	m := hmac.New(alg, key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// asciiLower lowercases A-Z only, so no Unicode folding can turn another character into a
// hex digit.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// expectSignature is the oracle: the sha256 header wins whenever it is present (no
// downgrade to sha1), a repeated header is never valid, an empty secret never verifies, and
// a value is valid only if it is "<alg>=<hex HMAC of the body>", the only liberties being
// the letter case of prefix and hex and surrounding white space.
func expectSignature(h http.Header, body, key []byte) forge.Signature {
	for _, a := range []struct {
		header, alg string
		new         func() hash.Hash
	}{
		{"X-Hub-Signature-256", "sha256", sha256.New},
		{"X-Hub-Signature", "sha1", sha1.New},
	} {
		vals := h.Values(a.header)
		if len(vals) == 0 {
			continue
		}
		want := a.alg + "=" + trueMAC(a.new, body, key)
		if len(vals) == 1 && len(key) > 0 && asciiLower(strings.TrimSpace(vals[0])) == want {
			return forge.Signature{Result: store.SignatureValid, Alg: a.alg}
		}
		return forge.Signature{Result: store.SignatureInvalid, Alg: a.alg}
	}
	return forge.Signature{Result: store.SignatureMissing}
}

// oddCase changes the letter case of name by mask, as a client might send it.
func oddCase(name string, mask uint64) string {
	b := []byte(name)
	for i := range b {
		if mask&(1<<(uint(i)%64)) != 0 {
			if 'a' <= b[i] && b[i] <= 'z' {
				b[i] -= 'a' - 'A'
			} else if 'A' <= b[i] && b[i] <= 'Z' {
				b[i] += 'a' - 'A'
			}
		}
	}
	return string(b)
}

// signatureHeaders builds the signature headers a fuzz input describes. In v256 and v1,
// "{256}" and "{1}" stand for the true sha256 and sha1 HMAC hex of body, so the fuzzer can
// reach the valid case and mutate around it (case, prefix, padding, truncation). n256 and n1
// say how often each header is sent (0 to 2); names get odd letter case, as net/http then
// canonicalises them the way the server sees them.
func signatureHeaders(v256, v1 string, n256, n1 uint8, mask uint64, body, key []byte) http.Header {
	r := strings.NewReplacer("{256}", trueMAC(sha256.New, body, key), "{1}", trueMAC(sha1.New, body, key))
	h := http.Header{}
	for range n256 % 3 {
		h.Add(oddCase("X-Hub-Signature-256", mask), r.Replace(v256))
	}
	for range n1 % 3 {
		h.Add(oddCase("X-Hub-Signature", mask>>20), r.Replace(v1))
	}
	return h
}

// FuzzSignatureHeader: whatever the headers and body, VerifySignature does not panic and
// says "valid" exactly when the header carries the body's true HMAC under the secret.
func FuzzSignatureHeader(f *testing.F) {
	key := []byte(secret)
	for i, name := range testkit.ForgePayloads {
		body := testkit.Payload(f, name)
		f.Add(body, key, "sha256={256}", "", uint8(1), uint8(0), uint64(i))
		f.Add(body, key, "", "sha1={1}", uint8(0), uint8(1), uint64(i))
	}
	push := testkit.Payload(f, "github/push.json")
	for _, s := range []struct {
		v256, v1 string
		n256, n1 uint8
	}{
		{"SHA256={256}", "", 1, 0},         // prefix case is not significant
		{" sha256={256}\t", "", 1, 0},      // nor surrounding space
		{"sha256={256}", "", 2, 0},         // a repeated header is ambiguous: invalid
		{"sha256={256}", "sha1={1}", 1, 1}, // both, sha256 good
		{"sha256=00", "sha1={1}", 1, 1},    // no downgrade to a good sha1
		{"sha1={1}", "", 1, 0},             // sha1 value in the sha256 header
		{"sha256={1}", "", 1, 0},           // wrong length
		{"sha256={256}00", "", 1, 0},       // too long
		{"sha256= {256}", "", 1, 0},        // space inside
		{"sha256:{256}", "", 1, 0},         // wrong separator
		{"{256}", "", 1, 0},                // no prefix
		{"sha256=", "", 1, 0},              // no hash
		{"", "", 1, 0},                     // empty value
		{"", "", 0, 0},                     // no header at all
		{"sha256={256}", "sha1={1}", 0, 2}, // repeated sha1
		{"sha256=" + strings.Repeat("0", 64), "", 1, 0},
	} {
		f.Add(push, key, s.v256, s.v1, s.n256, s.n1, uint64(0x5a5a5a5a5a))
	}
	f.Add(push, []byte{}, "sha256={256}", "", uint8(1), uint8(0), uint64(0)) // empty secret never verifies
	f.Add([]byte{}, key, "sha256={256}", "", uint8(1), uint8(0), uint64(0))

	f.Fuzz(func(t *testing.T, body, key []byte, v256, v1 string, n256, n1 uint8, mask uint64) {
		h := signatureHeaders(v256, v1, n256, n1, mask, body, key)
		got := forge.VerifySignature(h, body, key)
		if want := expectSignature(h, body, key); got != want {
			t.Fatalf("VerifySignature(%q) = %+v, want %+v (body %d bytes, secret %q)", h, got, want, len(body), key)
		}
	})
}

// recordingDeployer is the worker side for the fuzzed router: it only counts wake-ups.
type recordingDeployer struct {
	mu      sync.Mutex
	notices map[string]int
}

func (d *recordingDeployer) Notify(repo string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.notices[repo]++
}

func (d *recordingDeployer) Running(string) int64 { return 0 }

func (d *recordingDeployer) count(repo string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.notices[repo]
}

// fuzzMaxBody is small enough for the fuzzer to reach 413 with a padded body.
const fuzzMaxBody = 32 << 10

// FuzzHookRequest sends arbitrary deliveries through the real router, backed by a real
// SQLite file opened once for the whole run: no panic, only the documented statuses, every
// answer names the recorded delivery, and a 202 (and a worker wake-up) happens only when
// the signature header is the valid HMAC of the body under the hook's secret.
func FuzzHookRequest(f *testing.F) {
	st, err := store.Open(context.Background(), filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	dep := &recordingDeployer{notices: map[string]int{}}
	st.OnQueued(dep.Notify) // the store tells of each deploy queued
	key := []byte(secret)
	srv, err := server.New(server.Options{
		Hooks:   []server.Hook{{Name: "site", Secret: key, Branch: "master", Repository: "binkkatal/sample_app"}},
		MaxBody: fuzzMaxBody,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, st, dep)
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	// Every request comes from its own address: the limiter on unauthenticated rejections
	// (429 past a burst per address) is not what this target is about.
	var seq atomic.Uint32

	events := []string{"push", "ping", "release", "pull_request", "create", "delete", "workflow_run", "push", "push", "push"}
	for i, name := range testkit.ForgePayloads {
		body := testkit.Payload(f, name)
		f.Add(body, "application/json", events[i], "sha256={256}", uint8(0))
		form := []byte(url.Values{"payload": {string(body)}}.Encode())
		f.Add(form, "application/x-www-form-urlencoded", events[i], "sha256={256}", uint8(0))
	}
	push := testkit.Payload(f, "github/push.json")
	for _, s := range []struct {
		ctype, event, sig string
		flags             uint8
	}{
		{"application/json", "push", "sha1={1}", 1},     // legacy header
		{"application/json", "push", "sha256={256}", 2}, // sent twice: 401
		{"application/json", "push", "sha256={256}", 4}, // padded over max_body: 413
		{"application/json", "push", "sha256=00", 0},    // bad: 401
		{"application/json", "push", "", 8},             // none: 401
		{"text/plain", "push", "sha256={256}", 0},       // 415
		{"application/json; charset=utf-8", "push", "SHA256={256}", 0},
		{"application/json", "", "sha256={256}", 0},                      // no event: 400
		{"", "push", "sha256={256}", 0},                                  // no content type: 415
		{"application/x-www-form-urlencoded", "push", "sha256={256}", 0}, // form without payload
	} {
		f.Add(push, s.ctype, s.event, s.sig, s.flags)
	}
	f.Add([]byte("{}"), "application/json", "push", "sha256={256}", uint8(0))
	f.Add([]byte(`{"ref":"refs/heads/master","after":"`+strings.Repeat("0", 64)+`"}`), "application/json", "push", "sha256={256}", uint8(0))

	allowed := map[int]bool{200: true, 202: true, 400: true, 401: true, 413: true, 415: true}
	f.Fuzz(func(t *testing.T, body []byte, ctype, event, sig string, flags uint8) {
		if flags&4 != 0 {
			body = append(bytes.Repeat([]byte(" "), fuzzMaxBody+1), body...)
		}
		sigs := signatureHeaders(sig, sig, 1+(flags>>1)&1, 0, 0, body, key)
		if flags&1 != 0 { // the legacy header instead
			sigs = signatureHeaders(sig, sig, 0, 1+(flags>>1)&1, 0, body, key)
		}
		if flags&8 != 0 {
			sigs = http.Header{}
		}
		req := httptest.NewRequest(http.MethodPost, "/hooks/site", bytes.NewReader(body))
		n := seq.Add(1)
		req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:4711", byte(n>>16), byte(n>>8), byte(n))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if event != "" {
			req.Header.Set("X-GitHub-Event", event)
		}
		req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("fuzz-%d", n))
		for k, vs := range sigs {
			req.Header[k] = vs
		}
		before := dep.count("site")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		notified := dep.count("site") - before

		if !allowed[rec.Code] {
			t.Fatalf("status %d is not one the hook endpoint documents: %s", rec.Code, rec.Body)
		}
		var out struct {
			DeliveryID int64  `json:"delivery_id"`
			DeployID   int64  `json:"deploy_id"`
			Status     string `json:"status"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.DeliveryID == 0 {
			t.Fatalf("status %d answer names no recorded delivery: %q (%v)", rec.Code, rec.Body, err)
		}
		valid := expectSignature(req.Header, body, key).Result == store.SignatureValid
		if (rec.Code == http.StatusAccepted || notified != 0) && !valid {
			t.Fatalf("status %d, %d wake-ups, for a delivery whose signature is not the body's HMAC: headers %q", rec.Code, notified, req.Header)
		}
		if (rec.Code == http.StatusAccepted) != (notified == 1) || notified > 1 {
			t.Fatalf("status %d but the worker was woken %d times", rec.Code, notified)
		}
		if rec.Code == http.StatusAccepted && (out.DeployID == 0 || out.Status != store.DeliveryAccepted) {
			t.Fatalf("202 without a queued deploy: %s", rec.Body)
		}
		if rec.Code == http.StatusUnauthorized && valid {
			t.Fatalf("401 for a correctly signed delivery: %s", rec.Body)
		}
	})
}

// FuzzParsePush: whatever the payload, ParsePush and policy.Screen do not panic, and a push is
// accepted for deploy only if it names the hook's branch and a real (non-zero, full-length,
// hex) commit, and is not a branch deletion.
func FuzzParsePush(f *testing.F) {
	for _, name := range testkit.ForgePayloads {
		f.Add(testkit.Payload(f, name), "master", "")
	}
	f.Add(testkit.Payload(f, "github/push.json"), "master", "binkkatal/sample_app")
	f.Add(testkit.Payload(f, "github/push.json"), "main", "")
	f.Add(testkit.Payload(f, "github/push.json"), "maste", "") // a prefix of the pushed branch is another branch
	var p map[string]any
	if err := json.Unmarshal(testkit.Payload(f, "github/push.json"), &p); err != nil {
		f.Fatal(err)
	}
	for _, after := range []string{strings.Repeat("0", 40), strings.Repeat("0", 64), strings.Repeat("a", 64), strings.Repeat("A", 40)} {
		p["after"] = after
		b, _ := json.Marshal(p)
		f.Add(b, "master", "")
	}
	f.Add([]byte(`{"ref":"refs/heads/main","after":"`+strings.Repeat("1", 40)+`","deleted":true}`), "main", "")
	f.Add([]byte(`{"ref":"refs/heads/","after":"`+strings.Repeat("1", 40)+`"}`), "", "")

	f.Fuzz(func(t *testing.T, payload []byte, branch, repository string) {
		hook := server.Hook{Name: "site", Secret: []byte(secret), Branch: branch, Repository: repository}
		p, err := forge.ParsePush(payload)
		if err != nil {
			return
		}
		d, _ := policy.Screen(policy.Delivery{Event: "push", Ref: p.Ref, After: p.After, Deleted: p.Deleted, FullName: p.Repository.FullName,
			Hook: policy.Hook{Repo: hook.Name, Branch: hook.Branch, Repository: hook.Repository}})
		if d.Status != store.DeliveryAccepted {
			if d.Status != store.DeliveryIgnored || d.HTTPStatus != http.StatusOK || d.Reason == "" {
				t.Fatalf("decision %+v", d)
			}
			return
		}
		if d.HTTPStatus != http.StatusAccepted {
			t.Fatalf("accepted with HTTP status %d", d.HTTPStatus)
		}
		if p.Ref != "refs/heads/"+branch {
			t.Fatalf("accepted a push to %q for branch %q", p.Ref, branch)
		}
		if !fullHexHash(p.After) || strings.Trim(p.After, "0") == "" {
			t.Fatalf("accepted a push whose after is %q", p.After)
		}
		if p.Deleted {
			t.Fatal("accepted a branch deletion")
		}
		if repository != "" && !strings.EqualFold(p.Repository.FullName, repository) {
			t.Fatalf("accepted a push from %q for repository %q", p.Repository.FullName, repository)
		}
	})
}

func fullHexHash(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && s == strings.ToLower(s)
}
