package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/reporter"
)

// writePEM writes a private key to dir/name as PEM and returns the path.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestForgesConfig: [forges.NAME] and a target's report keys become the reporter's
// config: defaults filled in, the token read from the environment or a file, a GitHub App's
// key parsed, and a context per node when the target deploys on several.
func TestForgesConfig(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := writePEM(t, dir, "app.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	if err := os.WriteFile(filepath.Join(dir, "gitea.token"), []byte("gitea-hush\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GH_TOKEN", "gh-hush")
	t.Setenv("KEEP_ME", "yes")
	cfg, err := Load(writeConfig(t, fmt.Sprintf(`
[server]
public_url = "https://deploy.example.com/"

[forges.gh]
type = "github"
token_env = "GH_TOKEN"

[forges.app]
type = "github"
api_url = "https://ghe.example.com/api/v3"
app_id = 12
installation_id = 34
private_key_file = %q

[forges.tea]
type = "gitea"
api_url = "https://git.example.com/api/v1"
token_file = %q

[repos.site]
secret = "x"
path = "/x"
repository = "acme/site"
report = "gh"
report_deployments = true
nodes = ["a", "b"]
require_checks = ["ci/build", "test"]

[repos.api]
secret = "y"
path = "/y"
repository = "acme/api"
report = "tea"
report_context = "deploy/api"
environment = "production"
environment_url = "https://api.example.com"
require_checks = ["*"]
checks_timeout = "5m"

[repos.quiet]
secret = "z"
path = "/z"
`, keyPath, filepath.Join(dir, "gitea.token"))))
	if err != nil {
		t.Fatal(err)
	}
	rc := cfg.Reporting()
	if rc.PublicURL != "https://deploy.example.com" {
		t.Errorf("public_url %q", rc.PublicURL)
	}
	if f := rc.Forges["gh"]; f == nil || f.APIURL != reporter.DefaultGitHubAPI || f.Type != "github" {
		t.Errorf("forge gh %v", f)
	}
	if f := rc.Forges["app"]; f == nil || f.APIURL != "https://ghe.example.com/api/v3" {
		t.Errorf("forge app %v", f)
	}
	site := rc.Targets["site"]
	if site.Forge != "gh" || site.Context != "hookgate/site" || !site.PerNode || site.ContextFor("b") != "hookgate/site@b" ||
		!site.Deployments || site.Environment != "site" || site.Repository != "acme/site" {
		t.Errorf("target site %+v", site)
	}
	api := rc.Targets["api"]
	if api.Context != "deploy/api" || api.PerNode || api.ContextFor("a") != "deploy/api" || api.Environment != "production" || api.EnvURL != "https://api.example.com" {
		t.Errorf("target api %+v", api)
	}
	if _, ok := rc.Targets["quiet"]; ok {
		t.Error("a target without report reports")
	}
	if len(site.RequireChecks) != 2 || site.ChecksTimeout != 30*time.Minute || len(api.RequireChecks) != 1 || api.ChecksTimeout != 5*time.Minute {
		t.Errorf("require_checks: site %v %v, api %v %v", site.RequireChecks, site.ChecksTimeout, api.RequireChecks, api.ChecksTimeout)
	}
	if got := cfg.CheckedRepos(); len(got) != 2 || got[0] != "api" || got[1] != "site" {
		t.Errorf("checked repos %v", got)
	}
	// Printing the configuration or a forge shows no token.
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", rc, rc, rc), fmt.Sprintf("%+v %#v", *cfg, *cfg)} {
		for _, secret := range []string{"gh-hush", "gitea-hush"} {
			if strings.Contains(s, secret) {
				t.Fatalf("printing the config shows %s: %s", secret, s)
			}
		}
	}
	// Deploy commands see neither token_env's variable nor anything else of the tokens.
	for _, kv := range cfg.CommandEnv() {
		if strings.HasPrefix(kv, "GH_TOKEN=") {
			t.Fatalf("deploy commands would see %s", kv)
		}
	}
}

// TestForgesConfigErrors: each mistake names its key as the file spells it, and no
// error shows a token.
func TestForgesConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	ecPath := writePEM(t, dir, "ec.pem", "PRIVATE KEY", ecDER)
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a key"), 0o600)
	unreadable := filepath.Join(dir, "missing.token")
	t.Setenv("SET_TOKEN", "hush-token")
	const repo = "\n[repos.site]\nsecret = \"x\"\npath = \"/x\"\n"
	for _, tc := range []struct {
		name string
		body string
		want []string
	}{
		{"no type", "[forges.f]\ntoken_env = \"SET_TOKEN\"\n" + repo, []string{"forges.f: type is required"}},
		{"bad type", "[forges.f]\ntype = \"bitbucket\"\ntoken_env = \"SET_TOKEN\"\n" + repo, []string{`forges.f: type "bitbucket"`}},
		{"gitea without api_url", "[forges.f]\ntype = \"gitea\"\ntoken_env = \"SET_TOKEN\"\n" + repo, []string{"forges.f: api_url is required for type \"gitea\""}},
		{"gitlab without api_url", "[forges.f]\ntype = \"gitlab\"\ntoken_env = \"SET_TOKEN\"\n" + repo, []string{"forges.f: api_url is required for type \"gitlab\""}},
		{"api_url not http", "[forges.f]\ntype = \"github\"\napi_url = \"ftp://x\"\ntoken_env = \"SET_TOKEN\"\n" + repo, []string{"forges.f: api_url \"ftp://x\""}},
		{"no credentials", "[forges.f]\ntype = \"github\"\n" + repo, []string{"forges.f: set exactly one of token_env, token_file"}},
		{"two credentials", "[forges.f]\ntype = \"github\"\ntoken_env = \"SET_TOKEN\"\ntoken_file = \"x\"\n" + repo, []string{"forges.f: set exactly one of"}},
		{"token_env unset", "[forges.f]\ntype = \"github\"\ntoken_env = \"NOT_SET_ANYWHERE\"\n" + repo, []string{"forges.f: token_env: environment variable NOT_SET_ANYWHERE is empty"}},
		{"token_file unreadable", fmt.Sprintf("[forges.f]\ntype = \"github\"\ntoken_file = %q\n", unreadable) + repo, []string{"forges.f: token_file:", "missing.token"}},
		{"app on gitea", "[forges.f]\ntype = \"gitea\"\napi_url = \"https://g/api/v1\"\napp_id = 1\ninstallation_id = 2\nprivate_key_file = \"k\"\n" + repo, []string{"forges.f: app_id, installation_id and private_key_file are for type \"github\""}},
		{"app without ids", fmt.Sprintf("[forges.f]\ntype = \"github\"\nprivate_key_file = %q\n", garbage) + repo, []string{"forges.f: app_id is required", "installation_id is required"}},
		{"key not PEM", fmt.Sprintf("[forges.f]\ntype = \"github\"\napp_id = 1\ninstallation_id = 2\nprivate_key_file = %q\n", garbage) + repo, []string{"forges.f: private_key_file", "not a PEM file"}},
		{"key not RSA", fmt.Sprintf("[forges.f]\ntype = \"github\"\napp_id = 1\ninstallation_id = 2\nprivate_key_file = %q\n", ecPath) + repo, []string{"forges.f: private_key_file", "not an RSA private key"}},
		{"report unknown forge", repo + "repository = \"a/b\"\nreport = \"nope\"\n", []string{`repos.site: report "nope": no [forges.nope] table`}},
		{"report without repository", "[forges.f]\ntype = \"github\"\ntoken_env = \"SET_TOKEN\"\n" + repo + "report = \"f\"\n", []string{"repos.site: repository is required when report is set"}},
		{"deployments on gitea", "[forges.f]\ntype = \"gitea\"\napi_url = \"https://g/api/v1\"\ntoken_env = \"SET_TOKEN\"\n" + repo + "repository = \"a/b\"\nreport = \"f\"\nreport_deployments = true\n", []string{"repos.site: report_deployments: forge \"f\" is gitea"}},
		{"report keys without report", repo + "report_context = \"x\"\nenvironment = \"prod\"\n", []string{"repos.site: report_context is set but report is not", "repos.site: environment is set but report is not"}},
		{"environment_url", "[forges.f]\ntype = \"github\"\ntoken_env = \"SET_TOKEN\"\n" + repo + "repository = \"a/b\"\nreport = \"f\"\nenvironment_url = \"nope\"\n", []string{"repos.site: environment_url \"nope\""}},
		{"public_url", "[server]\npublic_url = \"deploy.example.com\"\n" + repo, []string{"server.public_url \"deploy.example.com\""}},
		{"unknown key", "[forges.f]\ntype = \"github\"\ntoken = \"hush-token\"\n" + repo, []string{"token"}},
		{"github repository nested", repo + "repository = \"a/b/c\"\n", []string{`repos.site: repository "a/b/c": give it as owner/name`}},
		{"gitlab repository one segment", repo + "provider = \"gitlab\"\nrepository = \"diaspora\"\n", []string{`repos.site: repository "diaspora": give it as group/project, group/subgroup/project or the project's numeric id`}},
		{"gitlab repository empty segment", repo + "provider = \"gitlab\"\nrepository = \"a//b\"\n", []string{`repos.site: repository "a//b": give it as group/project`}},
		{"require_checks without report", repo + "require_checks = [\"ci\"]\nchecks_timeout = \"5m\"\n", []string{"repos.site: require_checks is set but report is not", "repos.site: checks_timeout is set but report is not"}},
		{"checks_timeout without require_checks", "[forges.f]\ntype = \"github\"\ntoken_env = \"SET_TOKEN\"\n" + repo + "repository = \"a/b\"\nreport = \"f\"\nchecks_timeout = \"5m\"\n", []string{"repos.site: checks_timeout is set but require_checks is not"}},
		{"checks_timeout bad", "[forges.f]\ntype = \"github\"\ntoken_env = \"SET_TOKEN\"\n" + repo + "repository = \"a/b\"\nreport = \"f\"\nrequire_checks = [\"ci\"]\nchecks_timeout = \"soon\"\n", []string{"repos.site: checks_timeout:"}},
		{"require_checks star with names", "[forges.f]\ntype = \"github\"\ntoken_env = \"SET_TOKEN\"\n" + repo + "repository = \"a/b\"\nreport = \"f\"\nrequire_checks = [\"*\", \"ci\"]\n", []string{`repos.site: require_checks: "*" (every check) stands alone`}},
		{"require_checks empty name", "[forges.f]\ntype = \"github\"\ntoken_env = \"SET_TOKEN\"\n" + repo + "repository = \"a/b\"\nreport = \"f\"\nrequire_checks = [\" ci\"]\n", []string{`repos.site: require_checks[0] " ci"`}},
	} {
		t.Run(tc.name, func(t *testing.T) { assertConfigError(t, tc.body, tc.want, "hush-token") })
	}
}

// TestHookTargetsReportToTheHooksRepository: a target that takes its deliveries from a
// shared hook has no repository key of its own (the hook holds it), so reporting uses the
// hook's; a hook without one is an error naming the hook.
func TestHookTargetsReportToTheHooksRepository(t *testing.T) {
	t.Setenv("GH_TOKEN", "gh-hush")
	const forge = `
[forges.gh]
type = "github"
token_env = "GH_TOKEN"
`
	cfg, err := Load(writeConfig(t, forge+`
[hooks.shop]
secret = "s3cret-s3cret-s3cret"
repository = "acme/shop"

[repos.staging]
hook = "shop"
path = "/srv/staging"
branch = "develop"
report = "gh"
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Reporting().Targets["staging"].Repository; got != "acme/shop" {
		t.Fatalf("staging reports to %q, want the hook's acme/shop", got)
	}
	_, err = Load(writeConfig(t, forge+`
[hooks.shop]
secret = "s3cret-s3cret-s3cret"

[repos.staging]
hook = "shop"
path = "/srv/staging"
report = "gh"
`))
	if err == nil || !strings.Contains(err.Error(), `repos.staging: report needs the forge's owner/name the statuses go to: set repository in its hook "shop"`) {
		t.Fatalf("a hook without repository: %v", err)
	}
}

// TestGitLabRepository: a GitLab target names its project by a path in nested groups or
// by its numeric id.
func TestGitLabRepository(t *testing.T) {
	for _, repository := range []string{"mike/diaspora", "group/sub/project", "15"} {
		cfg, err := Load(writeConfig(t, fmt.Sprintf("[repos.site]\nsecret = \"x\"\npath = \"/x\"\nprovider = \"gitlab\"\nrepository = %q\n", repository)))
		if err != nil {
			t.Errorf("repository %q: %v", repository, err)
			continue
		}
		if got := cfg.Repos["site"].Repository; got != repository {
			t.Errorf("repository %q read as %q", repository, got)
		}
	}
}
