// forges.go owns [forges.NAME] and the reporting keys of [repos.NAME]: the forges a
// target reports its deploys to, their credentials, and the reporter's view of them.

package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hookgate/hookgate/reporter"
)

// ForgeConfig is one [forges.NAME] table: a forge's API and the credentials to post
// commit statuses and deployments with.
type ForgeConfig struct {
	Type      string `toml:"type"`    // github, gitea (also Forgejo) or gitlab
	APIURL    string `toml:"api_url"` // default https://api.github.com for github
	TokenEnv  string `toml:"token_env"`
	TokenFile string `toml:"token_file"`
	// AppID, InstallationID and PrivateKeyFile make a github forge a GitHub App.
	AppID          int64  `toml:"app_id"`
	InstallationID int64  `toml:"installation_id"`
	PrivateKeyFile string `toml:"private_key_file"`

	forge *reporter.Forge // resolved, with its credentials
}

// resolve reads the forge's credentials and checks its keys. Errors name keys and files,
// never a token.
func (f *ForgeConfig) resolve(name, dir string) error {
	var errs []error
	if !repoName.MatchString(name) {
		errs = append(errs, errors.New("the name must be 1-100 letters, digits, '.', '_' or '-'"))
	}
	switch f.Type {
	case reporter.GitHub:
		if f.APIURL == "" {
			f.APIURL = reporter.DefaultGitHubAPI
		}
	case reporter.Gitea, reporter.GitLab:
		if f.APIURL == "" {
			errs = append(errs, fmt.Errorf("api_url is required for type %q (e.g. %s)", f.Type,
				map[string]string{reporter.Gitea: "https://git.example.com/api/v1", reporter.GitLab: "https://gitlab.example.com/api/v4"}[f.Type]))
		}
	case "":
		errs = append(errs, fmt.Errorf("type is required: %q, %q (also for Forgejo) or %q", reporter.GitHub, reporter.Gitea, reporter.GitLab))
	default:
		errs = append(errs, fmt.Errorf("type %q: use %q, %q (also for Forgejo) or %q", f.Type, reporter.GitHub, reporter.Gitea, reporter.GitLab))
	}
	if f.APIURL != "" {
		u, err := url.Parse(f.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("api_url %q is not an http:// or https:// URL without credentials or query", f.APIURL))
		}
	}
	app := f.AppID != 0 || f.InstallationID != 0 || f.PrivateKeyFile != ""
	set := 0
	for _, on := range []bool{f.TokenEnv != "", f.TokenFile != "", app} {
		if on {
			set++
		}
	}
	var token string
	var ghApp *reporter.App
	switch {
	case set != 1:
		errs = append(errs, errors.New("set exactly one of token_env, token_file or (GitHub only) app_id, installation_id and private_key_file"))
	case f.TokenEnv != "":
		if token = os.Getenv(f.TokenEnv); token == "" {
			errs = append(errs, envUnset("token_env", f.TokenEnv))
		}
	case f.TokenFile != "":
		f.TokenFile = anchor(dir, f.TokenFile)
		b, err := os.ReadFile(f.TokenFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("token_file: %w", err))
		case len(bytes.TrimSpace(b)) == 0:
			errs = append(errs, fmt.Errorf("token_file %s is empty", f.TokenFile))
		default:
			token = string(bytes.TrimSpace(b))
		}
	default:
		if f.Type != reporter.GitHub && f.Type != "" {
			errs = append(errs, fmt.Errorf("app_id, installation_id and private_key_file are for type %q only; give %s a token_env or token_file", reporter.GitHub, f.Type))
			break
		}
		if f.AppID <= 0 {
			errs = append(errs, errors.New("app_id is required for a GitHub App (the number on the App's settings page)"))
		}
		if f.InstallationID <= 0 {
			errs = append(errs, errors.New("installation_id is required for a GitHub App (the number in the installation's URL)"))
		}
		if f.PrivateKeyFile == "" {
			errs = append(errs, errors.New("private_key_file is required for a GitHub App"))
			break
		}
		f.PrivateKeyFile = anchor(dir, f.PrivateKeyFile)
		b, err := os.ReadFile(f.PrivateKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("private_key_file: %w", err))
			break
		}
		key, err := reporter.ParsePrivateKey(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("private_key_file %s: %w", f.PrivateKeyFile, err))
			break
		}
		ghApp = reporter.NewApp(f.AppID, f.InstallationID, key)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	f.forge = reporter.NewForge(name, f.Type, f.APIURL, token, ghApp)
	return nil
}

// resolveReport checks a target's reporting keys against the forges; node count decides
// the default context.
func (r *RepoConfig) resolveReport(forges map[string]*ForgeConfig, repository string) []error {
	if r.Report == "" {
		var errs []error
		for key, set := range map[string]bool{"report_context": r.ReportContext != "", "report_deployments": r.ReportDeployments,
			"environment": r.Environment != "", "environment_url": r.EnvironmentURL != "",
			"require_checks": len(r.RequireChecks) > 0, "checks_timeout": r.ChecksTimeout != ""} {
			if set {
				errs = append(errs, fmt.Errorf("%s is set but report is not: name the [forges.NAME] to report through", key))
			}
		}
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return errs
	}
	var errs []error
	f, ok := forges[r.Report]
	if !ok {
		names := make([]string, 0, len(forges))
		for n := range forges {
			names = append(names, n)
		}
		sort.Strings(names)
		errs = append(errs, fmt.Errorf("report %q: no [forges.%s] table (forges: %s)", r.Report, r.Report, strings.Join(names, ", ")))
	}
	if repository == "" {
		if r.Hook != "" {
			errs = append(errs, fmt.Errorf("report needs the forge's owner/name the statuses go to: set repository in its hook %q", r.Hook))
		} else {
			errs = append(errs, errors.New("repository is required when report is set: the forge's owner/name the statuses go to"))
		}
	}
	if ok && r.ReportDeployments && f.Type == reporter.Gitea {
		errs = append(errs, fmt.Errorf("report_deployments: forge %q is gitea, which has no deployments API; leave it out", r.Report))
	}
	if strings.TrimSpace(r.ReportContext) != r.ReportContext || len(r.ReportContext) > 255 {
		errs = append(errs, fmt.Errorf("report_context %q: no surrounding spaces, at most 255 characters", r.ReportContext))
	}
	errs = append(errs, r.resolveChecks()...)
	if r.EnvironmentURL != "" {
		u, err := url.Parse(r.EnvironmentURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("environment_url %q is not an http:// or https:// URL", r.EnvironmentURL))
		}
	}
	return errs
}

// gitlabProject is a GitLab target's repository: a path of at least two segments
// (group/project, group/sub/project) or a project id.
var gitlabProject = regexp.MustCompile(`^([^/\s]+(/[^/\s]+)+|[1-9][0-9]*)$`)

// DefaultChecksTimeout is checks_timeout when require_checks is set and it is not.
const DefaultChecksTimeout = "30m"

// resolveChecks checks require_checks and checks_timeout.
func (r *RepoConfig) resolveChecks() []error {
	var errs []error
	for i, c := range r.RequireChecks {
		if strings.TrimSpace(c) != c || c == "" || len(c) > 255 {
			errs = append(errs, fmt.Errorf("require_checks[%d] %q: a status context or check-run name, no surrounding spaces, at most 255 characters", i, c))
		}
	}
	if slices.Contains(r.RequireChecks, "*") && len(r.RequireChecks) > 1 {
		errs = append(errs, errors.New(`require_checks: "*" (every check) stands alone; leave the other names out`))
	}
	if r.ChecksTimeout != "" && len(r.RequireChecks) == 0 {
		errs = append(errs, errors.New("checks_timeout is set but require_checks is not: name the checks to wait for"))
		return errs
	}
	if len(r.RequireChecks) == 0 {
		return errs
	}
	if r.ChecksTimeout == "" {
		r.ChecksTimeout = DefaultChecksTimeout
	}
	d, err := parseDuration(r.ChecksTimeout)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("checks_timeout: %w", err))
	case d < time.Second:
		errs = append(errs, fmt.Errorf("checks_timeout %q: at least 1s", r.ChecksTimeout))
	default:
		r.checksTimeout = d
	}
	return errs
}

// CheckedRepos lists the targets whose push and reconcile deploys wait for checks, for
// the store.
func (c *Config) CheckedRepos() []string {
	var out []string
	for _, name := range c.RepoNames() {
		if r := c.Repos[name]; r.Report != "" && len(r.RequireChecks) > 0 {
			out = append(out, name)
		}
	}
	return out
}

// resolveForges resolves every [forges.NAME] and the public URL.
func (c *Config) resolveForges(dir string) []error {
	var errs []error
	names := make([]string, 0, len(c.Forges))
	for n := range c.Forges {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := c.Forges[n].resolve(n, dir); err != nil {
			errs = append(errs, fmt.Errorf("forges.%s: %w", n, err))
		}
	}
	if p := c.Server.PublicURL; p != "" {
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("server.public_url %q is not an http:// or https:// URL such as https://deploy.example.com", p))
		}
	}
	return errs
}

// repositoryOf is the forge repository (owner/name) a target's deploys are reported to
// when no payload names one: its own repository key, or its hook's for a target that
// takes its deliveries from a shared hook (which holds the authentication keys).
func (c *Config) repositoryOf(r *RepoConfig) string {
	if r.Repository != "" || r.Hook == "" {
		return r.Repository
	}
	if h, ok := c.HookTables[r.Hook]; ok {
		return h.Repository
	}
	if owner, ok := c.Repos[r.Hook]; ok {
		return owner.Repository
	}
	return ""
}

// Reporting is what the reporter needs: the forges and every target that reports.
func (c *Config) Reporting() reporter.Config {
	rc := reporter.Config{Forges: map[string]*reporter.Forge{}, Targets: map[string]reporter.Target{},
		PublicURL: strings.TrimRight(c.Server.PublicURL, "/")}
	for n, f := range c.Forges {
		if f.forge != nil {
			rc.Forges[n] = f.forge
		}
	}
	for name, r := range c.Repos {
		if r.Report == "" {
			continue
		}
		t := reporter.Target{Forge: r.Report, Repository: c.repositoryOf(r), Branch: r.Branch, Context: r.ReportContext,
			Deployments: r.ReportDeployments, Environment: r.Environment, EnvURL: r.EnvironmentURL,
			RequireChecks: r.RequireChecks, ChecksTimeout: r.checksTimeout}
		if t.Context == "" {
			t.Context = "hookgate/" + name
			t.PerNode = len(r.Nodes) > 1
		}
		if t.Environment == "" {
			t.Environment = name
		}
		rc.Targets[name] = t
	}
	return rc
}

// ReportingRepos lists the targets that report, for the store's outbox.
func (c *Config) ReportingRepos() []string {
	var out []string
	for _, name := range c.RepoNames() {
		if c.Repos[name].Report != "" {
			out = append(out, name)
		}
	}
	return out
}
