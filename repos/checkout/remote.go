// This file owns asking origin without touching the checkout: its branch head (OriginHead,
// RemoteHead).
package checkout

import (
	"context"
	"errors"
	"fmt"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"path/filepath"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
)

// OriginHead asks origin for the branch head: one ref listing (git ls-remote), not a
// fetch, over the checkout's origin URL (Spec.URL when there is no checkout yet) with the
// configured credentials. Like a fetch it is bounded by ctx even where go-git is not (SSH
// dialing); a look-up given up on goes on in the background, and the next look-up of the
// same checkout waits for it, so hung look-ups do not pile up. It never touches the
// checkout's repository beyond reading its origin URL, so it may run beside a deploy.
func OriginHead(ctx context.Context, s Spec) (string, error) {
	h, err := originHead(ctx, s)
	if err != nil {
		return "", s.named(err)
	}
	return h, nil
}

func originHead(ctx context.Context, s Spec) (string, error) {
	if s.Branch == "" || plumbing.NewBranchReferenceName(s.Branch).Validate() != nil {
		return "", fmt.Errorf("invalid branch name %q", s.Branch)
	}
	path, err := filepath.Abs(s.Path)
	if err != nil {
		return "", fmt.Errorf("checkout path %s: %w", s.Path, err)
	}
	url := s.URL
	if repo, err := openCheckout(path); err == nil {
		if remote, err := repo.Remote("origin"); err == nil && len(remote.Config().URLs) > 0 {
			url = remote.Config().URLs[0]
		}
	}
	if url == "" {
		return "", fmt.Errorf("checkout %s has no origin url and no url is set", path)
	}
	auth, err := authFor(ctx, url, s)
	if err != nil {
		return "", err
	}
	// Its own key in the watchdog's table: a hung look-up must not hold up deploys.
	key := path + "\x00ls-remote"
	if err := waitForAbandoned(ctx, key); err != nil {
		return "", err
	}
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	var refs []*plumbing.Reference
	err = withWatchdog(ctx, key, func() error {
		var err error
		refs, err = remote.ListContext(ctx, &git.ListOptions{Auth: auth})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("list origin's refs: %w", err)
	}
	want := plumbing.NewBranchReferenceName(s.Branch)
	for _, r := range refs {
		if r.Name() == want && r.Type() == plumbing.HashReference {
			return r.Hash().String(), nil
		}
	}
	return "", &branchNotFoundError{s.Branch}
}

// ErrBranchNotFound means origin answered but has no such branch.
var ErrBranchNotFound = errors.New("branch not found on origin")

type branchNotFoundError struct{ branch string }

func (e *branchNotFoundError) Error() string {
	return fmt.Sprintf("branch %q not found on origin", e.branch)
}
func (e *branchNotFoundError) Is(target error) bool { return target == ErrBranchNotFound }

// OriginProblem says in a word or two why a look-up of origin (OriginHead) failed:
// "not found" (origin says there is no such repository, or the path holds none),
// "refused" (credentials missing or not accepted), "branch not found", or "unreachable"
// (no answer, a refused connection, a timeout, anything else).
func OriginProblem(err error) string {
	switch {
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return "not found"
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return "refused"
	case errors.Is(err, ErrBranchNotFound):
		return "branch not found"
	}
	return "unreachable"
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
