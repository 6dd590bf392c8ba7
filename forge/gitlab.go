// gitlab.go: GitLab's event names and push payload, and the helpers the non-GitHub
// parsers share.

package forge

import (
	"encoding/json"
	"fmt"
	"strings"
)

// GitLabEventName turns GitLab's X-Gitlab-Event value into the snake_case name the other
// forges use, so the history's event filter works across forges: "Push Hook" → "push",
// "Tag Push Hook" → "tag_push", "Merge Request Hook" → "merge_request".
func GitLabEventName(raw string) string {
	s := strings.TrimSpace(raw)
	s = strings.TrimSuffix(s, " Hook")
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), " ", "_")
}

// gitlabPush is a GitLab "Push Hook" (or "Tag Push Hook") payload.
type gitlabPush struct {
	Ref          string  `json:"ref"`
	Before       string  `json:"before"`
	After        string  `json:"after"`
	CheckoutSHA  *string `json:"checkout_sha"`
	UserUsername string  `json:"user_username"`
	UserName     string  `json:"user_name"`
	ProjectID    int64   `json:"project_id"`
	Project      struct {
		ID                int64  `json:"id"`
		PathWithNamespace string `json:"path_with_namespace"`
		WebURL            string `json:"web_url"`
	} `json:"project"`
	Commits []Commit `json:"commits"`
}

// ParseGitLabPush decodes a GitLab push payload into the gateway's Push: the project's
// path_with_namespace is the repository's full name, user_username the pusher.
func ParseGitLabPush(payload []byte) (Push, error) {
	var g gitlabPush
	if err := json.Unmarshal(payload, &g); err != nil {
		return Push{}, fmt.Errorf("payload is not a JSON push event: %w", err)
	}
	var p Push
	p.Ref, p.Before, p.After = g.Ref, g.Before, g.After
	// checkout_sha is null when the branch was deleted, and "after" then all zeros: only
	// fall back to it when "after" is missing altogether.
	if p.After == "" && g.CheckoutSHA != nil {
		p.After = *g.CheckoutSHA
	}
	p.Repository.FullName = g.Project.PathWithNamespace
	p.ProjectID = g.Project.ID
	if p.ProjectID == 0 {
		p.ProjectID = g.ProjectID // older payloads name it only at the top
	}
	p.Repository.HTMLURL = g.Project.WebURL
	p.Pusher.Name = firstNonEmpty(g.UserUsername, g.UserName)
	p.HeadCommit = headCommit(g.Commits, p.After)
	// An annotated tag's "after" is the tag object; checkout_sha is the commit it tags.
	if strings.HasPrefix(p.Ref, "refs/tags/") && g.CheckoutSHA != nil && IsHash(*g.CheckoutSHA) && *g.CheckoutSHA != p.After {
		p.HeadCommit = &Commit{ID: *g.CheckoutSHA}
		for _, c := range g.Commits {
			if c.ID == *g.CheckoutSHA {
				p.HeadCommit = &c
			}
		}
	}
	if err := checkPush(p); err != nil {
		return Push{}, err
	}
	return p, nil
}

// headCommit picks the pushed commit from a payload's commit list: the one that is "after",
// else the last one.
func headCommit(commits []Commit, after string) *Commit {
	if len(commits) == 0 {
		return nil
	}
	c := commits[len(commits)-1]
	for _, cand := range commits {
		if cand.ID == after {
			c = cand
		}
	}
	return &c
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
