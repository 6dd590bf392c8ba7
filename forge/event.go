// event.go: what the gateway reads of the events other than push: the ref a create or
// delete event names, and whether a payload is a JSON object at all.

package forge

import (
	"bytes"
	"encoding/json"
)

// refEvent is the part of a create or delete event (GitHub, Gitea, Forgejo) the history
// records: the ref, its kind, and (Gitea) the commit.
type refEvent struct {
	Ref     string `json:"ref"`
	RefType string `json:"ref_type"`
	SHA     string `json:"sha"`
}

// ParseRefEvent returns the ref a create or delete event names, its type ("branch",
// "tag") and, from Gitea, its commit, all as sent; ref is "" when the payload names none.
func ParseRefEvent(payload []byte) (ref, refType, sha string) {
	var e refEvent
	if json.Unmarshal(payload, &e) != nil || e.Ref == "" {
		return "", "", ""
	}
	return e.Ref, e.RefType, e.SHA
}

// JSONObject reports whether b is a JSON object (surrounding white space aside).
func JSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) >= 2 && b[0] == '{' && json.Valid(b)
}
