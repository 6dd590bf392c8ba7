package server_test

import (
	"context"
	"fmt"
	"html"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/store"
)

var (
	tagRe   = regexp.MustCompile(`<[^>]*>`)
	spaceRe = regexp.MustCompile(`\s+`)
)

// pageText is an HTML fragment as a reader sees it: a line break as a space, other tags
// dropped, spaces collapsed.
func pageText(fragment string) string {
	fragment = tagRe.ReplaceAllString(strings.ReplaceAll(fragment, "<br>", " "), "")
	return strings.TrimSpace(spaceRe.ReplaceAllString(html.UnescapeString(fragment), " "))
}

// between returns the part of body from the first match of start to the first end after
// it, or fails.
func between(t *testing.T, body, start, end string) string {
	t.Helper()
	i := strings.Index(body, start)
	if i < 0 {
		t.Fatalf("no %q in the page:\n%s", start, body)
	}
	j := strings.Index(body[i:], end)
	if j < 0 {
		t.Fatalf("no %q after %q", end, start)
	}
	return body[i : i+j]
}

var targetItemRe = regexp.MustCompile(`(?s)<li data-target="[^"]*">(.*?)</li>`)

// targetItems are the target outcomes listed in an HTML fragment, as text.
func targetItems(fragment string) []string {
	var out []string
	for _, m := range targetItemRe.FindAllStringSubmatch(fragment, -1) {
		out = append(out, pageText(m[1]))
	}
	return out
}

// TestHookTargetsOnThePagesAndInTheAPI: a hook with three targets shows, in each history
// row and on the delivery's page, every target's outcome (queued with its deploy and that
// deploy's status, or ignored with why); the repositories page groups the targets under
// their hook with what each deploys (branch or tag glob, paths) and a tag target's live
// tag; the API gives each target's hook, tags, paths and live tag.
func TestHookTargetsOnThePagesAndInTheAPI(t *testing.T) {
	g := environmentsGateway(t)
	ctx := context.Background()
	push := func(ref, message string) (deliveryID, deployID int64) {
		t.Helper()
		resp, answer := g.send(delivery{path: "/hooks/shop", event: "push", guid: gatewaytest.NewGUID(), body: shopPush(t, ref, message, false)})
		if resp.StatusCode != 202 {
			t.Fatalf("push of %s: %d %v", ref, resp.StatusCode, answer)
		}
		return id(answer["delivery_id"]), id(answer["deploy_id"])
	}
	// finish is the worker's part, stepped by hand.
	finish := func(repo string, want int64, r store.Result) {
		t.Helper()
		dp, err := g.store.ClaimDeploy(ctx, repo)
		if err != nil || dp.ID != want {
			t.Fatalf("claim %s: %+v %v, want deploy %d", repo, dp, err, want)
		}
		if err := g.store.FinishDeploy(ctx, dp.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	const after = "fd489864e7642b48eaad6e3f155c10e46810ec72"
	dev, staging := push("refs/heads/develop", "work")
	tag, prod := push("refs/tags/v1.1.0", "release")
	finish("prod", prod, store.Result{Status: store.DeploySucceeded, ToCommit: after})
	main, docs := push("refs/heads/main", "readme only")
	finish("docs", docs, store.Result{Status: store.DeploySkipped, ToCommit: after, Reason: "no change under docs/** since live 9f8e7d6"})

	// The history: each row lists every target.
	body := okPage(t, g.url, "/")
	row := func(id int64) string { return between(t, body, fmt.Sprintf(`data-id="%d"`, id), "</tr>") }
	for _, c := range []struct {
		delivery int64
		want     []string
	}{
		{dev, []string{
			"docs: ignored (push to refs/heads/develop; this target deploys refs/heads/main)",
			"prod: ignored (push to refs/heads/develop; this target deploys tags matching v*)",
			fmt.Sprintf("staging: queued #%d", staging)}},
		{tag, []string{
			"docs: ignored (tag push refs/tags/v1.1.0; this target deploys refs/heads/main)",
			fmt.Sprintf("prod: queued #%d succeeded", prod),
			"staging: ignored (tag push refs/tags/v1.1.0; this target deploys refs/heads/develop)"}},
		{main, []string{
			fmt.Sprintf("docs: queued #%d skipped", docs),
			"prod: ignored (push to refs/heads/main; this target deploys tags matching v*)",
			"staging: ignored (push to refs/heads/main; this target deploys refs/heads/develop)"}},
	} {
		if got := targetItems(row(c.delivery)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("history row of delivery %d:\n got %q\nwant %q", c.delivery, got, c.want)
		}
	}
	for _, link := range []string{
		fmt.Sprintf(`<a href="/deploys/%d" class="badge tone-busy"`, staging),
		fmt.Sprintf(`<a href="/deploys/%d" class="badge tone-ok"`, prod),
		fmt.Sprintf(`<a href="/deploys/%d" class="badge tone-info"`, docs), // skipped: recorded, not a failure
	} {
		if !strings.Contains(body, link) {
			t.Errorf("history lacks the deploy link %s", link)
		}
	}

	// The delivery's page lists every target's outcome too.
	page := okPage(t, g.url, fmt.Sprintf("/deliveries/%d", dev))
	if got := targetItems(between(t, page, "<dt>Targets</dt>", "</dd>")); len(got) != 3 || got[2] != fmt.Sprintf("staging: queued #%d", staging) ||
		!strings.HasPrefix(got[1], "prod: ignored (push to refs/heads/develop") {
		t.Errorf("delivery page's targets: %q", got)
	}
	if got := pageText(strings.TrimPrefix(between(t, page, "<dt>Hook</dt>", "</dd>"), "<dt>Hook</dt>")); got != "shop · octo/shop" {
		t.Errorf("delivery page's hook: %q", got)
	}

	// The repositories page: the targets under their hook, each with what it deploys.
	repos := okPage(t, g.url, "/repos")
	shop := between(t, repos, `<tbody class="hook" data-hook="shop">`, "</tbody>")
	if got := pageText(between(t, shop, "<th", "</th>")); got != "[hooks.shop] github · octo/shop" {
		t.Errorf("shop's heading: %q", got)
	}
	cell := func(group, target, label string) string {
		t.Helper()
		r := between(t, group, fmt.Sprintf(`data-live="repo-%s"`, target), "</tr>")
		m := regexp.MustCompile(`(?s)<td data-label="` + label + `"[^>]*>(.*?)</td>`).FindStringSubmatch(r)
		if m == nil {
			t.Fatalf("%s's row has no %s cell: %s", target, label, r)
		}
		return pageText(m[1])
	}
	for _, c := range []struct{ target, label, want string }{
		{"staging", "Branch", "develop"},
		{"prod", "Branch", "tags v*"},
		{"docs", "Branch", "main paths docs/**"},
		{"prod", "Live", fmt.Sprintf("%s just now tag v1.1.0", after[:7])},
		{"staging", "Live", "never deployed"},
	} {
		if got := cell(shop, c.target, c.label); got != c.want {
			t.Errorf("repositories page, %s's %s: %q, want %q", c.target, c.label, got, c.want)
		}
	}
	if !strings.Contains(between(t, shop, `data-live="repo-docs"`, "</tr>"), `<span class="badge tone-info">skipped</span>`) {
		t.Errorf("docs' last deploy is not shown skipped in its colour")
	}
	if lab := between(t, repos, `<tbody class="hook" data-hook="lab">`, "</tbody>"); pageText(between(t, lab, "<th", "</th>")) != "[hooks.lab] gitlab" ||
		!strings.Contains(lab, `data-live="repo-labprod"`) {
		t.Errorf("lab's group: %s", lab)
	}

	// The API: each target's hook, tags, paths and live tag.
	type repoFields struct {
		Name       string   `json:"name"`
		Hook       string   `json:"hook"`
		Branch     string   `json:"branch"`
		Tags       string   `json:"tags"`
		Paths      []string `json:"paths"`
		LiveCommit string   `json:"live_commit"`
		LiveTag    string   `json:"live_tag"`
	}
	var list struct{ Repos []repoFields }
	if code := g.api("GET", "/api/v1/repos", "", &list); code != 200 {
		t.Fatalf("GET /api/v1/repos: %d", code)
	}
	want := []repoFields{
		{Name: "docs", Hook: "shop", Branch: "main", Paths: []string{"docs/**"}},
		{Name: "labprod", Hook: "lab", Tags: "v*", Paths: []string{}},
		{Name: "prod", Hook: "shop", Tags: "v*", Paths: []string{}, LiveCommit: after, LiveTag: "v1.1.0"},
		{Name: "staging", Hook: "shop", Branch: "develop", Paths: []string{}},
	}
	if !reflect.DeepEqual(list.Repos, want) {
		t.Errorf("GET /api/v1/repos:\n got %+v\nwant %+v", list.Repos, want)
	}
	var one repoFields
	if code := g.api("GET", "/api/v1/repos/prod", "", &one); code != 200 || !reflect.DeepEqual(one, want[2]) {
		t.Errorf("GET /api/v1/repos/prod: %d %+v, want %+v", code, one, want[2])
	}
}

// TestRepoHookSharedWithATarget: a [repos.NAME] with its own secret that another target
// names is shown as a hook under its [repos.NAME] heading, and a push both targets take
// lists each target with its own deploy, not the other's.
func TestRepoHookSharedWithATarget(t *testing.T) {
	dir := t.TempDir()
	database := filepath.Join(dir, "hookgate.db")
	if strings.HasPrefix(t.Name(), "TestOnPostgres/") {
		database = pgtest.Database(t)
	}
	cfg := gatewaytest.WriteConfig(t, fmt.Sprintf(`[server]
listen = %q
database = %q
node = %q

[repos.site]
secret = %q
repository = "octo/shop"
path = %q

[repos.mirror]
hook = "site"
path = %q
`, gatewaytest.FreeAddr(t), database, testNode, secret, filepath.Join(dir, "site"), filepath.Join(dir, "mirror")))
	gw := gatewaytest.Start(t, cfg, gatewaytest.Manual())
	g := &gateway{t: t, store: gw.Store, database: gw.Database, url: gw.URL, srv: gw.G.Server(), mgr: gw.G.Manager()}

	resp, answer := g.send(delivery{path: "/hooks/site", event: "push", guid: gatewaytest.NewGUID(), body: shopPush(t, "refs/heads/main", "both", false)})
	if resp.StatusCode != 202 || len(targetsOf(answer)) != 2 {
		t.Fatalf("push to main: %d %v", resp.StatusCode, answer)
	}
	ids := map[string]int64{}
	for _, v := range answer["targets"].([]any) {
		m := v.(map[string]any)
		ids[m["repo"].(string)] = id(m["deploy_id"])
	}
	body := okPage(t, g.url, "/")
	want := []string{fmt.Sprintf("mirror: queued #%d", ids["mirror"]), fmt.Sprintf("site: queued #%d", ids["site"])}
	if got := targetItems(between(t, body, fmt.Sprintf(`data-id="%d"`, id(answer["delivery_id"])), "</tr>")); !reflect.DeepEqual(got, want) {
		t.Errorf("history row: %q, want %q", got, want)
	}
	repos := okPage(t, g.url, "/repos")
	group := between(t, repos, `<tbody class="hook" data-hook="site">`, "</tbody>")
	if got := pageText(between(t, group, "<th", "</th>")); got != "[repos.site] github · octo/shop" ||
		!strings.Contains(group, `data-live="repo-mirror"`) || !strings.Contains(group, `data-live="repo-site"`) {
		t.Errorf("site's group: heading %q\n%s", got, group)
	}
}
