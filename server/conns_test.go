package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
)

// dialFrom connects to addr from the loopback address src (all of 127.0.0.0/8 is the
// loopback interface on Linux), so one test plays several clients.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// holdHeaders opens a connection from src that sends the start of a request's header
// block and stops there, as a client holding a connection does.
func holdHeaders(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	c := dialFrom(t, src, addr)
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: "+addr+"\r\nX-Held: "+strings.Repeat("h", 2000)+"\r\n"); err != nil {
		t.Fatalf("held connection from %s: %v", src, err)
	}
	return c
}

// finish ends a held connection's header block and checks that it is answered.
func finish(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "Connection: close\r\n\r\n"); err != nil {
		t.Fatalf("held connection %s was dropped: %v", c.LocalAddr(), err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("held connection %s was dropped: %v", c.LocalAddr(), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("held connection %s: %d", c.LocalAddr(), resp.StatusCode)
	}
}

// refused checks that a new connection from src is answered 503 too_many_connections
// and closed, without sending anything.
func refused(t *testing.T, src, addr string) {
	t.Helper()
	c := dialFrom(t, src, addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("connection from %s over the limit: %v, want a 503", src, err)
	}
	defer resp.Body.Close()
	var body struct{ Error struct{ Code string } }
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusServiceUnavailable || body.Error.Code != "too_many_connections" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("connection from %s over the limit: %d %q, Retry-After %q", src, resp.StatusCode, body.Error.Code, resp.Header.Get("Retry-After"))
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("a refused connection stayed open: %d, %v", n, err)
	}
}

// TestConnectionLimits: past max_connections_per_client from one address, and past
// max_connections in all, a new connection is answered 503 and closed at accept while the
// connections held go on and are answered; a trusted proxy counts only in the total; a
// place is given back when its connection closes.
func TestConnectionLimits(t *testing.T) {
	g := newGateway(t, func(o *server.Options) {
		o.MaxConns, o.MaxConnsPerClient = 8, 3
		o.TrustedProxies = []string{"127.0.0.9"}
	})
	addr := serveReal(t, g)

	var held []net.Conn
	for range 3 {
		held = append(held, holdHeaders(t, "127.0.0.1", addr))
	}
	refused(t, "127.0.0.1", addr) // the 4th from one client
	for range 4 {
		held = append(held, holdHeaders(t, "127.0.0.9", addr)) // a trusted proxy: 4 > 3
	}
	held = append(held, holdHeaders(t, "127.0.0.2", addr)) // the 8th in all
	refused(t, "127.0.0.3", addr)                          // a new client, but 9th in all
	refused(t, "127.0.0.9", addr)                          // the proxy too

	// Every held connection is still there and is answered once it finishes.
	for _, c := range held {
		finish(t, c)
	}
	// Their places come back (the server closes each after its answer): a new client
	// gets in, and the counters say what was refused and why.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			m := string(b)
			if resp.StatusCode == http.StatusOK {
				for _, want := range []string{
					`hookgate_connections_refused_total{limit="client"} 1`,
					`hookgate_connections_refused_total{limit="total"} 2`,
				} {
					if !strings.Contains(m, want+"\n") {
						t.Errorf("metrics lack %q", want)
					}
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no place came back after the held connections closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, per := g.srv.ConnLimits(); got != 8 || per != 3 {
		t.Fatalf("ConnLimits %d, %d", got, per)
	}
}

// TestDefaultConnectionLimits: without settings the bounds are half the open-files limit
// (at most DefaultMaxConnsCap) and DefaultMaxConnsPerClient.
func TestDefaultConnectionLimits(t *testing.T) {
	g := newGateway(t)
	total, per := g.srv.ConnLimits()
	if total != server.DefaultMaxConns() || total < 1 || total > server.DefaultMaxConnsCap || per != min(server.DefaultMaxConnsPerClient, total) {
		t.Fatalf("default limits %d, %d (DefaultMaxConns %d)", total, per, server.DefaultMaxConns())
	}
}

// TestHeaderCap: a header block past max_header_bytes (default 16 KiB) gets 431 and is not
// recorded, while real forge deliveries with the headers those forges send (GitLab with
// 20 custom headers, its most), and a page request with Basic credentials and 8 KB of
// cookies, pass.
func TestHeaderCap(t *testing.T) {
	const full = "binkkatal/sample_app"
	for _, tc := range []struct {
		provider, fullName string
		payload            func(t *testing.T, before, after string) []byte
		headers            func(body []byte) http.Header
	}{
		{forge.ProviderGitHub, full, func(t *testing.T, before, after string) []byte {
			return testkit.Push(t, "refs/heads/main", before, after, full)
		}, func(body []byte) http.Header {
			// What GitHub's documentation lists for a repository webhook.
			h := http.Header{
				"User-Agent":                             {"GitHub-Hookshot/044aadd"},
				"Accept":                                 {"*/*"},
				"X-Github-Hook-Id":                       {"292430182"},
				"X-Github-Hook-Installation-Target-Id":   {"79929171"},
				"X-Github-Hook-Installation-Target-Type": {"repository"},
				"X-Hub-Signature":                        {"sha1=" + strings.Repeat("0", 40)},
			}
			forge.SetDeliveryHeaders(h, forge.ProviderGitHub, "push", "72d3162e-cc78-11e3-81ab-4c9367dc0958", body, []byte(secret))
			return h
		}},
		{forge.ProviderGitea, giteaFullName, func(t *testing.T, before, after string) []byte {
			return forgePayload(t, "gitea/push.json", "refs/heads/main", before, after, nil)
		}, func(body []byte) http.Header { return giteaHeaders("push", "gitea-cap", body) }},
		{forge.ProviderGitLab, gitlabFullName, func(t *testing.T, before, after string) []byte {
			return forgePayload(t, "gitlab/push.json", "refs/heads/main", before, after, nil)
		}, func([]byte) http.Header {
			h := gitlabHeaders("Push Hook", "gitlab-cap", secret)
			h.Set("Idempotency-Key", "0e5a4d9b-8f1c-4d54-b6a3-2f0c8a7c9f11")
			for i := range 20 {
				h.Set(fmt.Sprintf("X-Custom-%02d", i), strings.Repeat("c", 200))
			}
			return h
		}},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			g, _ := forgeGateway(t, tc.provider, tc.fullName)
			g.url = "http://" + serveReal(t, g)
			before := testkit.CheckoutHead(t, g.checkout)
			after := g.origin.Commit(map[string]string{"cap.txt": tc.provider}, "cap")
			body := tc.payload(t, before, after)

			over := tc.headers(body)
			over.Set("X-Padding", strings.Repeat("p", server.DefaultMaxHeaderBytes+4096))
			n := countDeliveries(t, g)
			req, _ := http.NewRequest(http.MethodPost, g.url+"/hooks/site", strings.NewReader(string(body)))
			req.Header = over
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || countDeliveries(t, g) != n {
				t.Fatalf("a %d-byte header block: %d, recorded %v; want 431, not recorded", server.DefaultMaxHeaderBytes+4096, resp.StatusCode, countDeliveries(t, g) != n)
			}

			resp, out := g.forgeSend("/hooks/site", "application/json", body, tc.headers(body))
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("%s delivery with its real headers: %d %v", tc.provider, resp.StatusCode, out)
			}
		})
	}

	t.Run("page with cookies", func(t *testing.T) {
		g := newGateway(t)
		addr := serveReal(t, g)
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.SetBasicAuth("admin", "not-needed-on-loopback")
		for i := range 4 {
			req.AddCookie(&http.Cookie{Name: fmt.Sprintf("session%d", i), Value: strings.Repeat("s", 2000)})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("page with 8 KB of cookies: %d", resp.StatusCode)
		}
	})
	// The bound is max_header_bytes when set.
	t.Run("configured", func(t *testing.T) {
		g := newGateway(t, func(o *server.Options) { o.MaxHeaderBytes = 4 << 10 })
		addr := serveReal(t, g)
		head := "GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\nX-Padding: " + strings.Repeat("p", 9<<10) + "\r\n"
		if got := raw(t, addr, head, nil); got != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("a 9 KB header block with max_header_bytes 4 KB: %d", got)
		}
		healthy(t, addr)
	})
}
