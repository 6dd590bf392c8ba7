// Package forgetest is the one mock the tests allow: the forges' APIs are not reachable
// from the machines the tests run on, so Forge implements the endpoints the reporter uses
// as GitHub, Gitea and GitLab document them, and fails the test on any other path,
// method, auth header or body.
package forgetest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Status is a commit status as the forge keeps it.
type Status struct {
	Context, State, Description, TargetURL string
}

// Deployment is a deployment as the forge keeps it.
type Deployment struct {
	ID                    int64
	Repo, SHA, Ref, Env   string
	Tag                   bool
	Statuses              []string // GitHub: each status posted; GitLab: each status set
	LogURL, EnvURL, Descr string
}

// Forge is one forge's API on a local server.
type Forge struct {
	t     *testing.T
	Type  string // github, gitea or gitlab
	Token string // the token every call must carry (a GitHub App: the last one issued)
	srv   *httptest.Server

	mu          sync.Mutex
	statuses    map[string][]Status   // repo@sha → posted, oldest first
	Deployments []*Deployment         // read after the calls, not during
	calls       []string              // "METHOD path"
	checkRuns   map[string][]CheckRun // repo@sha → GitHub check runs, one per name
	fail        int                   // answer 502 to this many calls still
	answer      func(w http.ResponseWriter, r *http.Request) bool

	// A GitHub App: set before the first call.
	AppID, Installation int64
	AppKey              *rsa.PublicKey
	TokenTTL            time.Duration
	Now                 func() time.Time
	issued              int
}

// Fail makes the forge answer 502 to the next n calls.
func (f *Forge) Fail(n int) { f.mu.Lock(); defer f.mu.Unlock(); f.fail = n }

// Answer sets a function that may answer a call itself (returning true) before the forge.
func (f *Forge) Answer(fn func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = fn
}

// Issued is how many GitHub App installation tokens the forge issued.
func (f *Forge) Issued() int { f.mu.Lock(); defer f.mu.Unlock(); return f.issued }

// SetStatus records a status as if another writer had posted it.
func (f *Forge) SetStatus(repo, sha string, s Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses[repo+"@"+sha] = append(f.statuses[repo+"@"+sha], s)
}

// CheckRun is a GitHub check run as CI left it.
type CheckRun struct {
	Name       string
	Status     string // queued, in_progress or completed
	Conclusion string // once completed: success, failure, neutral, cancelled, skipped, timed_out, action_required
}

// SetCheckRun records or replaces (by name) a GitHub check run of sha, as CI would.
func (f *Forge) SetCheckRun(repo, sha string, r CheckRun) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.checkRuns == nil {
		f.checkRuns = map[string][]CheckRun{}
	}
	runs := f.checkRuns[repo+"@"+sha]
	for i := range runs {
		if runs[i].Name == r.Name {
			runs[i] = r
			return
		}
	}
	f.checkRuns[repo+"@"+sha] = append(runs, r)
}

// New starts a forge of type typ that takes token, closed when t ends.
func New(t *testing.T, typ, token string) *Forge {
	f := &Forge{t: t, Type: typ, Token: token, statuses: map[string][]Status{}, Now: time.Now, TokenTTL: time.Hour}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// APIURL is the API root as the forge's docs give it.
func (f *Forge) APIURL() string {
	switch f.Type {
	case Gitea:
		return f.srv.URL + "/api/v1"
	case GitLab:
		return f.srv.URL + "/api/v4"
	}
	return f.srv.URL
}

// Called lists the calls so far, "METHOD path".
func (f *Forge) Called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Shown lists the statuses of sha, oldest first.
func (f *Forge) Shown(repo, sha string) []Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.statuses[repo+"@"+sha])
}

// Latest is the newest status of sha under context (zero: none).
func (f *Forge) Latest(repo, sha, context string) Status {
	for _, s := range slices.Backward(f.Shown(repo, sha)) {
		if s.Context == context {
			return s
		}
	}
	return Status{}
}

// Forge types, as reporter names them.
const (
	GitHub = "github"
	Gitea  = "gitea"
	GitLab = "gitlab"
)

var (
	commitStates = map[string][]string{
		GitHub: {"error", "failure", "pending", "success"},
		Gitea:  {"pending", "success", "error", "failure", "warning"},
		GitLab: {"pending", "running", "success", "failed", "canceled", "skipped"},
	}
	githubDeployStates = []string{"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
	gitlabDeployStates = []string{"running", "success", "failed", "canceled"}
)

func (f *Forge) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := r.URL.EscapedPath()
	f.calls = append(f.calls, r.Method+" "+path)
	if f.answer != nil && f.answer(w, r) {
		return
	}
	if f.fail > 0 {
		f.fail--
		http.Error(w, `{"message":"upstream broke"}`, http.StatusBadGateway)
		return
	}
	var body map[string]any
	if r.ContentLength != 0 && r.Method != http.MethodGet {
		if r.Header.Get("Content-Type") != "application/json" {
			f.t.Errorf("%s %s: Content-Type %q", r.Method, path, r.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			f.t.Errorf("%s %s: body: %v", r.Method, path, err)
		}
	}
	switch f.Type {
	case GitHub:
		f.github(w, r, path, body)
	case Gitea:
		f.gitea(w, r, path, body)
	case GitLab:
		f.gitlab(w, r, path, body)
	}
}

func (f *Forge) refuse(w http.ResponseWriter, code int, format string, args ...any) {
	f.t.Errorf(format, args...)
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"message":%q}`, fmt.Sprintf(format, args...))
}

// Reply writes v as JSON with code.
func Reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func str(body map[string]any, key string) string { s, _ := body[key].(string); return s }

var (
	ghStatusPath     = regexp.MustCompile(`^/repos/([^/]+/[^/]+)/statuses/([0-9a-f]{40})$`)
	ghCombinedPath   = regexp.MustCompile(`^/repos/([^/]+/[^/]+)/commits/([0-9a-f]{40})/status$`)
	ghCheckRunsPath  = regexp.MustCompile(`^/repos/([^/]+/[^/]+)/commits/([0-9a-f]{40})/check-runs$`)
	ghDeploysPath    = regexp.MustCompile(`^/repos/([^/]+/[^/]+)/deployments$`)
	ghDeployStatPath = regexp.MustCompile(`^/repos/([^/]+/[^/]+)/deployments/(\d+)/statuses$`)
	ghAppTokenPath   = regexp.MustCompile(`^/app/installations/(\d+)/access_tokens$`)
)

func (f *Forge) github(w http.ResponseWriter, r *http.Request, path string, body map[string]any) {
	if r.Header.Get("Accept") != "application/vnd.github+json" || r.Header.Get("X-GitHub-Api-Version") != "2022-11-28" {
		f.refuse(w, 400, "%s %s: Accept %q, X-GitHub-Api-Version %q", r.Method, path, r.Header.Get("Accept"), r.Header.Get("X-GitHub-Api-Version"))
		return
	}
	if m := ghAppTokenPath.FindStringSubmatch(path); m != nil && r.Method == http.MethodPost {
		f.appToken(w, r, m[1])
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.Token {
		f.refuse(w, 401, "%s %s: Authorization %q", r.Method, path, r.Header.Get("Authorization"))
		return
	}
	switch m := []([]string){ghStatusPath.FindStringSubmatch(path), ghCombinedPath.FindStringSubmatch(path),
		ghCheckRunsPath.FindStringSubmatch(path), ghDeploysPath.FindStringSubmatch(path), ghDeployStatPath.FindStringSubmatch(path)}; {
	case m[0] != nil && r.Method == http.MethodPost:
		f.postStatus(w, m[0][1], m[0][2], body, "context")
	case m[1] != nil && r.Method == http.MethodGet:
		f.combined(w, m[1][1], m[1][2], "state")
	case m[2] != nil && r.Method == http.MethodGet:
		// GET /repos/{owner}/{repo}/commits/{ref}/check-runs: the latest run of each name.
		runs := []map[string]any{}
		for i, cr := range f.checkRuns[m[2][1]+"@"+m[2][2]] {
			var conclusion any
			if cr.Status == "completed" {
				conclusion = cr.Conclusion
			}
			runs = append(runs, map[string]any{"id": i + 1, "name": cr.Name, "head_sha": m[2][2], "status": cr.Status, "conclusion": conclusion})
		}
		Reply(w, 200, map[string]any{"total_count": len(runs), "check_runs": runs})
	case m[3] != nil && r.Method == http.MethodGet:
		var out []map[string]any
		for _, d := range slices.Backward(f.Deployments) {
			if d.Repo == m[3][1] && d.SHA == r.URL.Query().Get("sha") && d.Env == r.URL.Query().Get("environment") {
				out = append(out, map[string]any{"id": d.ID, "sha": d.SHA, "environment": d.Env})
			}
		}
		Reply(w, 200, append([]map[string]any{}, out...))
	case m[3] != nil && r.Method == http.MethodPost:
		if am, ok := body["auto_merge"].(bool); !ok || am {
			f.refuse(w, 422, "create deployment: auto_merge must be sent false, got %v", body["auto_merge"])
			return
		}
		if rc, ok := body["required_contexts"].([]any); !ok || len(rc) != 0 {
			f.refuse(w, 409, "create deployment: required_contexts must be sent empty, got %v", body["required_contexts"])
			return
		}
		if str(body, "environment") == "" || !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(str(body, "ref")) {
			f.refuse(w, 422, "create deployment: environment %q, ref %q", str(body, "environment"), str(body, "ref"))
			return
		}
		d := &Deployment{ID: int64(len(f.Deployments) + 1), Repo: m[3][1], SHA: str(body, "ref"), Env: str(body, "environment")}
		f.Deployments = append(f.Deployments, d)
		Reply(w, 201, map[string]any{"id": d.ID, "sha": d.SHA})
	case m[4] != nil && r.Method == http.MethodPost:
		id, _ := strconv.ParseInt(m[4][2], 10, 64)
		if id < 1 || id > int64(len(f.Deployments)) || f.Deployments[id-1].Repo != m[4][1] {
			f.refuse(w, 404, "no deployment %d", id)
			return
		}
		if !slices.Contains(githubDeployStates, str(body, "state")) || len(str(body, "description")) > 140 {
			f.refuse(w, 422, "deployment status: state %q, description %q", str(body, "state"), str(body, "description"))
			return
		}
		d := f.Deployments[id-1]
		d.Statuses = append(d.Statuses, str(body, "state"))
		d.LogURL, d.EnvURL, d.Descr = str(body, "log_url"), str(body, "environment_url"), str(body, "description")
		Reply(w, 201, map[string]any{"id": len(d.Statuses), "state": str(body, "state")})
	default:
		f.refuse(w, 404, "GitHub has no %s %s", r.Method, path)
	}
}

// appToken checks the JWT as GitHub does (RS256 with the App's public key, iat in the
// past, exp within 10 minutes, iss the App's id) and issues an installation token.
func (f *Forge) appToken(w http.ResponseWriter, r *http.Request, installation string) {
	if installation != strconv.FormatInt(f.Installation, 10) {
		f.refuse(w, 404, "no installation %s", installation)
		return
	}
	jwt, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	parts := strings.Split(jwt, ".")
	if !ok || len(parts) != 3 {
		f.refuse(w, 401, "access_tokens: Authorization is not a Bearer JWT")
		return
	}
	enc := base64.RawURLEncoding
	var head struct{ Alg, Typ string }
	var claims struct {
		Iat, Exp int64
		Iss      string
	}
	hb, _ := enc.DecodeString(parts[0])
	cb, _ := enc.DecodeString(parts[1])
	sig, _ := enc.DecodeString(parts[2])
	json.Unmarshal(hb, &head)
	json.Unmarshal(cb, &claims)
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	now := f.Now().Unix()
	switch {
	case head.Alg != "RS256":
		f.refuse(w, 401, "JWT alg %q", head.Alg)
	case rsa.VerifyPKCS1v15(f.AppKey, crypto.SHA256, sum[:], sig) != nil:
		f.refuse(w, 401, "JWT signature does not verify")
	case claims.Iss != strconv.FormatInt(f.AppID, 10):
		f.refuse(w, 401, "JWT iss %q", claims.Iss)
	case claims.Iat > now-30 || claims.Exp <= now || claims.Exp-claims.Iat > 11*60:
		f.refuse(w, 401, "JWT iat %d exp %d at %d", claims.Iat, claims.Exp, now)
	default:
		f.issued++
		f.Token = fmt.Sprintf("ghs_installation%d", f.issued)
		Reply(w, 201, map[string]any{"token": f.Token, "expires_at": f.Now().Add(f.TokenTTL).UTC().Format(time.RFC3339)})
	}
}

// postStatus records a commit status; key is the body's name for the context.
func (f *Forge) postStatus(w http.ResponseWriter, repo, sha string, body map[string]any, key string) {
	s := Status{Context: str(body, key), State: str(body, "state"), Description: str(body, "description"), TargetURL: str(body, "target_url")}
	if !slices.Contains(commitStates[f.Type], s.State) || s.Context == "" || len([]rune(s.Description)) > 140 {
		f.refuse(w, 422, "status: state %q, %s %q, description %q", s.State, key, s.Context, s.Description)
		return
	}
	f.statuses[repo+"@"+sha] = append(f.statuses[repo+"@"+sha], s)
	Reply(w, 201, map[string]any{"id": len(f.statuses[repo+"@"+sha]), "state": s.State, key: s.Context})
}

// combined answers GitHub's and Gitea's combined status: each context's newest.
func (f *Forge) combined(w http.ResponseWriter, repo, sha, stateKey string) {
	seen := map[string]bool{}
	statuses := []map[string]any{}
	for _, s := range slices.Backward(f.statuses[repo+"@"+sha]) {
		if !seen[s.Context] {
			seen[s.Context] = true
			statuses = append(statuses, map[string]any{"context": s.Context, stateKey: s.State, "description": s.Description, "target_url": s.TargetURL})
		}
	}
	Reply(w, 200, map[string]any{"state": "pending", "sha": sha, "statuses": statuses})
}

var (
	giteaStatusPath   = regexp.MustCompile(`^/api/v1/repos/([^/]+/[^/]+)/statuses/([0-9a-f]{40})$`)
	giteaCombinedPath = regexp.MustCompile(`^/api/v1/repos/([^/]+/[^/]+)/commits/([0-9a-f]{40})/status$`)
)

func (f *Forge) gitea(w http.ResponseWriter, r *http.Request, path string, body map[string]any) {
	if r.Header.Get("Authorization") != "token "+f.Token {
		f.refuse(w, 401, "%s %s: Authorization %q", r.Method, path, r.Header.Get("Authorization"))
		return
	}
	if m := giteaStatusPath.FindStringSubmatch(path); m != nil && r.Method == http.MethodPost {
		f.postStatus(w, m[1], m[2], body, "context")
		return
	}
	if m := giteaCombinedPath.FindStringSubmatch(path); m != nil && r.Method == http.MethodGet {
		f.combined(w, m[1], m[2], "status") // Gitea's CommitStatus names its state "status"
		return
	}
	f.refuse(w, 404, "Gitea has no %s %s", r.Method, path)
}

var (
	glStatusPath   = regexp.MustCompile(`^/api/v4/projects/([^/]+)/statuses/([0-9a-f]{40})$`)
	glStatusesPath = regexp.MustCompile(`^/api/v4/projects/([^/]+)/repository/commits/([0-9a-f]{40})/statuses$`)
	glDeploysPath  = regexp.MustCompile(`^/api/v4/projects/([^/]+)/deployments$`)
	glDeployPath   = regexp.MustCompile(`^/api/v4/projects/([^/]+)/deployments/(\d+)$`)
)

func (f *Forge) gitlab(w http.ResponseWriter, r *http.Request, path string, body map[string]any) {
	if r.Header.Get("PRIVATE-TOKEN") != f.Token || r.Header.Get("Authorization") != "" {
		f.refuse(w, 401, "%s %s: PRIVATE-TOKEN %q", r.Method, path, r.Header.Get("PRIVATE-TOKEN"))
		return
	}
	m := []([]string){glStatusPath.FindStringSubmatch(path), glStatusesPath.FindStringSubmatch(path),
		glDeploysPath.FindStringSubmatch(path), glDeployPath.FindStringSubmatch(path)}
	for _, sub := range m {
		if sub != nil {
			// The project's path is one segment, its slashes escaped as GitLab requires;
			// the fake keeps its records under the path itself.
			sub[1], _ = url.PathUnescape(sub[1])
		}
	}
	switch {
	case m[0] != nil && r.Method == http.MethodPost:
		// GitLab's state machine refuses a status the pipeline already has.
		key := m[0][1] + "@" + m[0][2]
		for _, s := range slices.Backward(f.statuses[key]) {
			if s.Context == str(body, "name") {
				if s.State == str(body, "state") {
					Reply(w, 400, map[string]any{"message": fmt.Sprintf("Cannot transition status via :%s from :%s", s.State, s.State)})
					return
				}
				break
			}
		}
		f.postStatus(w, m[0][1], m[0][2], body, "name")
	case m[1] != nil && r.Method == http.MethodGet:
		list := []map[string]any{}
		for _, s := range slices.Backward(f.statuses[m[1][1]+"@"+m[1][2]]) {
			list = append(list, map[string]any{"name": s.Context, "status": s.State, "description": s.Description})
		}
		Reply(w, 200, list)
	case m[2] != nil && r.Method == http.MethodGet:
		list := []map[string]any{}
		for _, d := range slices.Backward(f.Deployments) {
			if d.Repo == m[2][1] && d.Env == r.URL.Query().Get("environment") {
				list = append(list, map[string]any{"id": d.ID, "sha": d.SHA, "status": d.Statuses[len(d.Statuses)-1]})
			}
		}
		Reply(w, 200, list)
	case m[2] != nil && r.Method == http.MethodPost:
		tag, ok := body["tag"].(bool)
		if !ok || str(body, "ref") == "" || str(body, "environment") == "" || !slices.Contains(gitlabDeployStates, str(body, "status")) {
			f.refuse(w, 400, "create deployment: %v", body)
			return
		}
		d := &Deployment{ID: int64(len(f.Deployments) + 1), Repo: m[2][1], SHA: str(body, "sha"), Ref: str(body, "ref"), Tag: tag,
			Env: str(body, "environment"), Statuses: []string{str(body, "status")}}
		f.Deployments = append(f.Deployments, d)
		Reply(w, 201, map[string]any{"id": d.ID})
	case m[3] != nil && r.Method == http.MethodPut:
		id, _ := strconv.ParseInt(m[3][2], 10, 64)
		if id < 1 || id > int64(len(f.Deployments)) || !slices.Contains(gitlabDeployStates, str(body, "status")) {
			f.refuse(w, 400, "update deployment %d: %v", id, body)
			return
		}
		d := f.Deployments[id-1]
		d.Statuses = append(d.Statuses, str(body, "status"))
		Reply(w, 200, map[string]any{"id": d.ID, "status": str(body, "status")})
	default:
		f.refuse(w, 404, "GitLab has no %s %s", r.Method, path)
	}
}
