// This file owns moving the work tree to a commit: the mover, its run, the branch and the index.
package checkout

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/go-git/go-billy/v5"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// mover brings one open checkout to target. Its fields are set by update.
type mover struct {
	repo   *git.Repository
	root   string
	branch string
	want   plumbing.ReferenceName
	target plumbing.Hash
	reset  bool
	fresh  bool   // a clone without a checkout: nothing is in the work tree yet
	tag    string // a tag target's tag, for messages ("" for origin/branch)
	// tip, when set, is the fetched branch head that target (a rollback's commit) was
	// found in; in ff mode HEAD may then move back to target if tip contains HEAD.
	tip plumbing.Hash

	dotgit  billy.Filesystem
	objects *filesystem.Storage
	// maxObject is the largest blob written (server.max_object_size): go-git builds a
	// delta's result whole in memory, however big, before its reader returns.
	maxObject int64
	wt        *workTree
	journal   map[string]journalEntry // what an interrupted apply was writing
}

// change is one path to write (entry set) or delete (entry nil); from is what
// HEAD has there, when known and present.
type change struct {
	path  string
	from  *object.TreeEntry
	entry *object.TreeEntry
}

func (m *mover) run() (UpdateResult, error) {
	st, ok := fsStorage(m.repo.Storer)
	if !ok {
		return UpdateResult{}, fmt.Errorf("checkout %s: unexpected repository storage %T", m.root, m.repo.Storer)
	}
	m.dotgit = st.Filesystem()
	m.objects = st
	if g, ok := m.repo.Storer.(*gatedStorage); ok {
		m.maxObject = g.limits.MaxObjectSize
	}

	head, err := m.repo.Storer.Reference(plumbing.HEAD)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("read HEAD: %w", err)
	}
	onWant := head.Type() == plumbing.SymbolicReference && head.Target() == m.want
	branchRef, err := m.repo.Storer.Reference(m.want)
	if err != nil && !errors.Is(err, plumbing.ErrReferenceNotFound) {
		return UpdateResult{}, fmt.Errorf("read %s: %w", m.want, err)
	}
	var from plumbing.Hash // zero on a branch with no commit yet
	switch {
	case m.fresh:
	case head.Type() == plumbing.HashReference:
		from = head.Hash()
	case onWant:
		if branchRef != nil {
			from = branchRef.Hash()
		}
	default:
		if r, err := m.repo.Storer.Reference(head.Target()); err == nil {
			from = r.Hash()
		}
	}
	res := UpdateResult{To: m.target.String()}
	if !from.IsZero() {
		res.From = from.String()
	}
	if m.journal, err = m.readJournal(); err != nil {
		return res, err
	}

	targetCommit, err := m.repo.CommitObject(m.target)
	if err != nil {
		return res, fmt.Errorf("read origin/%s commit %s: %w", m.branch, shortHash(m.target), err)
	}
	targetTree, err := targetCommit.Tree()
	if err != nil {
		return res, fmt.Errorf("read tree of %s: %w", shortHash(m.target), err)
	}
	var headTree *object.Tree
	var headCommit *object.Commit
	if !from.IsZero() {
		if headCommit, err = m.repo.CommitObject(from); err != nil {
			return res, fmt.Errorf("read HEAD commit %s: %w", shortHash(from), err)
		}
		if headTree, err = headCommit.Tree(); err != nil {
			return res, fmt.Errorf("read tree of HEAD %s: %w", shortHash(from), err)
		}
	}

	if !m.reset {
		if !onWant {
			return res, fmt.Errorf("checkout is on %s, expected branch %s", describeHead(head), m.branch)
		}
		if from == m.target && m.journal == nil {
			return res, nil
		}
		if headCommit != nil {
			ok, err := shallowIsAncestor(m.repo, headCommit, targetCommit)
			if err != nil {
				return res, fmt.Errorf("check that %s is an ancestor of origin/%s: %w", shortHash(from), m.branch, err)
			}
			if !ok && !m.tip.IsZero() {
				if ok, err = m.inTip(headCommit); err != nil {
					return res, err
				}
			}
			if !ok && m.tag != "" {
				return res, fmt.Errorf("branch %s is not an ancestor of tag %s: local %s, tag %s; an older tag or rewritten history is not a fast-forward: "+
					"roll back to its commit, or set mode = \"reset\"", m.branch, m.tag, shortHash(from), shortHash(m.target))
			}
			if !ok {
				return res, fmt.Errorf("branch %s has diverged from origin/%s: local %s, origin %s; set mode = \"reset\" to discard local commits",
					m.branch, m.branch, shortHash(from), shortHash(m.target))
			}
		}
	}

	// Hold git's own lock for the whole work tree update, as git does, so a git
	// command run by hand meanwhile fails instead of interleaving.
	// (takeLock removes one that an update killed with its gateway left behind.)
	lock, err := m.takeLock("index.lock", 0o666)
	if errors.Is(err, fs.ErrExist) {
		return res, fmt.Errorf("checkout %s is locked: .git/index.lock exists (another git process is running, or one crashed; remove the file if so)", m.root)
	}
	if err != nil {
		return res, fmt.Errorf("lock index: %w", err)
	}
	locked := true
	defer func() {
		if locked {
			_ = lock.Close()
			_ = m.dotgit.Remove("index.lock")
			m.dropLockRecord()
		}
	}()

	if m.wt, err = openWorkTree(m.root); err != nil {
		return res, err
	}
	defer m.wt.Close()

	idx, err := m.repo.Storer.Index()
	if err != nil {
		return res, fmt.Errorf("read index: %w", err)
	}
	dirty, err := m.scan(idx)
	if err != nil {
		return res, err
	}

	var changes []change
	if m.reset {
		changes, err = m.resetChanges(idx, dirty, targetTree)
	} else {
		changes, err = m.ffChanges(idx, dirty, headTree, targetTree)
	}
	if err != nil {
		return res, err
	}
	if err := m.writeJournal(changes); err != nil {
		return res, err
	}
	newEntries, err := m.apply(idx, changes)
	if err != nil {
		return res, err
	}
	res.Changed = len(changes)

	idx.Entries = newEntries
	if err := m.wt.checkGit(); err != nil {
		return res, fmt.Errorf("checkout %s: %w", m.root, err)
	}
	if err := writeIndex(lock, idx); err != nil {
		return res, fmt.Errorf("write index: %w", err)
	}
	if err := m.dotgit.Rename("index.lock", "index"); err != nil {
		return res, fmt.Errorf("write index: %w", err)
	}
	locked = false
	m.dropLockRecord()

	if err := m.setBranch(branchRef); err != nil {
		return res, fmt.Errorf("set %s to %s: %w", m.want, shortHash(m.target), err)
	}
	if !onWant {
		if err := m.repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, m.want)); err != nil {
			return res, fmt.Errorf("point HEAD at %s: %w", m.want, err)
		}
	}
	if err := m.dotgit.Remove(journalName); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("remove .git/%s: %w", journalName, err)
	}
	return res, nil
}

// setBranch moves the branch to m.target the way git does, not the way go-git's storer
// does: go-git truncates the ref file and writes it again, so a git command run at that
// moment (an operator's `git rev-parse HEAD`, a monitoring script) reads an empty ref and
// fails, and a crash between the two leaves it empty. Here the new value is written
// beside it under git's own lock name (refs/heads/BRANCH.lock, created exclusively, so
// a git updating the ref meanwhile fails instead of interleaving) and renamed over it:
// a reader sees the old hash or the new one. old is the value the update started from
// (nil: the branch did not exist); a branch moved meanwhile is not overwritten.
func (m *mover) setBranch(old *plumbing.Reference) error {
	cur, err := m.repo.Storer.Reference(m.want)
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		cur = nil
	case err != nil:
		return err
	}
	if (cur == nil) != (old == nil) || cur != nil && cur.Hash() != old.Hash() {
		return fmt.Errorf("%s was moved by another process during the update", m.want)
	}
	name := m.want.String()
	if err := m.dotgit.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	lock, err := m.takeLock(name+".lock", 0o644)
	if err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	defer m.dropLockRecord()
	_, err = io.WriteString(lock, m.target.String()+"\n")
	if err == nil {
		if s, ok := lock.(interface{ Sync() error }); ok {
			err = s.Sync()
		}
	}
	if cerr := lock.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = m.dotgit.Rename(name+".lock", name)
	}
	if err != nil {
		_ = m.dotgit.Remove(name + ".lock")
	}
	return err
}

func writeIndex(f billy.File, idx *index.Index) error {
	bw := bufio.NewWriter(f)
	if err := index.NewEncoder(bw).Encode(idx); err != nil {
		_ = f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
