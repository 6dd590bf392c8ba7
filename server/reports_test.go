package server_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/forgetest"
	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
)

// TestPushIsReportedToTheForge: a push to a target with report set ends with hookgate's
// success status and deployment on the forge, sent by the gateway's own sender; the
// deploy's reports are in GET /api/v1/deploys/:id and on its page, counted in the
// metrics, and the token is nowhere: not in the API, the page, the log, or the deploy
// commands' environment.
func TestPushIsReportedToTheForge(t *testing.T) {
	const token = "ghp_e2eT0kenNeverShown"
	forge := forgetest.New(t, forgetest.GitHub, token)
	envFile := filepath.Join(t.TempDir(), "env.txt")
	gw := gatewaytest.New(t,
		gatewaytest.Server(`public_url = "https://deploy.example.com"`),
		gatewaytest.Env("HG_FORGE_TOKEN="+token),
		gatewaytest.Repos(gatewaytest.Repo{Commands: []string{"env > " + envFile}, TOML: fmt.Sprintf(`report = "gh"
report_deployments = true
environment_url = "https://site.example.com"

[forges.gh]
type = "github"
api_url = %q
token_env = "HG_FORGE_TOKEN"
`, forge.APIURL())}))
	before := gw.Origin["site"].Head()
	after := gw.Origin["site"].Commit(map[string]string{"index.html": "v2\n"}, "v2")
	resp, out := gw.Send(gatewaytest.Delivery{Body: testkit.Push(t, "refs/heads/main", before, after, gatewaytest.Repository)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push answered %d %v", resp.StatusCode, out)
	}
	id := int64(out["deploy_id"].(float64))
	testkit.Eventually(t, 30*time.Second, "the forge to show success", func() bool {
		return forge.Latest(gatewaytest.Repository, after, "hookgate/site").State == "success"
	})
	s := forge.Latest(gatewaytest.Repository, after, "hookgate/site")
	if !strings.HasPrefix(s.Description, "deployed "+after[:7]+" in ") || !strings.HasSuffix(s.Description, " s") {
		t.Errorf("description %q", s.Description)
	}
	if s.TargetURL != fmt.Sprintf("https://deploy.example.com/deploys/%d", id) {
		t.Errorf("target_url %q", s.TargetURL)
	}
	if len(forge.Deployments) != 1 || forge.Deployments[0].SHA != after {
		t.Fatalf("deployments %+v", forge.Deployments)
	}

	var dp struct {
		Reports []struct {
			Status, Result, Forge, Endpoint, State, Error, Commit string
			HTTPStatus                                            int `json:"http_status"`
			Attempts                                              int
		}
	}
	// The commit status is posted before the deployment status of the same report: the
	// report is recorded sent once both went.
	testkit.Eventually(t, 30*time.Second, "the success report recorded as sent", func() bool {
		if code := gatewaytest.API(t, "GET", fmt.Sprintf("%s/api/v1/deploys/%d", gw.URL, id), "", &dp); code != 200 {
			t.Fatalf("GET deploy: %d", code)
		}
		return len(dp.Reports) == 3 && dp.Reports[2].Result != "pending"
	})
	if len(dp.Reports) != 3 {
		t.Fatalf("reports %+v", dp.Reports)
	}
	last := dp.Reports[2]
	if last.Status != "succeeded" || last.Result != "sent" || last.Forge != "gh" || last.State != "success, deployment success" ||
		last.HTTPStatus != 201 || last.Endpoint != "POST /repos/"+gatewaytest.Repository+"/deployments/1/statuses" || last.Attempts != 1 ||
		last.Commit != after {
		t.Fatalf("report %+v", last)
	}

	page := getText(t, fmt.Sprintf("%s/deploys/%d", gw.URL, id))
	if !strings.Contains(page, "Forge reports") || !strings.Contains(page, "POST /repos/"+gatewaytest.Repository+"/deployments/1/statuses") ||
		!strings.Contains(page, "on <code>"+after[:7]+"</code>") {
		t.Fatalf("the deploy page shows no reports:\n%s", page)
	}
	if m := getText(t, gw.URL+"/metrics"); !strings.Contains(m, `hookgate_forge_reports_total{forge="gh",result="sent"}`) {
		t.Fatal("no hookgate_forge_reports_total in /metrics")
	}
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"the deploy's environment": string(env), "the page": page, "the log": gw.Logs.String(),
		"the API": fmt.Sprint(dp)} {
		if strings.Contains(text, token) || strings.Contains(text, "HG_FORGE_TOKEN") {
			t.Errorf("%s shows the forge token or its variable", what)
		}
	}
}

func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return string(b)
}

// TestReloadTurnsReportingOn: a reload that adds report to a target and a [forges.NAME]
// makes the next deploy's statuses reach that forge, without a restart.
func TestReloadTurnsReportingOn(t *testing.T) {
	forge := forgetest.New(t, forgetest.Gitea, "gitea-t0ken")
	gw := gatewaytest.New(t, gatewaytest.Env("HG_GITEA_TOKEN=gitea-t0ken"))
	f, err := os.OpenFile(gw.Path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The target's table is the file's last: its keys go on, then the forge's table.
	fmt.Fprintf(f, "report = \"tea\"\n\n[forges.tea]\ntype = \"gitea\"\napi_url = %q\ntoken_env = \"HG_GITEA_TOKEN\"\n", forge.APIURL())
	f.Close()
	if code := gatewaytest.API(t, "POST", gw.URL+"/api/v1/reload", "", nil); code != 200 {
		t.Fatalf("reload: %d\n%s", code, gw.Logs.String())
	}
	before := gw.Origin["site"].Head()
	after := gw.Origin["site"].Commit(map[string]string{"index.html": "v3\n"}, "v3")
	if resp, out := gw.Send(gatewaytest.Delivery{Body: testkit.Push(t, "refs/heads/main", before, after, gatewaytest.Repository)}); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push answered %d %v", resp.StatusCode, out)
	}
	testkit.Eventually(t, 30*time.Second, "the forge to show success", func() bool {
		return forge.Latest(gatewaytest.Repository, after, "hookgate/site").State == "success"
	})
}
