package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/forgetest"
	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
)

// gitlabPush is testdata's GitLab Push Hook (project_id 15, mike/diaspora) moved to
// before..after on main.
func gitlabPush(t *testing.T, before, after string) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(testkit.Payload(t, "gitlab/push.json"), &p); err != nil {
		t.Fatal(err)
	}
	p["ref"], p["before"], p["after"], p["checkout_sha"] = "refs/heads/main", before, after, after
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReportsGoToThePayloadsRepository: a push's reports go to the repository its
// payload names (GitLab: project.id, here 15), a manual deploy's to the target's
// repository key (the project's path); a numeric key names the project by id, and its
// pushes deploy.
func TestReportsGoToThePayloadsRepository(t *testing.T) {
	forge := forgetest.New(t, forgetest.GitLab, "glpat-t0ken")
	gw := gatewaytest.New(t, gatewaytest.Env("HG_GL_TOKEN=glpat-t0ken"), gatewaytest.Repos(
		gatewaytest.Repo{Name: "site", Provider: "gitlab", Repository: "mike/diaspora", TOML: `report = "gl"`},
		gatewaytest.Repo{Name: "byid", Provider: "gitlab", Repository: "15", TOML: fmt.Sprintf(`report = "gl"

[forges.gl]
type = "gitlab"
api_url = %q
token_env = "HG_GL_TOKEN"
`, forge.APIURL())}))

	before := gw.Origin["site"].Head()
	after := gw.Origin["site"].Commit(map[string]string{"index.html": "v2\n"}, "v2")
	if resp, out := gw.Send(gatewaytest.Delivery{Provider: "gitlab", Body: gitlabPush(t, before, after)}); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push answered %d %v", resp.StatusCode, out)
	}
	testkit.Eventually(t, 30*time.Second, "the push's success on project 15", func() bool {
		return forge.Latest("15", after, "hookgate/site").State == "success"
	})
	if s := forge.Shown("mike/diaspora", after); len(s) != 0 {
		t.Fatalf("the push's reports went to the key's project too: %+v", s)
	}

	// A manual deploy has no payload: the target's repository key.
	manual := gw.Origin["site"].Commit(map[string]string{"index.html": "v3\n"}, "v3")
	if code := gatewaytest.API(t, "POST", gw.URL+"/api/v1/repos/site/deploy", "", nil); code != http.StatusAccepted {
		t.Fatalf("manual deploy: %d", code)
	}
	testkit.Eventually(t, 30*time.Second, "the manual deploy's success on mike/diaspora", func() bool {
		return forge.Latest("mike/diaspora", manual, "hookgate/site").State == "success"
	})

	// A numeric key matches the payload's project id.
	before = gw.Origin["byid"].Head()
	after = gw.Origin["byid"].Commit(map[string]string{"index.html": "id\n"}, "id")
	if resp, out := gw.Send(gatewaytest.Delivery{Repo: "byid", Provider: "gitlab", Body: gitlabPush(t, before, after)}); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push to the numeric key answered %d %v", resp.StatusCode, out)
	}
	testkit.Eventually(t, 30*time.Second, "byid's success on project 15", func() bool {
		return forge.Latest("15", after, "hookgate/byid").State == "success"
	})
}
