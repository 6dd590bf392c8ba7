package repos

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/memory"
)

// ErrUnknownCommit means a commit asked for is not in the branch's history as fetched.
var ErrUnknownCommit = errors.New("commit not in the branch's history")

// MinCommitPrefix is the shortest commit prefix a rollback or pin accepts.
const MinCommitPrefix = 7

// ResolveCommit finds the commit of the checkout at path that want (a full hash or a
// prefix of at least MinCommitPrefix hex digits) names, among the history of origin's
// branch as last fetched (refs/remotes/origin/BRANCH, else the local branch). It only
// reads, so it may run beside a deploy.
func ResolveCommit(path, branch, want string) (string, error) {
	repo, err := openCheckout(path)
	if err != nil {
		return "", err
	}
	tip, err := repo.Storer.Reference(plumbing.NewRemoteReferenceName("origin", branch))
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		tip, err = repo.Storer.Reference(plumbing.NewBranchReferenceName(branch))
	}
	if err != nil {
		return "", fmt.Errorf("read origin/%s of %s: %w", branch, path, err)
	}
	h, err := resolveInHistory(repo, tip.Hash(), want)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// resolveInHistory returns the one commit reachable from tip whose hash starts with want.
func resolveInHistory(repo *git.Repository, tip plumbing.Hash, want string) (plumbing.Hash, error) {
	want = strings.ToLower(want)
	if len(want) < MinCommitPrefix || len(want) > 64 || strings.Trim(want, "0123456789abcdef") != "" {
		return plumbing.ZeroHash, fmt.Errorf("%q is not a commit hash or a prefix of at least %d hex digits: %w",
			want, MinCommitPrefix, ErrUnknownCommit)
	}
	head, err := repo.CommitObject(tip)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read branch head %s: %w", shortHash(tip), err)
	}
	var found []plumbing.Hash
	iter := object.NewCommitPreorderIter(head, nil, nil)
	err = iter.ForEach(func(c *object.Commit) error {
		if strings.HasPrefix(c.Hash.String(), want) {
			found = append(found, c.Hash)
			if len(want) == len(c.Hash.String()) || len(found) > 1 {
				return storer.ErrStop
			}
		}
		return nil
	})
	// A shallow history ends at a parent that is not there: what was walked counts.
	if err != nil && !errors.Is(err, plumbing.ErrObjectNotFound) {
		return plumbing.ZeroHash, fmt.Errorf("walk the history of %s: %w", shortHash(tip), err)
	}
	switch len(found) {
	case 0:
		if shallow, _ := repo.Storer.Shallow(); len(shallow) > 0 {
			return plumbing.ZeroHash, fmt.Errorf("%s is not in the history of the branch at %s as fetched: the checkout is shallow (depth), "+
				"so commits older than its first fetch are not there; remove or raise depth to roll back further: %w",
				want, shortHash(tip), ErrUnknownCommit)
		}
		return plumbing.ZeroHash, fmt.Errorf("%s is not in the history of the branch at %s: %w", want, shortHash(tip), ErrUnknownCommit)
	case 1:
		return found[0], nil
	}
	return plumbing.ZeroHash, fmt.Errorf("%s names more than one commit; give more digits: %w", want, ErrUnknownCommit)
}

// inTip reports whether c is in the history of m.tip, so moving from c to an ancestor of
// the tip loses no local commit.
func (m *mover) inTip(c *object.Commit) (bool, error) {
	tip, err := m.repo.CommitObject(m.tip)
	if err != nil {
		return false, fmt.Errorf("read origin/%s commit %s: %w", m.branch, shortHash(m.tip), err)
	}
	ok, err := shallowIsAncestor(m.repo, c, tip)
	if err != nil {
		return false, fmt.Errorf("check that %s is in the history of origin/%s: %w", shortHash(c.Hash), m.branch, err)
	}
	return ok, nil
}

// OriginHead asks origin for the branch head: one ref listing (git ls-remote), not a
// fetch, over the checkout's origin URL (Spec.URL when there is no checkout yet) with the
// configured credentials. Like a fetch it is bounded by ctx even where go-git is not (SSH
// dialing); a look-up given up on goes on in the background, and the next look-up of the
// same checkout waits for it, so hung look-ups do not pile up. It never touches the
// checkout's repository beyond reading its origin URL, so it may run beside a deploy.
func OriginHead(ctx context.Context, s Spec) (string, error) {
	h, err := originHead(ctx, s)
	if err != nil {
		if s.Name != "" {
			err = fmt.Errorf("repository %s: %w", s.Name, err)
		}
		return "", redact(err, s.Token)
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
	return "", fmt.Errorf("branch %q not found on origin", s.Branch)
}
