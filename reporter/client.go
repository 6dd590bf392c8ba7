// Package reporter tells a forge what hookgate did with a commit: commit statuses on
// GitHub, Gitea/Forgejo and GitLab, and deployments with their statuses on GitHub and
// GitLab, through each forge's documented REST API (net/http and encoding/json; a GitHub
// App's JWT is signed RS256 with crypto/rsa). The Sender delivers the store's outbox of
// reports in the background, so a forge that is slow or down never holds up a deploy.
package reporter

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookgate/hookgate/internal/scrub"
)

// Call is one request to a forge, as a report's attempt records it: never a host's
// credentials or a token.
type Call struct {
	Endpoint   string // method and path, e.g. POST /repos/o/r/statuses/SHA
	HTTPStatus int    // 0 when no answer came
}

// Error is a call the forge refused or did not answer.
type Error struct {
	Call
	Retry bool   // worth trying again later: no answer, 5xx, 429 or 408
	Msg   string // the forge's message or the transport's error, without tokens
}

func (e *Error) Error() string {
	if e.HTTPStatus == 0 {
		return fmt.Sprintf("%s: %s", e.Endpoint, e.Msg)
	}
	return fmt.Sprintf("%s: %d %s", e.Endpoint, e.HTTPStatus, e.Msg)
}

// Client calls one forge's API.
type Client struct {
	f   *Forge
	hc  *http.Client
	now func() time.Time

	mu       sync.Mutex // guards the App's installation token and the deployments seen
	appToken string
	appUntil time.Time        // the token's expires_at
	deploys  map[string]int64 // repo, commit, environment → the deployment's id
}

// NewClient returns a client of f. hc nil: a client with a 30 s timeout that follows no
// redirect (a redirect could carry the token to a host not configured).
func NewClient(f *Forge, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Client{f: f, hc: hc, now: time.Now, deploys: map[string]int64{}}
}

// Forge is the forge the client calls.
func (c *Client) Forge() *Forge { return c.f }

var hexSHA = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// repoPath is the API path of repository repo: /repos/OWNER/NAME on GitHub and Gitea,
// /projects/ID on GitLab (a path such as group/project is one escaped segment).
func (c *Client) repoPath(repo string) string {
	if c.f.Type == GitLab {
		return "/projects/" + url.PathEscape(repo)
	}
	owner, name, _ := strings.Cut(repo, "/")
	return "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name)
}

// renewBefore is how long before its expires_at an App's installation token is replaced.
const renewBefore = 5 * time.Minute

// credential is the value of the forge's auth header.
func (c *Client) credential(ctx context.Context) (string, error) {
	if c.f.app == nil {
		return c.f.token, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.appToken != "" && c.now().Before(c.appUntil.Add(-renewBefore)) {
		return c.appToken, nil
	}
	jwt, err := c.f.app.jwt(c.now())
	if err != nil {
		return "", err
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	path := fmt.Sprintf("/app/installations/%d/access_tokens", c.f.app.InstallationID)
	if _, err := c.send(ctx, http.MethodPost, path, "Bearer "+jwt, nil, &out); err != nil {
		return "", err
	}
	if out.Token == "" {
		return "", &Error{Call: Call{Endpoint: "POST " + path}, Msg: "the answer holds no token"}
	}
	c.appToken, c.appUntil = out.Token, out.ExpiresAt
	return c.appToken, nil
}

// jwt is the App's JSON Web Token as GitHub documents it: RS256, issued 60 s in the past
// against clock drift, expiring within 10 minutes, issuer the App's id.
func (a *App) jwt(now time.Time) (string, error) {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{
		"iat": now.Add(-60 * time.Second).Unix(),
		"exp": now.Add(9 * time.Minute).Unix(),
		"iss": strconv.FormatInt(a.ID, 10),
	})
	signing := head + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign the GitHub App's JWT: %w", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// do calls the API with the forge's credential.
func (c *Client) do(ctx context.Context, method, path string, body, out any) (Call, error) {
	cred, err := c.credential(ctx)
	if err != nil {
		return Call{Endpoint: method + " " + path}, err
	}
	switch c.f.Type {
	case GitHub:
		cred = "Bearer " + cred
	case Gitea:
		cred = "token " + cred
	}
	return c.send(ctx, method, path, cred, body, out)
}

// send makes one request. auth is the Authorization header's value (GitLab: the
// PRIVATE-TOKEN header's). Errors never hold it: a forge's message is scrubbed of it.
func (c *Client) send(ctx context.Context, method, path, auth string, body, out any) (Call, error) {
	endpoint := path
	if i := strings.IndexByte(endpoint, '?'); i >= 0 {
		endpoint = endpoint[:i]
	}
	call := Call{Endpoint: method + " " + endpoint}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return call, fmt.Errorf("%s: %w", call.Endpoint, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.f.APIURL+path, rd)
	if err != nil {
		return call, &Error{Call: call, Msg: "bad request: " + scrub.Text(err.Error())}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "hookgate")
	switch c.f.Type {
	case GitHub:
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
		req.Header.Set("Authorization", auth)
	case Gitea:
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", auth)
	case GitLab:
		req.Header.Set("Accept", "application/json")
		req.Header.Set("PRIVATE-TOKEN", auth)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		msg := err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			msg = ue.Err.Error() // without the URL, which the endpoint already names
		}
		return call, &Error{Call: call, Retry: true, Msg: c.scrub(msg, auth)}
	}
	defer resp.Body.Close()
	call.HTTPStatus = resp.StatusCode
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Message any `json:"message"`
		}
		msg := http.StatusText(resp.StatusCode)
		if json.Unmarshal(raw, &e) == nil && e.Message != nil {
			if s, ok := e.Message.(string); ok {
				msg = s
			} else if b, err := json.Marshal(e.Message); err == nil {
				msg = string(b) // GitLab answers some refusals with an object or a list
			}
		}
		if len(msg) > 300 {
			msg = msg[:300]
		}
		code := resp.StatusCode
		return call, &Error{Call: call, Retry: code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout,
			Msg: c.scrub(msg, auth)}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return call, &Error{Call: call, Retry: true, Msg: "the answer is not the JSON expected: " + err.Error()}
		}
	}
	return call, nil
}

// scrub removes the credentials from text a forge or the transport wrote.
func (c *Client) scrub(s, auth string) string {
	secrets := []string{auth, c.f.token, c.appToken}
	if _, v, ok := strings.Cut(auth, " "); ok {
		secrets = append(secrets, v)
	}
	return scrub.Text(s, secrets...)
}

// CommitStatus is one commit status to post.
type CommitStatus struct {
	State       string // the forge's word (see States)
	Context     string // GitHub/Gitea context, GitLab name
	Description string
	TargetURL   string
}

// Check is one status or check run a forge shows for a commit.
type Check struct {
	Name        string // the status context (GitLab: name) or the check run's name
	State       string // as the forge says it; Green and Red normalise
	Description string
	CheckRun    bool // a GitHub check run, not a commit status
}

// Statuses lists the newest commit status of each context on ref: GitHub's and Gitea's
// combined status, GitLab's statuses of the commit.
func (c *Client) Statuses(ctx context.Context, repo, ref string) ([]Check, Call, error) {
	if c.f.Type == GitLab {
		var list []struct {
			Name        string `json:"name"`
			Status      string `json:"status"`
			Description string `json:"description"`
		}
		call, err := c.do(ctx, http.MethodGet, c.repoPath(repo)+"/repository/commits/"+url.PathEscape(ref)+"/statuses?per_page=100", nil, &list)
		if err != nil {
			return nil, call, err
		}
		// GitLab lists the newest first within a name; keep each name's first.
		seen := map[string]bool{}
		var out []Check
		for _, s := range list {
			if !seen[s.Name] {
				seen[s.Name] = true
				out = append(out, Check{Name: s.Name, State: s.Status, Description: s.Description})
			}
		}
		return out, call, nil
	}
	var combined struct {
		Statuses []struct {
			Context     string `json:"context"`
			State       string `json:"state"`
			Status      string `json:"status"` // Gitea's name for the state
			Description string `json:"description"`
		} `json:"statuses"`
	}
	call, err := c.do(ctx, http.MethodGet, c.repoPath(repo)+"/commits/"+url.PathEscape(ref)+"/status?per_page=100", nil, &combined)
	if err != nil {
		return nil, call, err
	}
	var out []Check
	for _, s := range combined.Statuses {
		st := s.State
		if st == "" {
			st = s.Status
		}
		out = append(out, Check{Name: s.Context, State: st, Description: s.Description})
	}
	return out, call, nil
}

// Checks lists what require_checks waits on: the commit statuses of ref and, on GitHub,
// its check runs (a check run's state is its conclusion once completed, else its status).
func (c *Client) Checks(ctx context.Context, repo, ref string) ([]Check, error) {
	out, _, err := c.Statuses(ctx, repo, ref)
	if err != nil || c.f.Type != GitHub {
		return out, err
	}
	var runs struct {
		CheckRuns []struct {
			Name       string `json:"name"`
			Status     string `json:"status"`
			Conclusion string `json:"conclusion"`
		} `json:"check_runs"`
	}
	if _, err := c.do(ctx, http.MethodGet, c.repoPath(repo)+"/commits/"+url.PathEscape(ref)+"/check-runs?per_page=100", nil, &runs); err != nil {
		return nil, err
	}
	for _, r := range runs.CheckRuns {
		st := r.Status
		if r.Status == "completed" {
			st = r.Conclusion
		}
		out = append(out, Check{Name: r.Name, State: st, CheckRun: true})
	}
	return out, nil
}

// Posted is how a post ended when it did not fail.
type Posted int

const (
	PostedNew      Posted = iota // the forge took it
	PostedSame                   // the forge already showed it: nothing posted
	PostedAccepted               // refused in a way that counts as sent (GitHub's status limit, GitLab's "Cannot transition")
)

// PostStatus sets the commit status st of sha, unless the forge already shows the same
// state and description for the context. It returns the calls made.
func (c *Client) PostStatus(ctx context.Context, repo, sha string, st CommitStatus) (Posted, []Call, error) {
	if !hexSHA.MatchString(sha) {
		return 0, nil, &Error{Msg: fmt.Sprintf("%q is not a commit id", sha)}
	}
	st.Description = clip(st.Description)
	shown, call, err := c.Statuses(ctx, repo, sha)
	calls := []Call{call}
	if err != nil {
		return 0, calls, err
	}
	for _, s := range shown {
		if s.Name == st.Context && s.State == st.State && s.Description == st.Description {
			return PostedSame, calls, nil
		}
	}
	var body map[string]any
	if c.f.Type == GitLab {
		body = map[string]any{"state": st.State, "name": st.Context, "description": st.Description}
	} else {
		body = map[string]any{"state": st.State, "context": st.Context, "description": st.Description}
	}
	if st.TargetURL != "" {
		body["target_url"] = st.TargetURL
	}
	call, err = c.do(ctx, http.MethodPost, c.repoPath(repo)+"/statuses/"+sha, body, nil)
	calls = append(calls, call)
	if err != nil {
		if countsAsSent(c.f.Type, err) {
			return PostedAccepted, calls, nil
		}
		return 0, calls, err
	}
	return PostedNew, calls, nil
}

// countsAsSent tells the refusals that mean the forge shows what was posted, or will
// never take more: GitHub's limit of 1,000 statuses per commit and context (422), and
// GitLab's 400 for a status it already has ("Cannot transition status via :run from
// :running").
func countsAsSent(typ string, err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch typ {
	case GitHub:
		return e.HTTPStatus == http.StatusUnprocessableEntity && strings.Contains(strings.ToLower(e.Msg), "maximum number of statuses")
	case GitLab:
		return e.HTTPStatus == http.StatusBadRequest && strings.Contains(e.Msg, "Cannot transition status")
	}
	return false
}

// Deployment is a deployment status to report.
type Deployment struct {
	SHA         string
	Ref         string // the deploy's ref (refs/heads/main, refs/tags/v1); GitLab needs it
	Environment string
	State       string // the forge's word (see States)
	Description string
	LogURL      string // the deploy's page
	EnvURL      string // environment_url
	// OnlyExisting sets the status of the deployment of (SHA, Environment) only if there is
	// one (a commit a deploy moved away from, whose deployment may never have been created):
	// none is PostedSame with no calls, so the report records the commit status's call.
	OnlyExisting bool
}

// PostDeployment reports d: the deployment of (sha, environment) is created once and
// reused, then its status set.
func (c *Client) PostDeployment(ctx context.Context, repo string, d Deployment) (Posted, []Call, error) {
	if !hexSHA.MatchString(d.SHA) {
		return 0, nil, &Error{Msg: fmt.Sprintf("%q is not a commit id", d.SHA)}
	}
	d.Description = clip(d.Description)
	if c.f.Type == GitLab {
		return c.gitlabDeployment(ctx, repo, d)
	}
	key := repo + "\x00" + d.SHA + "\x00" + d.Environment
	var calls []Call
	c.mu.Lock()
	id, ok := c.deploys[key]
	c.mu.Unlock()
	if !ok {
		var found []struct {
			ID int64 `json:"id"`
		}
		q := url.Values{"sha": {d.SHA}, "environment": {d.Environment}}
		call, err := c.do(ctx, http.MethodGet, c.repoPath(repo)+"/deployments?"+q.Encode(), nil, &found)
		calls = append(calls, call)
		if err != nil {
			return 0, calls, err
		}
		if len(found) > 0 {
			id = found[0].ID
		} else if d.OnlyExisting {
			return PostedSame, nil, nil
		} else {
			var made struct {
				ID int64 `json:"id"`
			}
			// auto_merge false: GitHub would otherwise merge the default branch into the
			// ref; required_contexts empty: it would otherwise wait for every context,
			// hookgate's own pending one included.
			call, err := c.do(ctx, http.MethodPost, c.repoPath(repo)+"/deployments", map[string]any{
				"ref": d.SHA, "environment": d.Environment, "auto_merge": false,
				"required_contexts": []string{}, "description": d.Description,
			}, &made)
			calls = append(calls, call)
			if err != nil {
				return 0, calls, err
			}
			id = made.ID
		}
		c.mu.Lock()
		c.deploys[key] = id
		c.mu.Unlock()
	}
	body := map[string]any{"state": d.State, "description": d.Description}
	if d.LogURL != "" {
		body["log_url"] = d.LogURL
	}
	if d.EnvURL != "" {
		body["environment_url"] = d.EnvURL
	}
	call, err := c.do(ctx, http.MethodPost, fmt.Sprintf("%s/deployments/%d/statuses", c.repoPath(repo), id), body, nil)
	calls = append(calls, call)
	if err != nil {
		return 0, calls, err
	}
	return PostedNew, calls, nil
}

// gitlabDeployment creates GitLab's deployment of (sha, environment) or updates its
// status. GitLab has no filter by commit, so the environment's newest are searched.
func (c *Client) gitlabDeployment(ctx context.Context, repo string, d Deployment) (Posted, []Call, error) {
	var calls []Call
	var found []struct {
		ID     int64  `json:"id"`
		SHA    string `json:"sha"`
		Status string `json:"status"`
	}
	q := url.Values{"environment": {d.Environment}, "order_by": {"id"}, "sort": {"desc"}, "per_page": {"50"}}
	call, err := c.do(ctx, http.MethodGet, c.repoPath(repo)+"/deployments?"+q.Encode(), nil, &found)
	calls = append(calls, call)
	if err != nil {
		return 0, calls, err
	}
	for _, f := range found {
		if f.SHA != d.SHA {
			continue
		}
		if f.Status == d.State {
			return PostedSame, calls, nil
		}
		call, err := c.do(ctx, http.MethodPut, fmt.Sprintf("%s/deployments/%d", c.repoPath(repo), f.ID), map[string]any{"status": d.State}, nil)
		calls = append(calls, call)
		if err != nil {
			if countsAsSent(GitLab, err) {
				return PostedAccepted, calls, nil
			}
			return 0, calls, err
		}
		return PostedNew, calls, nil
	}
	if d.OnlyExisting {
		return PostedSame, nil, nil
	}
	ref, tag := strings.TrimPrefix(d.Ref, "refs/heads/"), false
	if t, ok := strings.CutPrefix(d.Ref, "refs/tags/"); ok {
		ref, tag = t, true
	}
	call, err = c.do(ctx, http.MethodPost, c.repoPath(repo)+"/deployments", map[string]any{
		"environment": d.Environment, "sha": d.SHA, "ref": ref, "tag": tag, "status": d.State,
	}, nil)
	calls = append(calls, call)
	if err != nil {
		return 0, calls, err
	}
	return PostedNew, calls, nil
}
