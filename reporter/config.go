package reporter

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Forge types.
const (
	GitHub = "github"
	Gitea  = "gitea" // also Forgejo
	GitLab = "gitlab"
)

// DefaultGitHubAPI is api_url of a github forge that names none.
const DefaultGitHubAPI = "https://api.github.com"

// Forge is one [forges.NAME]: its API and its credentials. The credentials are unexported
// and the Forge prints without them, so nothing that logs or formats one shows a token.
type Forge struct {
	Name   string
	Type   string
	APIURL string // the API root without a trailing slash

	token string // a personal, fine-grained or project token
	app   *App   // a GitHub App instead of a token
}

// App is a GitHub App installation: a JWT signed with key buys installation tokens.
type App struct {
	ID             int64
	InstallationID int64
	key            *rsa.PrivateKey
}

// NewForge describes a forge authenticated with token, or with app (GitHub only) when
// app is not nil.
func NewForge(name, typ, apiURL, token string, app *App) *Forge {
	return &Forge{Name: name, Type: typ, APIURL: strings.TrimRight(apiURL, "/"), token: token, app: app}
}

// NewApp describes a GitHub App installation.
func NewApp(id, installationID int64, key *rsa.PrivateKey) *App {
	return &App{ID: id, InstallationID: installationID, key: key}
}

// String names the forge without its credentials.
func (f *Forge) String() string { return fmt.Sprintf("%s (%s, %s)", f.Name, f.Type, f.APIURL) }

// GoString keeps %#v from printing the credentials.
func (f *Forge) GoString() string { return f.String() }

// GoString keeps %#v from printing the key.
func (a *App) GoString() string {
	return fmt.Sprintf("App{ID: %d, InstallationID: %d}", a.ID, a.InstallationID)
}

// ParsePrivateKey reads a GitHub App's private key: PEM, PKCS#1 (what GitHub hands out)
// or PKCS#8, and RSA (RS256 is the only algorithm GitHub accepts for App JWTs).
func ParsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not a PEM file")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not an RSA private key (%s)", block.Type)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an RSA private key: GitHub Apps sign with RS256", k)
	}
	return rk, nil
}

// Target is one [repos.NAME] target's reporting.
type Target struct {
	Forge       string // the [forges.NAME] it reports through
	Repository  string // owner/name (GitHub, Gitea) or the project's id or path (GitLab)
	Branch      string // the target's branch: the ref of a GitLab deployment when the deploy has none
	Context     string // the status context (GitHub, Gitea) or name (GitLab)
	PerNode     bool   // Context is default and the target deploys on several nodes: add @node
	Deployments bool   // report_deployments
	Environment string
	EnvURL      string // environment_url
	// RequireChecks are the checks (status contexts or check-run names; "*" every one but
	// hookgate's own) a push or reconcile deploy waits to see green; ChecksTimeout bounds
	// the wait.
	RequireChecks []string
	ChecksTimeout time.Duration
}

// ContextFor is the status context a deploy on node reports under: two nodes of a fleet
// posting one context would overwrite each other's statuses.
func (t Target) ContextFor(node string) string {
	if t.PerNode && node != "" {
		return t.Context + "@" + node
	}
	return t.Context
}

// Config is all the reporting a gateway does.
type Config struct {
	Forges    map[string]*Forge
	Targets   map[string]Target // by target name; only targets with report set
	PublicURL string            // [server] public_url, without a trailing slash ("": no links)
}
