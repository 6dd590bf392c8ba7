package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Providers: the forges whose webhooks a hook can take. Forgejo is Gitea's fork and speaks
// Gitea's dialect, so it is configured as "gitea".
const (
	ProviderGitHub = "github"
	ProviderGitea  = "gitea"
	ProviderGitLab = "gitlab"
)

// Providers lists the valid provider values, the default first.
func Providers() []string { return []string{ProviderGitHub, ProviderGitea, ProviderGitLab} }

// ValidProvider reports whether p names a supported forge ("" counts as the default).
func ValidProvider(p string) bool {
	return p == "" || p == ProviderGitHub || p == ProviderGitea || p == ProviderGitLab
}

// forge is one webhook dialect: where it puts the event and GUID, how it authenticates a
// delivery and what its push payload looks like. A hook is read with its configured forge
// only, never by guessing from the headers, so a request cannot pick the weakest scheme.
type forge struct {
	name         string
	eventHeaders []string // the first present one wins
	guidHeaders  []string
	// verify authenticates a delivery; contentType and body are the raw request's.
	verify func(h http.Header, contentType string, body, secret []byte) Signature
	// event turns the header's value into the name the history stores ("Push Hook" → "push").
	event     func(raw string) string
	parsePush func(payload []byte) (Push, error)
	// missing is the answer when the delivery carries no credential at all.
	missing string
}

var forges = map[string]*forge{
	ProviderGitHub: {
		name:         ProviderGitHub,
		eventHeaders: []string{"X-GitHub-Event"},
		guidHeaders:  []string{"X-GitHub-Delivery"},
		verify: func(h http.Header, _ string, body, secret []byte) Signature {
			return VerifySignature(h, body, secret)
		},
		event:     func(raw string) string { return raw },
		parsePush: ParsePush,
		missing:   "no X-Hub-Signature-256 or X-Hub-Signature header; set the webhook's secret",
	},
	ProviderGitea: {
		name: ProviderGitea,
		// Gitea also sends X-GitHub-Event; its own header comes first so a Gitea-only event
		// name is never mistaken for a GitHub one.
		eventHeaders: []string{"X-Gitea-Event", "X-Forgejo-Event"},
		guidHeaders:  []string{"X-Gitea-Delivery", "X-Forgejo-Delivery"},
		verify:       VerifyGiteaSignature,
		event:        func(raw string) string { return raw },
		parsePush:    ParseGiteaPush,
		missing:      "no X-Gitea-Signature or X-Forgejo-Signature header; set the webhook's secret",
	},
	ProviderGitLab: {
		name:         ProviderGitLab,
		eventHeaders: []string{"X-Gitlab-Event"},
		guidHeaders:  []string{"X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID"},
		verify: func(h http.Header, _ string, _, secret []byte) Signature {
			return VerifyGitLabToken(h, secret)
		},
		event:     GitLabEventName,
		parsePush: ParseGitLabPush,
		missing:   "no X-Gitlab-Token header; set the webhook's secret token",
	},
}

// forgeFor returns the dialect of provider; config validation guarantees it is known.
func forgeFor(provider string) *forge {
	if f, ok := forges[provider]; ok {
		return f
	}
	return forges[ProviderGitHub]
}

func firstHeader(h http.Header, names []string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// GitLabEventName turns GitLab's X-Gitlab-Event value into the snake_case name the other
// forges use, so the history's event filter works across forges: "Push Hook" → "push",
// "Tag Push Hook" → "tag_push", "Merge Request Hook" → "merge_request".
func GitLabEventName(raw string) string {
	s := strings.TrimSpace(raw)
	s = strings.TrimSuffix(s, " Hook")
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), " ", "_")
}

// giteaPush is a Gitea or Forgejo push payload: GitHub's shape, but the pusher has a login
// rather than a name and head_commit may be missing.
type giteaPush struct {
	Push
	Pusher struct {
		Login    string `json:"login"`
		Username string `json:"username"`
		Name     string `json:"name"`
	} `json:"pusher"`
	Commits []Commit `json:"commits"`
}

// ParseGiteaPush decodes a Gitea or Forgejo push payload into the gateway's Push.
func ParseGiteaPush(payload []byte) (Push, error) {
	var g giteaPush
	if err := json.Unmarshal(payload, &g); err != nil {
		return Push{}, fmt.Errorf("payload is not a JSON push event: %w", err)
	}
	p := g.Push
	p.Pusher.Name = firstNonEmpty(g.Pusher.Login, g.Pusher.Username, g.Pusher.Name)
	if p.HeadCommit == nil {
		p.HeadCommit = headCommit(g.Commits, p.After)
	}
	if err := checkPush(p); err != nil {
		return Push{}, err
	}
	return p, nil
}

// gitlabPush is a GitLab "Push Hook" (or "Tag Push Hook") payload.
type gitlabPush struct {
	Ref          string  `json:"ref"`
	Before       string  `json:"before"`
	After        string  `json:"after"`
	CheckoutSHA  *string `json:"checkout_sha"`
	UserUsername string  `json:"user_username"`
	UserName     string  `json:"user_name"`
	Project      struct {
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
	p.Repository.HTMLURL = g.Project.WebURL
	p.Pusher.Name = firstNonEmpty(g.UserUsername, g.UserName)
	p.HeadCommit = headCommit(g.Commits, p.After)
	// An annotated tag's "after" is the tag object; checkout_sha is the commit it tags.
	if strings.HasPrefix(p.Ref, "refs/tags/") && g.CheckoutSHA != nil && isHash(*g.CheckoutSHA) && *g.CheckoutSHA != p.After {
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

// SetDeliveryHeaders sets the headers provider's forge would send with payload (a JSON
// body): event, delivery GUID and signature or token. `hookgate send` and tests use it.
// event is the stored name ("push"); GitLab gets its own spelling ("Push Hook").
func SetDeliveryHeaders(h http.Header, provider, event, guid string, payload, secret []byte) {
	switch provider {
	case ProviderGitea:
		h.Set("X-Gitea-Event", event)
		h.Set("X-Gitea-Delivery", guid)
		h.Set("X-Gitea-Signature", SignGitea(payload, secret))
	case ProviderGitLab:
		words := strings.Split(event, "_")
		for i, w := range words {
			if w != "" {
				words[i] = strings.ToUpper(w[:1]) + w[1:]
			}
		}
		h.Set("X-Gitlab-Event", strings.Join(words, " ")+" Hook")
		h.Set("X-Gitlab-Event-UUID", guid)
		h.Set("X-Gitlab-Token", string(secret))
	default:
		h.Set("X-GitHub-Event", event)
		h.Set("X-GitHub-Delivery", guid)
		h.Set("X-Hub-Signature-256", Sign(payload, secret))
	}
}
