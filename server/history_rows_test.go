package server_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// historyRow returns the history row of delivery id, or fails.
func historyRow(t *testing.T, body string, id int64) string {
	t.Helper()
	m := regexp.MustCompile(fmt.Sprintf(`(?s)<tr [^>]*data-id="%d".*?</tr>`, id)).FindString(body)
	if m == "" {
		t.Fatalf("no history row for delivery %d", id)
	}
	return m
}

// TestHistoryRowsAnswerLikeRecentDeliveries: what GitHub's "Recent Deliveries" shows of a
// delivery, its GUID and the HTTP status answered, a history row shows too; an ignored or
// rejected row says why in the row; a replay's row names the commit its deploy went to.
func TestHistoryRowsAnswerLikeRecentDeliveries(t *testing.T) {
	g := newGateway(t)
	const pushGUID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	before := testkit.CheckoutHead(t, g.checkout)
	after := g.origin.Commit(map[string]string{"v.txt": "1"}, "v1")
	resp, out := g.send(delivery{event: "push", guid: pushGUID, body: testkit.Push(t, "refs/heads/main", before, after, "binkkatal/sample_app")})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d %v", resp.StatusCode, out)
	}
	pushID := id(out["delivery_id"])
	if dp := g.waitDeploy(id(out["deploy_id"])); dp.Status != store.DeploySucceeded {
		t.Fatalf("deploy %s: %s", dp.Status, dp.Error)
	}
	_, out = g.send(delivery{event: "ping", guid: "ping-1", body: testkit.Payload(t, "github/ping.json")})
	pingID := id(out["delivery_id"])
	resp, _ = g.send(delivery{event: "push", guid: "forged-1", body: []byte(`{}`), headers: map[string]string{"X-Hub-Signature-256": forge.Sign([]byte(`{}`), []byte("guess"))}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged: %d", resp.StatusCode)
	}

	// The branch moves on without a delivery; a replay of the first push deploys its head.
	later := g.origin.Commit(map[string]string{"v.txt": "2"}, "v2")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/deliveries/%d/redeliver", g.url, pushID), nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var replayDeploy int64
	if _, err := fmt.Sscanf(resp.Header.Get("Location"), "/deploys/%d", &replayDeploy); err != nil {
		t.Fatalf("replay: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if dp := g.waitDeploy(replayDeploy); dp.Status != store.DeploySucceeded || dp.ToCommit != later {
		t.Fatalf("replay deploy %s to %s (want %s): %s", dp.Status, dp.ToCommit, later, dp.Error)
	}

	body := okPage(t, g.url, "/")
	wellFormed(t, body)
	ids := rowIDs(body)
	if len(ids) != 4 {
		t.Fatalf("rows %v, want 4", ids)
	}
	replayID, forgedID := ids[0], ids[1]

	push := historyRow(t, body, pushID)
	for _, want := range []string{`<code title="` + pushGUID + `">72d3162e</code>`, `<span class="tone-ok">202</span>`} {
		if !strings.Contains(push, want) {
			t.Errorf("push row lacks %q:\n%s", want, push)
		}
	}
	if strings.Contains(push, `class="why"`) || strings.Contains(push, `class="deployed"`) {
		t.Errorf("an accepted delivery's row shows a reason or a replay's commit:\n%s", push)
	}
	ping := historyRow(t, body, pingID)
	if !strings.Contains(ping, `<span class="tone-ok">200</span>`) || !regexp.MustCompile(`<span class="why" title="[^"]+">[^<]+</span>`).MatchString(ping) {
		t.Errorf("ignored ping's row lacks its 200 or its reason:\n%s", ping)
	}
	forged := historyRow(t, body, forgedID)
	if !strings.Contains(forged, `<span class="tone-bad">401</span>`) || !strings.Contains(forged, `<span class="why" title="`) {
		t.Errorf("rejected row lacks its 401 or its reason:\n%s", forged)
	}
	replay := historyRow(t, body, replayID)
	for _, want := range []string{
		fmt.Sprintf(`(replay of <a href="/deliveries/%d">#%d</a>)`, pushID, pushID),
		`→ <code title="` + later + `">` + later[:7] + `</code>`,
	} {
		if !strings.Contains(replay, want) {
			t.Errorf("replay row lacks %q:\n%s", want, replay)
		}
	}
}
