// push.go: the push payload in GitHub's shape (Push, Commit), taking the JSON payload out
// of a delivery body, and parsing and checking a GitHub push.

package forge

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
)

// Push is the part of a push payload the gateway uses, in GitHub's shape; the other
// forges' payloads are decoded into it (see gitea.go, gitlab.go).
type Push struct {
	Ref        string `json:"ref"`
	Before     string `json:"before"`
	After      string `json:"after"`
	Deleted    bool   `json:"deleted"`
	Repository struct {
		FullName string `json:"full_name"`
		HTMLURL  string `json:"html_url"`
	} `json:"repository"`
	Pusher struct {
		Name string `json:"name"`
	} `json:"pusher"`
	HeadCommit *Commit `json:"head_commit"`
	// ProjectID is GitLab's project.id (0 for the other forges): where a GitLab target's
	// reports go, and what a numeric repository key matches.
	ProjectID int64 `json:"-"`
}

// Commit is a pushed commit as a payload names it.
type Commit struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// ErrUnsupportedMediaType marks a body in neither of GitHub's content types.
var ErrUnsupportedMediaType = errors.New("unsupported content type")

// ExtractPayload returns the JSON payload of a delivery body: the body itself for
// application/json, the "payload" field for application/x-www-form-urlencoded.
func ExtractPayload(contentType string, body []byte) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("%w: %q; use application/json or application/x-www-form-urlencoded", ErrUnsupportedMediaType, contentType)
	}
	switch mt {
	case "application/json":
		return body, nil
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("form body does not parse: %w", err)
		}
		vals, ok := form["payload"]
		if !ok {
			return nil, errors.New(`form body has no "payload" field`)
		}
		if len(vals) != 1 {
			return nil, errors.New(`form body has more than one "payload" field`)
		}
		return []byte(vals[0]), nil
	default:
		return nil, fmt.Errorf("%w: %q; use application/json or application/x-www-form-urlencoded", ErrUnsupportedMediaType, mt)
	}
}

// ParsePush decodes a push payload and checks the fields a deploy relies on.
func ParsePush(payload []byte) (Push, error) {
	p, ok := scanPush(payload)
	if !ok {
		p = Push{}
		if err := json.Unmarshal(payload, &p); err != nil {
			return Push{}, fmt.Errorf("payload is not a JSON push event: %w", err)
		}
	}
	if err := checkPush(p); err != nil {
		return Push{}, err
	}
	return p, nil
}

// checkPush checks the fields a deploy relies on, whichever forge sent them.
func checkPush(p Push) error {
	if p.Ref == "" {
		return errors.New(`push payload has no "ref"`)
	}
	if !IsHash(p.After) {
		return errors.New(`push payload "after" is not a commit hash`)
	}
	if p.Before != "" && !IsHash(p.Before) {
		return errors.New(`push payload "before" is not a commit hash`)
	}
	return nil
}

// IsHash reports whether s is a full commit hash in lower-case hex: SHA-1 or SHA-256.
func IsHash(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
