// remoteref.go owns looking up any ref of origin (a branch or a tag, an annotated tag
// peeled), for `hookgate send --ref`. It sits beside RemoteHead rather than inside it so
// RemoteHead, which the workers' reconcile reads, stays as it is.

package checkout

import (
	"context"
	"fmt"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
)

// RemoteRef returns what origin's ref (refs/heads/… or refs/tags/…) names: hash, and
// commit, the commit it points to (the same as hash but for an annotated tag, whose hash
// is the tag object's).
func RemoteRef(ctx context.Context, s Spec, ref string) (hash, commit string, err error) {
	in, err := Inspect(s)
	if err != nil {
		return "", "", err
	}
	url := in.OriginURL
	if url == "" {
		url = s.URL
	}
	if url == "" {
		return "", "", fmt.Errorf("repository %s: no origin url", s.Name)
	}
	auth, err := authFor(ctx, url, s)
	if err != nil {
		return "", "", redact(err, s.Token)
	}
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	var refs []*plumbing.Reference
	err = withWatchdog(ctx, s.Path+"#ls-remote", func() error {
		var err error
		refs, err = rem.ListContext(ctx, &git.ListOptions{Auth: auth, PeelingOption: git.AppendPeeled})
		return err
	})
	if err != nil {
		return "", "", redact(fmt.Errorf("list origin refs: %w", err), s.Token)
	}
	for _, r := range refs {
		switch r.Name().String() {
		case ref:
			hash = r.Hash().String()
		case ref + "^{}":
			commit = r.Hash().String()
		}
	}
	if hash == "" {
		return "", "", fmt.Errorf("origin has no ref %s", ref)
	}
	if commit == "" {
		commit = hash
	}
	return hash, commit, nil
}
