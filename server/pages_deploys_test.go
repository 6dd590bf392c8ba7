package server_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// pressDeployNow presses the repositories page's "Deploy now" as a browser on the page
// would, and returns the deploy it queued.
func pressDeployNow(t *testing.T, g *gateway, repo string) int64 {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, g.url+"/repos/"+repo+"/deploy", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", g.url)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id, err := strconv.ParseInt(strings.TrimPrefix(resp.Header.Get("Location"), "/deploys/"), 10, 64)
	if resp.StatusCode != http.StatusSeeOther || err != nil {
		t.Fatalf("deploy now: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return id
}

// TestDeploysPage: a deploy no delivery started (here one by hand) is missing from the
// history but listed, with its trigger, on /deploys, which filters and pages like the
// history and is linked from the navigation and the repositories page.
func TestDeploysPage(t *testing.T) {
	g := newGateway(t)
	before := testkit.CheckoutHead(t, g.checkout)
	after := g.origin.Commit(map[string]string{"v.txt": "1"}, "v1")
	resp, out := g.send(delivery{event: "push", guid: "push-1", body: testkit.Push(t, "refs/heads/main", before, after, "binkkatal/sample_app")})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d %v", resp.StatusCode, out)
	}
	pushed := id(out["deploy_id"])
	if dp := g.waitDeploy(pushed); dp.Status != store.DeploySucceeded {
		t.Fatalf("push deploy %s: %s", dp.Status, dp.Error)
	}
	manual := pressDeployNow(t, g, "site")
	if dp := g.waitDeploy(manual); dp.Status != store.DeploySucceeded {
		t.Fatalf("manual deploy %s: %s", dp.Status, dp.Error)
	}

	if history := okPage(t, g.url, "/"); len(rowIDs(history)) != 1 || !strings.Contains(history, `<a href="/deploys">Deploys</a>`) {
		t.Fatalf("history: rows %v (want the push's delivery only) or no link to /deploys", rowIDs(history))
	}
	body := okPage(t, g.url, "/deploys")
	wellFormed(t, body)
	if got := rowIDs(body); fmt.Sprint(got) != fmt.Sprint([]int64{manual, pushed}) {
		t.Fatalf("deploys page rows %v, want %v (newest first)", got, []int64{manual, pushed})
	}
	for _, want := range []string{
		`<a href="/deploys" aria-current="page">Deploys</a>`,
		fmt.Sprintf(`<a href="/deploys/%d">#%d</a>`, manual, manual),
		`<td data-label="Trigger" class="trigger">manual</td>`,
		`<td data-label="Trigger" class="trigger">push</td>`,
		`<code title="` + after + `">` + after[:7] + `</code>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("deploys page lacks %q", want)
		}
	}

	for path, want := range map[string][]int64{
		"/deploys?trigger=manual":                 {manual},
		"/deploys?trigger=push&repo=site":         {pushed},
		"/deploys?status=failed":                  nil,
		"/deploys?repo=other":                     nil,
		"/deploys?node=" + testNode:               {manual, pushed},
		"/deploys?node=elsewhere":                 nil,
		"/deploys?limit=1":                        {manual},
		fmt.Sprintf("/deploys?before=%d", manual): {pushed},
	} {
		body := okPage(t, g.url, path)
		wellFormed(t, body)
		if got := rowIDs(body); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: rows %v, want %v", path, got, want)
		}
	}
	// Paging: the older link of a one-row page leads to the next deploy and keeps the filter.
	first := okPage(t, g.url, "/deploys?limit=1&repo=site")
	older := pagerLink(first, "next")
	if older != fmt.Sprintf("/deploys?before=%d&limit=1&repo=site", manual) {
		t.Fatalf("older link %q", older)
	}
	second := okPage(t, g.url, older)
	if got := rowIDs(second); len(got) != 1 || got[0] != pushed || pagerLink(second, "prev") == "" || pagerLink(second, "next") != "" {
		t.Fatalf("second page rows %v, newer %q, older %q", got, pagerLink(second, "prev"), pagerLink(second, "next"))
	}

	for _, bad := range []string{"status=ignored", "trigger=cron", "node=no%20spaces", "limit=0", "before=x", "before=2&after=1"} {
		if resp, body := page(t, g.url, "/deploys?"+bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("/deploys?%s: %d, want 400\n%s", bad, resp.StatusCode, body)
		}
	}

	repos := okPage(t, g.url, "/repos")
	wellFormed(t, repos)
	if want := fmt.Sprintf(`<a href="/deploys/%d">#%d</a> <span class="badge tone-ok">succeeded</span> <span class="trigger">manual</span>`, manual, manual); !strings.Contains(repos, want) {
		t.Errorf("repositories page does not show the last deploy's trigger: lacks %q", want)
	}
	if !strings.Contains(repos, `<a class="all-deploys" href="/deploys?repo=site">all deploys</a>`) {
		t.Errorf("repositories page has no link to the repository's deploys")
	}
}
