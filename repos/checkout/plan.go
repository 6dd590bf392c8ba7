// This file owns which files change: scanning the work tree and diffing the trees.
package checkout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// scan returns the index paths whose work tree file differs from the index, plus
// unmerged paths. It trusts size and mtime like git does, and hashes only when
// they differ or the entry is racily clean (mtime not older than the index file).
// Entries found clean by hashing get fresh stat data, which is written only if
// the index is written. A path below a symlink is missing, as for git. A path an
// interrupted apply was writing is clean if it holds what that apply meant to
// write there, or nothing.
func (m *mover) scan(idx *index.Index) (map[string]bool, error) {
	dirty := map[string]bool{}
	for _, e := range idx.Entries {
		if e.Stage != 0 {
			dirty[e.Name] = true
			continue
		}
		if e.SkipWorktree || e.IntentToAdd || e.Mode == filemode.Submodule {
			continue
		}
		fi, err := m.wt.Lstat(e.Name)
		if isNotExist(err) {
			dirty[e.Name] = true
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", e.Name, err)
		}
		isLink := fi.Mode()&fs.ModeSymlink != 0
		if e.Mode == filemode.Symlink {
			if !isLink {
				dirty[e.Name] = true
				continue
			}
		} else {
			exec := fi.Mode().Perm()&0o100 != 0
			if !fi.Mode().IsRegular() || exec != (e.Mode == filemode.Executable) {
				dirty[e.Name] = true
				continue
			}
		}
		if uint32(fi.Size()) == e.Size && fi.ModTime().Equal(e.ModifiedAt) && fi.ModTime().Before(idx.ModTime) {
			continue
		}
		h, err := m.hashWorktreeFile(e.Name, fi)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", e.Name, err)
		}
		if h != e.Hash {
			dirty[e.Name] = true
			continue
		}
		fillStat(e, fi)
	}
	for p := range dirty {
		if _, ok := m.journal[p]; !ok {
			continue
		}
		if _, err := m.wt.Lstat(p); isNotExist(err) || m.journaled(p) {
			delete(dirty, p)
		}
	}
	return dirty, nil
}

// hashWorktreeFile hashes the file or symlink p as git would store it, reading it
// through the work tree guard.
func (m *mover) hashWorktreeFile(p string, fi fs.FileInfo) (plumbing.Hash, error) {
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := m.wt.Readlink(p)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		return plumbing.ComputeHash(plumbing.BlobObject, []byte(target)), nil
	}
	f, err := m.wt.Open(p, fi)
	if errors.Is(err, errHardLinked) {
		return plumbing.ZeroHash, nil // not read, so not known to be clean
	}
	if err != nil {
		return plumbing.ZeroHash, err
	}
	defer f.Close()
	h := plumbing.NewHasher(plumbing.BlobObject, fi.Size())
	n, err := io.Copy(h, f)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if n != fi.Size() { // changed while we read it: certainly not clean
		return plumbing.ZeroHash, nil
	}
	return h.Sum(), nil
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// ffChanges refuses any local modification, then takes the change set from the
// two trees; that is exact because the index and work tree equal HEAD, except at
// the paths of an interrupted apply, which are all written or removed again.
func (m *mover) ffChanges(idx *index.Index, dirty map[string]bool, headTree, targetTree *object.Tree) ([]change, error) {
	entries := indexByPath(idx)
	var changes []change
	if err := m.diffTrees("", headTree, targetTree, &changes); err != nil {
		return nil, fmt.Errorf("diff HEAD with origin/%s: %w", m.branch, err)
	}
	inChanges := make(map[string]bool, len(changes))
	for _, c := range changes {
		inChanges[c.path] = true
		// The index must hold what HEAD holds here, or a staged change would be
		// lost; an interrupted update may have written the index already.
		e := entries[c.path]
		if c.from == nil && e != nil || c.from != nil && (e == nil || e.Hash != c.from.Hash || e.Mode != c.from.Mode) {
			j, ok := m.journal[c.path]
			indexWritten := ok && (j.mode == 0 && e == nil || e != nil && e.Hash == j.hash && e.Mode == j.mode)
			if !indexWritten {
				dirty[c.path] = true
			}
		}
	}
	if len(dirty) > 0 {
		return nil, fmt.Errorf("checkout %s has local modifications to tracked files: %s; commit, stash or discard them, or set mode = \"reset\"",
			m.root, listPaths(dirty))
	}
	for _, p := range sortedKeys(m.journal) {
		if inChanges[p] {
			continue
		}
		from, err := m.fileAt(headTree, p)
		if err != nil {
			return nil, err
		}
		to, err := m.fileAt(targetTree, p)
		if err != nil {
			return nil, err
		}
		if to == nil && entries[p] == nil && !m.journaled(p) {
			continue // nothing of ours is there: absent, or someone else's file
		}
		changes = append(changes, change{path: p, from: from, entry: to})
	}
	if err := m.checkObstacles(changes, entries); err != nil {
		return nil, err
	}
	return changes, nil
}

// fileAt returns the file, symlink or submodule entry at p in t, or nil when t has
// none there (nothing, or a directory).
func (m *mover) fileAt(t *object.Tree, p string) (*object.TreeEntry, error) {
	if t == nil {
		return nil, nil
	}
	parts := strings.Split(p, "/")
	for i, name := range parts {
		var found *object.TreeEntry
		for k := range t.Entries {
			if t.Entries[k].Name == name {
				found = &t.Entries[k]
				break
			}
		}
		if found == nil {
			return nil, nil
		}
		if i == len(parts)-1 {
			if found.Mode == filemode.Dir {
				return nil, nil
			}
			c := *found
			return &c, nil
		}
		if found.Mode != filemode.Dir {
			return nil, nil
		}
		sub, err := m.repo.TreeObject(found.Hash)
		if err != nil {
			return nil, fmt.Errorf("read tree %s: %w", strings.Join(parts[:i+1], "/"), err)
		}
		t = sub
	}
	return nil, nil
}

func sortedKeys[V any](set map[string]V) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// resetChanges compares the index with the whole target tree rather than diffing
// from HEAD, so it also repairs local modifications, staged changes and a HEAD
// on another branch.
func (m *mover) resetChanges(idx *index.Index, dirty map[string]bool, targetTree *object.Tree) ([]change, error) {
	entries := indexByPath(idx)
	unmerged := map[string]bool{}
	for _, e := range idx.Entries {
		if e.Stage != 0 {
			unmerged[e.Name] = true
		}
	}
	var changes []change
	inTarget := map[string]bool{}
	err := m.walkTree("", targetTree, func(name string, te *object.TreeEntry) {
		inTarget[name] = true
		e := entries[name]
		_, journaled := m.journal[name]
		if e != nil && !unmerged[name] && !dirty[name] && !journaled && e.Hash == te.Hash && e.Mode == te.Mode {
			return
		}
		c := *te
		changes = append(changes, change{path: name, entry: &c})
	})
	if err != nil {
		return nil, fmt.Errorf("walk origin/%s tree: %w", m.branch, err)
	}
	seen := map[string]bool{}
	for _, e := range idx.Entries {
		if !inTarget[e.Name] && !seen[e.Name] {
			seen[e.Name] = true
			changes = append(changes, change{path: e.Name})
		}
	}
	// A file an interrupted apply wrote and origin no longer has goes, unless
	// something else has taken its place since: untracked files survive.
	for _, p := range sortedKeys(m.journal) {
		if !inTarget[p] && !seen[p] && m.journaled(p) {
			seen[p] = true
			changes = append(changes, change{path: p})
		}
	}
	if err := m.checkObstacles(changes, entries); err != nil {
		return nil, err
	}
	return changes, nil
}

// walkTree calls fn for every file, symlink and submodule under t, checking each
// tree on the way like diffTrees does.
func (m *mover) walkTree(prefix string, t *object.Tree, fn func(string, *object.TreeEntry)) error {
	if err := checkTreeEntries(prefix, t); err != nil {
		return err
	}
	for i := range t.Entries {
		e := &t.Entries[i]
		if e.Mode != filemode.Dir {
			fn(prefix+e.Name, e)
			continue
		}
		sub, err := m.repo.TreeObject(e.Hash)
		if err != nil {
			return fmt.Errorf("read tree %s%s: %w", prefix, e.Name, err)
		}
		if err := m.walkTree(prefix+e.Name+"/", sub, fn); err != nil {
			return err
		}
	}
	return nil
}

// maxTreeDepth is git's core.maxTreeDepth default: deeper trees cost memory and
// stack for no repository anyone keeps.
const maxTreeDepth = 4096

// checkTreeEntries refuses what git's fsck calls duplicateEntries and fullPathname
// in a tree from origin: two entries of one name (a file and a directory alike),
// and a name holding a slash. Either lets one path mean two things. It also bounds
// how deep trees nest.
func checkTreeEntries(prefix string, t *object.Tree) error {
	if t == nil {
		return nil
	}
	if strings.Count(prefix, "/") >= maxTreeDepth {
		return fmt.Errorf("origin tree is nested deeper than %d directories at %q", maxTreeDepth, prefix)
	}
	seen := make(map[string]struct{}, len(t.Entries))
	for _, e := range t.Entries {
		if strings.IndexByte(e.Name, '/') >= 0 {
			return &unsafePathError{path: prefix + e.Name, why: "a tree entry name holds a slash"}
		}
		if _, dup := seen[e.Name]; dup {
			return fmt.Errorf("origin tree has a duplicate entry %q", prefix+e.Name)
		}
		seen[e.Name] = struct{}{}
	}
	return nil
}

// diffTrees appends the files that differ between two trees (either may be nil),
// descending only into subtrees whose hashes differ. object.DiffTree loads every
// subtree on both sides to count its children, which on a 2,000-file tree cost
// more than the rest of an update.
func (m *mover) diffTrees(prefix string, from, to *object.Tree, out *[]change) error {
	if err := checkTreeEntries(prefix, to); err != nil {
		return err
	}
	fromEntries := map[string]*object.TreeEntry{}
	if from != nil {
		for i := range from.Entries {
			fromEntries[from.Entries[i].Name] = &from.Entries[i]
		}
	}
	if to != nil {
		for i := range to.Entries {
			t := &to.Entries[i]
			f := fromEntries[t.Name]
			delete(fromEntries, t.Name)
			if err := m.diffEntry(prefix+t.Name, f, t, out); err != nil {
				return err
			}
		}
	}
	for name, f := range fromEntries {
		if err := m.diffEntry(prefix+name, f, nil, out); err != nil {
			return err
		}
	}
	return nil
}

func (m *mover) diffEntry(path string, f, t *object.TreeEntry, out *[]change) error {
	if f != nil && t != nil && f.Hash == t.Hash && f.Mode == t.Mode {
		return nil
	}
	copyEntry := func(e *object.TreeEntry) *object.TreeEntry {
		if e == nil {
			return nil
		}
		c := *e
		return &c
	}
	fDir := f != nil && f.Mode == filemode.Dir
	tDir := t != nil && t.Mode == filemode.Dir
	if !fDir && !tDir {
		*out = append(*out, change{path: path, from: copyEntry(f), entry: copyEntry(t)})
		return nil
	}
	// A file on one side and a directory on the other: the file is a change of
	// its own, and the directory's files are compared with nothing.
	var fromTree, toTree *object.Tree
	var err error
	if fDir {
		if fromTree, err = m.repo.TreeObject(f.Hash); err != nil {
			return err
		}
	} else if f != nil {
		*out = append(*out, change{path: path, from: copyEntry(f)})
	}
	if tDir {
		if toTree, err = m.repo.TreeObject(t.Hash); err != nil {
			return err
		}
	} else if t != nil {
		*out = append(*out, change{path: path, entry: copyEntry(t)})
	}
	return m.diffTrees(path+"/", fromTree, toTree, out)
}

func indexByPath(idx *index.Index) map[string]*index.Entry {
	byPath := make(map[string]*index.Entry, len(idx.Entries))
	for _, e := range idx.Entries {
		if e.Stage == 0 {
			byPath[e.Name] = e
		} else if byPath[e.Name] == nil {
			byPath[e.Name] = e
		}
	}
	return byPath
}

func listPaths(set map[string]bool) string {
	paths := make([]string, 0, len(set))
	for p := range set {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	const show = 5
	if len(paths) <= show {
		return strings.Join(paths, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(paths[:show], ", "), len(paths)-show)
}
