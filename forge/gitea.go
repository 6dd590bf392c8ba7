// gitea.go: Gitea's and Forgejo's push payload.

package forge

import (
	"encoding/json"
	"fmt"
)

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
