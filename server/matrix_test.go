package server_test

import (
	"bufio"
	"context"
	"errors"
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
	"github.com/hookgate/hookgate/store"
)

// serveReal serves the gateway through the http.Server hookgate itself runs (its timeouts
// and header limit) on its connection-limiting listener, not httptest's, and returns its
// address.
func serveReal(t *testing.T, g *gateway) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := g.srv.HTTPServer(ln.Addr().String())
	go hs.Serve(g.srv.LimitListener(ln))
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// raw sends a hand-written request, so header names and repeats reach the server exactly
// as written, and returns the status code.
func raw(t *testing.T, addr, head string, body []byte) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "%sContent-Length: %d\r\nConnection: close\r\n\r\n", head, len(body))
	conn.Write(body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func healthy(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("server unhealthy: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
}

// TestHeaderAndNameMatrix: header spelling and repetition, hook names with unicode and
// dot-dot, and oversized headers, through hookgate's own http.Server.
func TestHeaderAndNameMatrix(t *testing.T) {
	g := newGateway(t)
	addr := serveReal(t, g)
	start := testkit.CheckoutHead(t, g.checkout)
	after := g.origin.Commit(map[string]string{"m.txt": "m\n"}, "matrix")
	body := testkit.Push(t, "refs/heads/main", start, after, "binkkatal/sample_app")
	sig := forge.Sign(body, []byte(secret))
	req := func(path string, headers ...string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\n" +
			"X-GitHub-Event: push\r\n" + strings.Join(headers, "")
	}
	for _, tc := range []struct {
		name    string
		head    string
		status  int
		records bool
	}{
		{"duplicated signature header", req("/hooks/site", "X-Hub-Signature-256: "+sig+"\r\n", "X-Hub-Signature-256: "+sig+"\r\n"), 401, true},
		{"two values in one header", req("/hooks/site", "X-Hub-Signature-256: "+sig+", "+sig+"\r\n"), 401, true},
		{"empty signature header", req("/hooks/site", "X-Hub-Signature-256: \r\n"), 401, true},
		{"sha1 prefix in the sha256 header", req("/hooks/site", "X-Hub-Signature-256: sha1="+sig[7:]+"\r\n"), 401, true},
		{"unicode hook name", req("/hooks/s%C3%AFte", "X-Hub-Signature-256: "+sig+"\r\n"), 404, false},
		{"raw unicode hook name", req("/hooks/sïte", "X-Hub-Signature-256: "+sig+"\r\n"), 404, false},
		{"encoded dot-dot", req("/hooks/%2e%2e", "X-Hub-Signature-256: "+sig+"\r\n"), 404, false},
		{"dot-dot traversal", req("/hooks/../hooks/site", "X-Hub-Signature-256: "+sig+"\r\n"), 404, false},
		{"encoded slash", req("/hooks/site%2f..", "X-Hub-Signature-256: "+sig+"\r\n"), 404, false},
		{"huge header value", req("/hooks/site", "X-Hub-Signature-256: "+sig+"\r\n", "X-Padding: "+strings.Repeat("a", 100<<10)+"\r\n"), 431, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := countDeliveries(t, g)
			if got := raw(t, addr, tc.head, body); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
			if recorded := countDeliveries(t, g) > before; recorded != tc.records {
				t.Fatalf("recorded: %v, want %v", recorded, tc.records)
			}
			healthy(t, addr)
		})
	}
	if q, err := g.store.QueuedRepos(context.Background()); err != nil || len(q) != 0 {
		t.Fatalf("a bad request queued a deploy: %v (%v)", q, err)
	}
	if testkit.CheckoutHead(t, g.checkout) != start {
		t.Fatal("a bad request was pulled")
	}
	// Header names are case-insensitive in HTTP: odd case is the same header, and the
	// prefix is matched without regard to case. This one deploys.
	odd := req("/hooks/site", "x-HUB-signature-256: SHA256="+sig[len("sha256="):]+"\r\n", "x-github-delivery: odd-case\r\n")
	if got := raw(t, addr, odd, body); got != http.StatusAccepted {
		t.Fatalf("odd-case header names: %d", got)
	}
}

// TestSlowClientsAreCutOff: a client that sends its headers or body slowly is disconnected
// after the read timeout, while other deliveries go through meanwhile.
func TestSlowClientsAreCutOff(t *testing.T) {
	g := newGateway(t, func(o *server.Options) { o.ReadTimeout = time.Second })
	addr := serveReal(t, g)
	for _, tc := range []struct {
		name string
		send string
	}{
		{"slow headers", "POST /hooks/site HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n"},
		{"slow body", "POST /hooks/site HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"ref\":"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.send); err != nil {
				t.Fatal(err)
			}
			began := time.Now()

			// Meanwhile a real delivery is answered at once.
			after := g.origin.Commit(map[string]string{"s.txt": tc.name}, tc.name)
			resp, out := g.send(delivery{event: "push", guid: "during-" + tc.name,
				body: testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")})
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("delivery during a slow client: %d %v", resp.StatusCode, out)
			}
			g.waitDeploy(id(out["deploy_id"]))

			// The slow connection is closed by the server, not by our deadline.
			conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, err = io.ReadAll(conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept a slow client for %s", time.Since(began))
			}
			if took := time.Since(began); took > 10*time.Second {
				t.Fatalf("a slow client was cut off only after %s (read timeout 1s)", took)
			}
			healthy(t, addr)
		})
	}
	// The slow body was cut off before its signature could be checked: nothing from it
	// joined a deploy.
	rows, err := g.store.ListDeliveries(context.Background(), store.DeliveryFilter{Status: store.DeliveryAccepted})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rows {
		if !strings.HasPrefix(d.GUID, "during-") {
			t.Fatalf("a slow client's delivery was accepted: %+v", d)
		}
	}
}
