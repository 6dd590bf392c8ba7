package server_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
)

// TestWrongSignatureIsAWarning: a delivery whose signature does not match is logged at
// WARN (a secret rotated on one side only shows up for someone watching warnings); an
// accepted one, and one with no signature at all (a scanner), at INFO.
func TestWrongSignatureIsAWarning(t *testing.T) {
	var logs lockedBuffer
	g := newGateway(t, func(o *server.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	body := testkit.Payload(t, "github/ping.json")
	if resp, _ := g.send(delivery{event: "ping", guid: "wrong-1", body: body,
		headers: map[string]string{"X-Hub-Signature-256": forge.Sign(body, []byte("an-old-secret"))}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong signature: %d", resp.StatusCode)
	}
	if resp, _ := g.send(delivery{event: "ping", guid: "none-1", body: body,
		headers: map[string]string{"X-Hub-Signature-256": ""}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no signature: %d", resp.StatusCode)
	}
	if resp, _ := g.send(delivery{event: "ping", guid: "good-1", body: body}); resp.StatusCode != http.StatusOK {
		t.Fatalf("good ping: %d", resp.StatusCode)
	}
	level := func(guid string) string {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "msg=delivery") && strings.Contains(line, "guid="+guid) {
				l, _, _ := strings.Cut(strings.TrimPrefix(line[strings.Index(line, "level="):], "level="), " ")
				return l
			}
		}
		t.Fatalf("no delivery log line for %s:\n%s", guid, logs.String())
		return ""
	}
	for guid, want := range map[string]string{"wrong-1": "WARN", "none-1": "INFO", "good-1": "INFO"} {
		if got := level(guid); got != want {
			t.Errorf("delivery %s logged at %s, want %s", guid, got, want)
		}
	}
}
