// send.go owns `hookgate send`: a signed test delivery, built from the checkout's origin,
// sent to a running gateway.

package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hookgate/hookgate/config"
	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/scrub"
	"github.com/hookgate/hookgate/repos"
	"github.com/hookgate/hookgate/repos/checkout"
)

// cmdSend signs and sends a delivery the way GitHub would, built from the checkout's
// origin, so a setup can be tested end to end without GitHub.
func cmdSend(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.toml", "path to the configuration file")
	event := fs.String("event", "push", "event to send: push or ping")
	target := fs.String("url", "", "hook URL (default: http://LISTEN/hooks/NAME from the config)")
	ref := fs.String("ref", "", "push this ref of origin (refs/heads/BRANCH or refs/tags/TAG) instead of the target's branch (a tag target's: origin's newest matching tag)")
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	if name == "" {
		fmt.Fprintln(stderr, "usage: hookgate send NAME [--event push|ping] [--ref REF] [--url URL] [--config config.toml]")
		return 2
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate send: %v\n", err)
		return 1
	}
	if *ref != "" && !strings.HasPrefix(*ref, "refs/heads/") && !strings.HasPrefix(*ref, "refs/tags/") {
		fmt.Fprintf(stderr, "hookgate send: --ref %q: give refs/heads/BRANCH or refs/tags/TAG\n", *ref)
		return 2
	}
	h, ok := sendHook(cfg, name, *ref)
	if !ok {
		fmt.Fprintf(stderr, "hookgate send: no hook %q in %s (a [hooks.NAME], or a [repos.NAME] with its own secret)\n", name, *configPath)
		return 1
	}
	var repo repos.Repo
	for _, r := range cfg.RepoList() {
		if r.Name == h.target {
			repo = r
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if *ref == "" && *event == "push" && repo.Tags != "" {
		// A tag target takes tag pushes only: a push of the branch would be ignored.
		// Without --ref, push the tag a reconcile or "Deploy now" would deploy.
		tag, err := repos.NewestTag(ctx, repo)
		if errors.Is(err, repos.ErrNoMatchingTag) {
			fmt.Fprintf(stderr, "hookgate send: %s deploys tags matching %q and origin has none: push one, or give --ref refs/tags/TAG\n",
				h.target, repo.Tags)
			return 1
		}
		if err != nil {
			fmt.Fprintf(stderr, "hookgate send: %s deploys tags matching %q: find origin's newest: %v\n", h.target, repo.Tags, scrub.Error(err, repo.Token))
			return 1
		}
		*ref = "refs/tags/" + tag.Name
		fmt.Fprintf(stdout, "%s deploys tags matching %q: sending a push of origin's newest, %s (--ref refs/tags/TAG sends another)\n",
			h.target, repo.Tags, *ref)
	}
	body, err := buildPayload(ctx, *event, repo, h.repository, h.provider, *ref)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate send: %v\n", scrub.Error(err, repo.Token))
		return 1
	}
	url := *target
	if url == "" {
		url = "http://" + dialable(cfg.Server.Listen) + "/hooks/" + name
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(stderr, "hookgate send: %v\n", scrub.Error(err))
		return 1
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hookgate-send/1")
	ev := *event
	if ev == "push" && h.provider == forge.ProviderGitLab && strings.HasPrefix(*ref, "refs/tags/") {
		ev = "tag_push" // GitLab sends a tag's push as its own event
	}
	forge.SetDeliveryHeaders(req.Header, h.provider, ev, newGUID(), body, h.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate send: %v\n", scrub.Error(err))
		return 1
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Fprintf(stdout, "%s %s\n%s\n", req.Method, scrub.URL(url), resp.Status)
	stdout.Write(bytes.TrimSpace(answer))
	fmt.Fprintln(stdout)
	if resp.StatusCode/100 != 2 {
		return 1
	}
	return 0
}

// sendTo is the hook send signs for, and the target whose checkout's origin the push is
// built from.
type sendTo struct {
	target, repository, provider string
	secret                       []byte
}

// sendHook finds hook name: a [repos.NAME] with its own secret (its own target), or a
// [hooks.NAME], whose push is built from its first target that deploys ref's kind (a tag
// target for refs/tags/…, else a branch target), or its first target.
func sendHook(cfg *config.Config, name, ref string) (sendTo, bool) {
	if rc, ok := cfg.Repos[name]; ok && rc.Hook == "" {
		return sendTo{name, rc.Repository, rc.Provider, rc.ResolvedSecret()}, true
	}
	hc, ok := cfg.HookTables[name]
	if !ok {
		return sendTo{}, false
	}
	to := sendTo{repository: hc.Repository, provider: hc.Provider, secret: hc.ResolvedSecret()}
	for _, n := range cfg.RepoNames() {
		rc := cfg.Repos[n]
		if rc.Hook != name {
			continue
		}
		if to.target == "" {
			to.target = n
		}
		if (rc.Tags != "") == strings.HasPrefix(ref, "refs/tags/") {
			to.target = n
			break
		}
	}
	return to, to.target != ""
}

func buildPayload(ctx context.Context, event string, r repos.Repo, fullName, provider, ref string) ([]byte, error) {
	if fullName == "" {
		fullName = "local/" + r.Name
	}
	if event == "ping" && provider != "" && provider != forge.ProviderGitHub {
		return nil, fmt.Errorf("--event ping: only GitHub sends ping; use push for a %s hook", provider)
	}
	repository := map[string]any{"full_name": fullName, "name": r.Name, "html_url": ""}
	switch event {
	case "ping":
		return json.Marshal(map[string]any{
			"zen": "Sent by hookgate send.", "hook_id": 0, "repository": repository,
		})
	case "push":
		if ref == "" {
			ref = "refs/heads/" + r.Branch
		}
		var after, commit string
		var err error
		if ref == "refs/heads/"+r.Branch {
			after, err = checkout.RemoteHead(ctx, r.Spec)
			commit = after
		} else {
			after, commit, err = checkout.RemoteRef(ctx, r.Spec, ref)
		}
		if err != nil {
			return nil, err
		}
		before := strings.Repeat("0", 40)
		if in, err := checkout.Inspect(r.Spec); err == nil && in.Head != "" {
			before = in.Head
		}
		msg := "hookgate send: deploy origin/" + r.Branch
		if tag, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
			msg = "hookgate send: deploy tag " + tag
		} else if ref != "refs/heads/"+r.Branch {
			msg = "hookgate send: deploy origin/" + strings.TrimPrefix(ref, "refs/heads/")
		}
		if provider == forge.ProviderGitLab {
			kind := "push"
			if strings.HasPrefix(ref, "refs/tags/") {
				kind = "tag_push"
			}
			return json.Marshal(map[string]any{
				"object_kind": kind, "ref": ref, "before": before, "after": after,
				"checkout_sha": commit, "user_username": "hookgate-send", "user_name": "hookgate send",
				"project": map[string]any{"path_with_namespace": fullName, "web_url": ""},
				"commits": []any{map[string]any{"id": commit, "message": msg}},
			})
		}
		return json.Marshal(map[string]any{
			"ref":        ref,
			"before":     before,
			"after":      after,
			"created":    false,
			"deleted":    false,
			"forced":     false,
			"repository": repository,
			"pusher":     map[string]any{"name": "hookgate send", "login": "hookgate-send"},
			"head_commit": map[string]any{
				"id":      commit,
				"message": msg,
			},
		})
	default:
		return nil, fmt.Errorf("--event %q: use push or ping", event)
	}
}

// dialable turns a listen address into one a client can dial ("0.0.0.0:8080" → "127.0.0.1:8080").
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// newGUID makes a random version 4 UUID, the shape of GitHub's X-GitHub-Delivery.
func newGUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
