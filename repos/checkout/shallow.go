// This file owns shallow checkouts: deepening to HEAD, completing and pruning history.
package checkout

import (
	"errors"
	"fmt"
	"io/fs"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// maxShallowDeepen is the most commits a fast-forward of a shallow checkout fetches
// below origin's tip while looking for HEAD; a variable so tests can make it small.
var maxShallowDeepen = 1024

// Shallow reports whether the checkout at path is shallow (cloned with depth), so that an
// operation needing history it may lack can refuse with a clear message instead of
// failing on a missing object.
func Shallow(path string) (bool, error) {
	repo, err := openCheckout(path)
	if err != nil {
		return false, err
	}
	list, err := repo.Storer.Shallow()
	if err != nil {
		return false, fmt.Errorf("read the shallow list of %s: %w", path, err)
	}
	return len(list) > 0, nil
}

// deepenToHead makes sure a shallow checkout holds enough of origin's history to tell
// whether moving HEAD to target is a fast-forward: it fetches deeper (four times as deep
// each time) while the walk from target back to HEAD meets a commit whose parents were
// never fetched. A fetch brings every new commit down to HEAD, so that happens when
// origin's history was rewritten below the shallow tip. It refuses, naming depth, when
// HEAD is not within maxShallowDeepen commits.
func deepenToHead(repo *git.Repository, s Spec, depth int, target plumbing.Hash, fetch func(depth int) error) error {
	head, err := repo.Storer.Reference(plumbing.HEAD)
	if err != nil || head.Type() != plumbing.SymbolicReference || head.Target() != plumbing.NewBranchReferenceName(s.Branch) {
		return nil // the fast-forward refuses a detached or other HEAD itself, with its own message
	}
	branch, err := repo.Storer.Reference(head.Target())
	if err != nil || branch.Hash() == target {
		return nil
	}
	for depth = max(depth, 1); ; {
		headCommit, err := repo.CommitObject(branch.Hash())
		if err != nil {
			return fmt.Errorf("read HEAD commit %s: %w", shortHash(branch.Hash()), err)
		}
		targetCommit, err := repo.CommitObject(target)
		if err != nil {
			return fmt.Errorf("read origin/%s commit %s: %w", s.Branch, shortHash(target), err)
		}
		_, err = headCommit.IsAncestor(targetCommit)
		if !errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil // known either way: the fast-forward goes ahead or refuses as usual
		}
		if depth >= maxShallowDeepen {
			return fmt.Errorf("the checkout is shallow (depth = %d) and HEAD %s is not among the last %d commits of origin/%s, "+
				"so hookgate cannot tell a fast-forward from rewritten history; set mode = \"reset\" to move to origin regardless, "+
				"or remove depth and delete the checkout so that it is cloned whole",
				s.Depth, shortHash(branch.Hash()), depth, s.Branch)
		}
		depth = min(depth*4, maxShallowDeepen)
		if err := fetch(depth); err != nil {
			return err
		}
	}
}

// treeComplete says whether the commit, its tree and everything under it are in the
// repository (submodules aside). It descends only where the tree differs from HEAD's,
// which the checkout holds whole since it was checked out from it.
func treeComplete(repo *git.Repository, commit plumbing.Hash) (bool, error) {
	c, err := repo.CommitObject(commit)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var base plumbing.Hash
	if head, err := repo.Head(); err == nil {
		if hc, err := repo.CommitObject(head.Hash()); err == nil {
			base = hc.TreeHash
		}
	}
	var walk func(h, base plumbing.Hash) (bool, error)
	walk = func(h, base plumbing.Hash) (bool, error) {
		if h == base {
			return true, nil
		}
		t, err := repo.TreeObject(h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		had := map[string]plumbing.Hash{}
		if !base.IsZero() {
			if bt, err := repo.TreeObject(base); err == nil {
				for _, e := range bt.Entries {
					had[e.Name] = e.Hash
				}
			}
		}
		for _, e := range t.Entries {
			switch {
			case e.Mode == filemode.Submodule || had[e.Name] == e.Hash:
			case e.Mode == filemode.Dir:
				if ok, err := walk(e.Hash, had[e.Name]); !ok || err != nil {
					return ok, err
				}
			default:
				if repo.Storer.HasEncodedObject(e.Hash) != nil {
					return false, nil
				}
			}
		}
		return true, nil
	}
	return walk(c.TreeHash, base)
}

// pruneShallow drops from the shallow list the commits whose parents are all present by
// now: go-git adds the new boundary after a deeper fetch but never removes the old one,
// and git would then show a history cut short where it is not.
func pruneShallow(repo *git.Repository) error {
	list, err := repo.Storer.Shallow()
	if err != nil || len(list) == 0 {
		return err
	}
	keep := make([]plumbing.Hash, 0, len(list))
	for _, h := range list {
		c, err := repo.CommitObject(h)
		if err != nil {
			keep = append(keep, h)
			continue
		}
		for _, p := range c.ParentHashes {
			if repo.Storer.HasEncodedObject(p) != nil {
				keep = append(keep, h)
				break
			}
		}
	}
	if len(keep) == len(list) {
		return nil
	}
	if len(keep) > 0 {
		return repo.Storer.SetShallow(keep)
	}
	st, ok := fsStorage(repo.Storer)
	if !ok {
		return repo.Storer.SetShallow(nil)
	}
	if err := st.Filesystem().Remove("shallow"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the shallow list: %w", err)
	}
	return nil
}

// shallowIsAncestor is c.IsAncestor(of), where a walk that reaches the boundary of a
// shallow checkout (a parent that was never fetched) means "not found among the commits
// there are", as git's own walks in a shallow clone do. deepenToHead has already fetched
// what a fast-forward needs; a rollback's move back to a commit at the boundary walks
// off it.
func shallowIsAncestor(repo *git.Repository, c, of *object.Commit) (bool, error) {
	ok, err := c.IsAncestor(of)
	if err != nil && errors.Is(err, plumbing.ErrObjectNotFound) {
		if shallow, serr := repo.Storer.Shallow(); serr == nil && len(shallow) > 0 {
			return false, nil
		}
	}
	return ok, err
}
