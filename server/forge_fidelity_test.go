package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// recorded returns the stored delivery a hook answer names.
func (g *gateway) recorded(out map[string]any) store.Delivery {
	g.t.Helper()
	d, err := g.store.Delivery(context.Background(), id(out["delivery_id"]))
	if err != nil {
		g.t.Fatalf("delivery of %v: %v", out, err)
	}
	return d
}

// annotatedTag tags origin's head with an annotated tag and returns the tag object's hash
// and the commit it points to.
func annotatedTag(t *testing.T, o *testkit.Origin, name string) (tagObject, commit string) {
	t.Helper()
	testkit.Git(t, o.Seed, "tag", "-a", name, "-m", "release "+name)
	testkit.Git(t, o.Seed, "push", "-q", "origin", "refs/tags/"+name)
	return testkit.Git(t, o.Bare, "rev-parse", "refs/tags/"+name), testkit.Git(t, o.Bare, "rev-parse", "refs/tags/"+name+"^{commit}")
}

// TestAnnotatedTagPushRecordsTheCommit: a push of an annotated tag names the tag object as
// "after"; the history records the commit the tag points to when the payload names it
// (GitHub's head_commit, GitLab's checkout_sha), and nothing is deployed.
func TestAnnotatedTagPushRecordsTheCommit(t *testing.T) {
	t.Run("github", func(t *testing.T) {
		g := newGateway(t)
		tag, commit := annotatedTag(t, g.origin, "v1.0")
		if tag == commit {
			t.Fatal("git made a lightweight tag")
		}
		var p map[string]any
		if err := json.Unmarshal(testkit.Push(t, "refs/tags/v1.0", strings.Repeat("0", 40), tag, "binkkatal/sample_app"), &p); err != nil {
			t.Fatal(err)
		}
		p["head_commit"].(map[string]any)["id"] = commit
		body, _ := json.Marshal(p)
		resp, out := g.send(delivery{event: "push", guid: "tag-1", body: body})
		d := g.recorded(out)
		if resp.StatusCode != http.StatusOK || out["status"] != "ignored" || out["deploy_id"] != nil ||
			d.After != commit || d.Commit != commit[:7] || d.Ref != "refs/tags/v1.0" {
			t.Fatalf("annotated tag push: %d %v; recorded ref %s after %s, want %s", resp.StatusCode, out, d.Ref, d.After, commit)
		}
	})
	t.Run("gitlab", func(t *testing.T) {
		g, _ := forgeGateway(t, forge.ProviderGitLab, "jsmith/example")
		tag, commit := annotatedTag(t, g.origin, "v1.0.0")
		body := forgePayload(t, "gitlab/tag.json", "refs/tags/v1.0.0", strings.Repeat("0", 40), tag,
			map[string]any{"checkout_sha": commit})
		h := http.Header{}
		forge.SetDeliveryHeaders(h, forge.ProviderGitLab, "tag_push", "gl-tag-1", body, []byte(secret))
		resp, out := g.forgeSend("/hooks/site", "application/json", body, h)
		d := g.recorded(out)
		if resp.StatusCode != http.StatusOK || out["status"] != "ignored" || d.After != commit || d.Event != "tag_push" {
			t.Fatalf("gitlab annotated tag push: %d %v; recorded after %s, want %s", resp.StatusCode, out, d.After, commit)
		}
	})
}

// TestCreateAndDeleteRecordTheRef: create and delete events carry the ref and its kind
// (and, from Gitea, the commit); the history records them instead of an empty ref.
func TestCreateAndDeleteRecordTheRef(t *testing.T) {
	g, _ := forgeGateway(t, forge.ProviderGitea, giteaFullName)
	head := g.origin.Head()
	for _, c := range []struct {
		event, file string
		extra       map[string]any
		ref, after  string
	}{
		{"create", "github/create.json", map[string]any{"ref": "v0.0.1", "ref_type": "tag", "sha": head}, "refs/tags/v0.0.1", head},
		{"create", "github/create.json", map[string]any{"ref": "feature/x", "ref_type": "branch", "sha": head}, "refs/heads/feature/x", head},
		{"delete", "github/delete.json", map[string]any{"ref": "simple-tag", "ref_type": "tag"}, "refs/tags/simple-tag", ""},
		{"delete", "github/delete.json", map[string]any{"ref": "refs/heads/old", "ref_type": "branch"}, "refs/heads/old", ""},
	} {
		var p map[string]any
		if err := json.Unmarshal(testkit.Payload(t, c.file), &p); err != nil {
			t.Fatal(err)
		}
		for k, v := range c.extra {
			p[k] = v
		}
		body, _ := json.Marshal(p)
		resp, out := g.forgeSend("/hooks/site", "application/json", body, giteaHeaders(c.event, "ref-"+c.ref, body))
		d := g.recorded(out)
		if resp.StatusCode != http.StatusOK || out["status"] != "ignored" || d.Ref != c.ref || d.After != c.after ||
			!strings.Contains(d.Reason, c.event+" of ") {
			t.Errorf("%s %v: %d %v; recorded ref %q after %q reason %q", c.event, c.extra, resp.StatusCode, out, d.Ref, d.After, d.Reason)
		}
	}
	// GitHub's own create event (the payload as recorded) gets its ref too.
	gh := newGateway(t)
	resp, out := gh.send(delivery{event: "create", guid: "gh-create", body: testkit.Payload(t, "github/create.json")})
	if d := gh.recorded(out); resp.StatusCode != http.StatusOK || d.Ref != "refs/tags/0.0.1" {
		t.Fatalf("github create: %d, ref %q", resp.StatusCode, d.Ref)
	}
}
