// This file owns opening a checkout for reads and for an update.
package checkout

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-billy/v5"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Head returns the checkout's HEAD commit hash and the branch it is on ("" if detached).
// On a branch with no commit yet the hash is "". It only reads.
func Head(path string) (hash, branch string, err error) {
	repo, err := openCheckout(path)
	if err != nil {
		return "", "", err
	}
	ref, err := repo.Storer.Reference(plumbing.HEAD)
	if err != nil {
		return "", "", fmt.Errorf("read HEAD of %s: %w", path, err)
	}
	if ref.Type() == plumbing.HashReference {
		return ref.Hash().String(), "", nil
	}
	branch = strings.TrimPrefix(ref.Target().String(), "refs/heads/")
	target, err := repo.Storer.Reference(ref.Target())
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return "", branch, nil
	}
	if err != nil {
		return "", "", fmt.Errorf("read %s of %s: %w", ref.Target(), path, err)
	}
	return target.Hash().String(), branch, nil
}

// openCheckout opens the work tree repository at path for a few reads.
func openCheckout(path string) (*git.Repository, error) {
	repo, err := git.PlainOpenWithOptions(path, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("checkout %s is not a git work tree (no .git found)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open checkout %s: %w", path, err)
	}
	if _, err := repo.Worktree(); err != nil {
		return nil, fmt.Errorf("checkout %s is not a git work tree: %w", path, err)
	}
	return repo, nil
}

// newStorage is the object storage of the repository in dot with hookgate's memory
// bounds: a small object cache, big objects streamed from their packs, and fetched packs
// checked against limits before go-git builds their objects.
func newStorage(dot billy.Filesystem, keepDescriptors bool, limits ObjectLimits) *gatedStorage {
	return &gatedStorage{
		Storage: filesystem.NewStorageWithOptions(dot, cache.NewObjectLRU(objectCacheSize), filesystem.Options{
			KeepDescriptors:      keepDescriptors,
			LargeObjectThreshold: largeObjectThreshold,
		}),
		limits: limits.withDefaults(),
	}
}

// openCheckoutKeepingPacks opens the repository at path keeping pack files open:
// go-git otherwise reopens the pack and allocates its buffers again for every
// object it reads, which made an update slower than git pull. The returned func
// closes them.
func openCheckoutKeepingPacks(path string, limits ObjectLimits) (*git.Repository, func(), error) {
	plain, err := openCheckout(path)
	if err != nil {
		return nil, nil, err
	}
	wt, err := plain.Worktree()
	if err != nil {
		return nil, nil, fmt.Errorf("checkout %s is not a git work tree: %w", path, err)
	}
	st, ok := plain.Storer.(*filesystem.Storage)
	if !ok {
		return nil, nil, fmt.Errorf("checkout %s: unexpected repository storage %T", path, plain.Storer)
	}
	kept := newStorage(st.Filesystem(), true, limits)
	repo, err := git.Open(kept, wt.Filesystem)
	if err != nil {
		_ = kept.Close()
		return nil, nil, fmt.Errorf("open checkout %s: %w", path, err)
	}
	return repo, func() { _ = kept.Close() }, nil
}
