package repos

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Inspection is what `hookgate check` reports about a checkout. It only reads.
type Inspection struct {
	Missing   bool   // Path does not exist (a deploy clones it when URL is set)
	Head      string // HEAD commit
	OnBranch  string // the branch HEAD is on, "" if detached
	HasBranch bool   // refs/heads/<Branch> or refs/remotes/origin/<Branch> exists
	OriginURL string
}

// Inspect reads the checkout at s.Path without changing it.
func Inspect(s Spec) (Inspection, error) {
	if _, err := os.Stat(s.Path); errors.Is(err, os.ErrNotExist) {
		return Inspection{Missing: true, OriginURL: s.URL}, nil
	}
	repo, err := openCheckout(s.Path)
	if err != nil {
		return Inspection{}, err
	}
	var in Inspection
	if in.Head, in.OnBranch, err = Head(s.Path); err != nil {
		return Inspection{}, err
	}
	for _, name := range []plumbing.ReferenceName{
		plumbing.NewBranchReferenceName(s.Branch),
		plumbing.NewRemoteReferenceName("origin", s.Branch),
	} {
		if _, err := repo.Reference(name, true); err == nil {
			in.HasBranch = true
			break
		}
	}
	if rc, err := repo.Remote("origin"); err == nil && len(rc.Config().URLs) > 0 {
		in.OriginURL = rc.Config().URLs[0]
	}
	return in, nil
}

// RemoteHead asks origin which commit its Branch is at, like `git ls-remote`, without
// touching the checkout.
func RemoteHead(ctx context.Context, s Spec) (string, error) {
	in, err := Inspect(s)
	if err != nil {
		return "", err
	}
	url := in.OriginURL
	if url == "" {
		url = s.URL
	}
	if url == "" {
		return "", fmt.Errorf("repository %s: no origin url", s.Name)
	}
	auth, err := authFor(ctx, url, s)
	if err != nil {
		return "", redact(err, s.Token)
	}
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	var refs []*plumbing.Reference
	err = withWatchdog(ctx, s.Path+"#ls-remote", func() error {
		var err error
		refs, err = rem.ListContext(ctx, &git.ListOptions{Auth: auth})
		return err
	})
	if err != nil {
		return "", redact(fmt.Errorf("list origin refs: %w", err), s.Token)
	}
	want := plumbing.NewBranchReferenceName(s.Branch)
	for _, r := range refs {
		if r.Name() == want {
			return r.Hash().String(), nil
		}
	}
	return "", fmt.Errorf("origin has no branch %s", s.Branch)
}
