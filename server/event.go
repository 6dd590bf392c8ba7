package server

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/store"
)

// Decision is what the gateway does with a delivery whose signature is valid.
type Decision struct {
	Status     string // store.DeliveryAccepted or store.DeliveryIgnored
	HTTPStatus int
	Reason     string
}

// DecidePush says whether a valid push to hook deploys. Only a push to the configured
// branch of the configured repository does.
func DecidePush(h Hook, p forge.Push) Decision {
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
