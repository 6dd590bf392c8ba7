// Package forge speaks the webhook dialects of GitHub, Gitea (and Forgejo) and GitLab:
// which headers carry the event and delivery GUID, how a delivery is signed and verified,
// and how a push payload is parsed. It imports nothing of the project.
package forge

import (
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

// Forge is one webhook dialect: where it puts the event and GUID, how it authenticates a
// delivery and what its push payload looks like. A hook is read with its configured forge
// only, never by guessing from the headers, so a request cannot pick the weakest scheme.
type Forge struct {
	Name         string
	EventHeaders []string // the first present one wins
	GUIDHeaders  []string
	// Verify authenticates a delivery; contentType and body are the raw request's.
	Verify func(h http.Header, contentType string, body, secret []byte) Signature
	// Event turns the header's value into the name the history stores ("Push Hook" → "push").
	Event     func(raw string) string
	ParsePush func(payload []byte) (Push, error)
	// Missing is the answer when the delivery carries no credential at all.
	Missing string
}

var forges = map[string]*Forge{
	ProviderGitHub: {
		Name:         ProviderGitHub,
		EventHeaders: []string{"X-GitHub-Event"},
		GUIDHeaders:  []string{"X-GitHub-Delivery"},
		Verify: func(h http.Header, _ string, body, secret []byte) Signature {
			return VerifySignature(h, body, secret)
		},
		Event:     func(raw string) string { return raw },
		ParsePush: ParsePush,
		Missing:   "no X-Hub-Signature-256 or X-Hub-Signature header; set the webhook's secret",
	},
	ProviderGitea: {
		Name: ProviderGitea,
		// Gitea also sends X-GitHub-Event; its own header comes first so a Gitea-only event
		// name is never mistaken for a GitHub one.
		EventHeaders: []string{"X-Gitea-Event", "X-Forgejo-Event"},
		GUIDHeaders:  []string{"X-Gitea-Delivery", "X-Forgejo-Delivery"},
		Verify:       VerifyGiteaSignature,
		Event:        func(raw string) string { return raw },
		ParsePush:    ParseGiteaPush,
		Missing:      "no X-Gitea-Signature or X-Forgejo-Signature header; set the webhook's secret",
	},
	ProviderGitLab: {
		Name:         ProviderGitLab,
		EventHeaders: []string{"X-Gitlab-Event"},
		GUIDHeaders:  []string{"X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID"},
		Verify: func(h http.Header, _ string, _, secret []byte) Signature {
			return VerifyGitLabToken(h, secret)
		},
		Event:     GitLabEventName,
		ParsePush: ParseGitLabPush,
		Missing:   "no X-Gitlab-Token header; set the webhook's secret token",
	},
}

// For returns the dialect of provider; config validation guarantees it is known.
func For(provider string) *Forge {
	if f, ok := forges[provider]; ok {
		return f
	}
	return forges[ProviderGitHub]
}

// FirstHeader returns the value of the first of names present in h, "" when none is.
func FirstHeader(h http.Header, names []string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
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
