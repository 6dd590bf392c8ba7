package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/hookgate/hookgate/store"
)

// Push is the part of a push payload the gateway uses, in GitHub's shape; the other
// forges' payloads are decoded into it (see forge.go).
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
}

// Commit is a pushed commit as a payload names it.
type Commit struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// errUnsupportedMediaType marks a body in neither of GitHub's content types.
var errUnsupportedMediaType = errors.New("unsupported content type")

// ExtractPayload returns the JSON payload of a delivery body: the body itself for
// application/json, the "payload" field for application/x-www-form-urlencoded.
func ExtractPayload(contentType string, body []byte) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("%w: %q; use application/json or application/x-www-form-urlencoded", errUnsupportedMediaType, contentType)
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
		return nil, fmt.Errorf("%w: %q; use application/json or application/x-www-form-urlencoded", errUnsupportedMediaType, mt)
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
	if !isHash(p.After) {
		return errors.New(`push payload "after" is not a commit hash`)
	}
	if p.Before != "" && !isHash(p.Before) {
		return errors.New(`push payload "before" is not a commit hash`)
	}
	return nil
}

func isHash(s string) bool {
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

// Decision is what the gateway does with a delivery whose signature is valid.
type Decision struct {
	Status     string // store.DeliveryAccepted or store.DeliveryIgnored
	HTTPStatus int
	Reason     string
}

// DecidePush says whether a valid push to hook deploys. Only a push to the configured
// branch of the configured repository does.
func DecidePush(h Hook, p Push) Decision {
	ignore := func(format string, args ...any) Decision {
		return Decision{Status: store.DeliveryIgnored, HTTPStatus: http.StatusOK, Reason: fmt.Sprintf(format, args...)}
	}
	if h.Repository != "" && !strings.EqualFold(p.Repository.FullName, h.Repository) {
		return ignore("repository %q does not match the configured %q", p.Repository.FullName, h.Repository)
	}
	want := "refs/heads/" + h.Branch
	// A deleted branch's "after" is all zeros: 40 of them, or 64 in a SHA-256 repository.
	if p.Deleted || strings.Trim(p.After, "0") == "" {
		return ignore("%s was deleted; nothing to deploy", p.Ref)
	}
	if strings.HasPrefix(p.Ref, "refs/tags/") {
		return ignore("tag push %s; this hook deploys %s", p.Ref, want)
	}
	if p.Ref != want {
		return ignore("push to %s; this hook deploys %s", p.Ref, want)
	}
	return Decision{Status: store.DeliveryAccepted, HTTPStatus: http.StatusAccepted, Reason: "queued for deploy"}
}
