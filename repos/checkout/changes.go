// This file owns what a tag points to (peelToCommit) and which files changed between two
// commits (unchangedSince), for tag targets and paths.
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

// maxTagChain bounds a chain of tags of tags: git itself peels without a bound, but a
// chain is one object per link and nobody tags a tag more than once or twice.
const maxTagChain = 16

// peelToCommit follows h, the object a tag ref names, through annotated tags (and tags of
// tags) to the commit at the end. A tag of a tree or a blob is refused: there is no
// commit to deploy.
func peelToCommit(repo *git.Repository, h plumbing.Hash) (plumbing.Hash, error) {
	for range maxTagChain {
		obj, err := repo.Storer.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read %s: %w", shortHash(h), err)
		}
		switch obj.Type() {
		case plumbing.CommitObject:
			return h, nil
		case plumbing.TagObject:
			tag, err := object.DecodeTag(repo.Storer, obj)
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("read tag object %s: %w", shortHash(h), err)
			}
			h = tag.Target
		default:
			return plumbing.ZeroHash, fmt.Errorf("points to a %s (%s), not a commit: nothing to deploy", obj.Type(), shortHash(h))
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("more than %d tags of tags: refusing to follow further", maxTagChain)
}

// maxChangedEntries bounds the tree entries unchangedSince reads before it gives up and
// lets the deploy go ahead: a diff that big changes something worth deploying anyway, and
// it costs no more than the update would.
const maxChangedEntries = 1_000_000

// unchangedSince reports whether match answers false for every path that differs between
// live's tree and tip's: true means nothing the target watches changed. It walks only the
// subtrees whose hashes differ, so its cost follows the change, not the repository. A live
// commit that is not there or not in tip's history (a force-push) answers false: deploy.
func unchangedSince(repo *git.Repository, live, tip plumbing.Hash, match func(string) bool) (bool, error) {
	if live == tip {
		return false, nil // a deploy of what is live: a re-run, not a skip
	}
	liveCommit, err := repo.CommitObject(live)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read live commit %s: %w", shortHash(live), err)
	}
	tipCommit, err := repo.CommitObject(tip)
	if err != nil {
		return false, fmt.Errorf("read commit %s: %w", shortHash(tip), err)
	}
	if ok, err := shallowIsAncestor(repo, liveCommit, tipCommit); err != nil || !ok {
		return false, err
	}
	seen := 0
	found := false
	var walk func(dir string, a, b plumbing.Hash) error
	walk = func(dir string, a, b plumbing.Hash) error {
		if a == b || found {
			return nil
		}
		ea, err := treeEntries(repo, a)
		if err != nil {
			return err
		}
		eb, err := treeEntries(repo, b)
		if err != nil {
			return err
		}
		if seen += len(ea) + len(eb); seen > maxChangedEntries {
			return errTooManyChanges
		}
		for name, x := range ea {
			y, ok := eb[name]
			if ok && x.Hash == y.Hash && x.Mode == y.Mode {
				continue
			}
			if err := changed(dir+name, x, y, ok, walk, match, &found); err != nil || found {
				return err
			}
		}
		for name, y := range eb {
			if _, ok := ea[name]; ok {
				continue
			}
			if err := changed(dir+name, y, object.TreeEntry{}, false, walk, match, &found); err != nil || found {
				return err
			}
		}
		return nil
	}
	err = walk("", liveCommit.TreeHash, tipCommit.TreeHash)
	if errors.Is(err, errTooManyChanges) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("compare %s with %s: %w", shortHash(live), shortHash(tip), err)
	}
	return !found, nil
}

var errTooManyChanges = errors.New("too many changed entries")

// changed visits one entry that differs: x on one side, y on the other when both (a file
// replaced by a directory counts as both). A directory is descended into; a file (or a
// submodule, or a link) is one path given to match.
func changed(p string, x, y object.TreeEntry, both bool, walk func(string, plumbing.Hash, plumbing.Hash) error,
	match func(string) bool, found *bool) error {
	xDir, yDir := x.Mode == filemode.Dir, both && y.Mode == filemode.Dir
	switch {
	case xDir && yDir:
		return walk(p+"/", x.Hash, y.Hash)
	case xDir:
		if err := walk(p+"/", x.Hash, plumbing.ZeroHash); err != nil || *found {
			return err
		}
	default:
		if match(p) {
			*found = true
			return nil
		}
	}
	if !both {
		return nil
	}
	if yDir {
		return walk(p+"/", plumbing.ZeroHash, y.Hash)
	}
	if !xDir {
		return nil // the same file path, already given
	}
	if match(p) {
		*found = true
	}
	return nil
}

// treeEntries reads a tree as a map by name; the zero hash is the empty tree.
func treeEntries(repo *git.Repository, h plumbing.Hash) (map[string]object.TreeEntry, error) {
	if h.IsZero() {
		return nil, nil
	}
	t, err := repo.TreeObject(h)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", shortHash(h), err)
	}
	m := make(map[string]object.TreeEntry, len(t.Entries))
	for _, e := range t.Entries {
		m[e.Name] = e
	}
	return m, nil
}

// resolveInOwnHistory finds target in the history of HEAD, else of the tags the checkout
// holds (each fetched by a deploy of a tag target, so few), and says in which tip.
func resolveInOwnHistory(repo *git.Repository, target string) (found, tip plumbing.Hash, ok bool) {
	var tips []plumbing.Hash
	if head, err := repo.Head(); err == nil {
		tips = append(tips, head.Hash())
	}
	if iter, err := repo.Tags(); err == nil {
		_ = iter.ForEach(func(r *plumbing.Reference) error {
			if h, err := peelToCommit(repo, r.Hash()); err == nil {
				tips = append(tips, h)
			}
			return nil
		})
	}
	for _, t := range tips {
		if h, err := resolveInHistory(repo, t, target); err == nil {
			return h, t, true
		}
	}
	return plumbing.ZeroHash, plumbing.ZeroHash, false
}

// atLive says whether a skip may leave the checkout as it is: HEAD is the live commit
// (not a commit a failed deploy moved it to, whose files may differ from live's under the
// paths) and no interrupted apply left its journal (the next update must finish it).
func atLive(repo *git.Repository, live string) bool {
	head, err := repo.Head()
	if err != nil || head.Hash().String() != live {
		return false
	}
	st, ok := fsStorage(repo.Storer)
	if !ok {
		return false
	}
	_, err = st.Filesystem().Stat(journalName)
	return errors.Is(err, fs.ErrNotExist)
}
