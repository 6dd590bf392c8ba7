// This file owns the apply journal, for a crash in the middle of a write.
package checkout

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// The apply journal: how a failed apply is recovered from what is on disk.
//
// The work tree changes before the index and HEAD do, so an apply that stops
// partway (a symlink target longer than the system allows, a full disk, a crash)
// leaves files that neither the index nor HEAD describe: a symlink where the index
// still lists a directory's files, new files, removed ones. Trusting that index
// afterwards is how a later delete once went through such a symlink and out of the
// checkout. So before touching the work tree the mover writes the change set to
// .git/hookgate-apply, and removes it only once the index and the branch name the
// new commit. While it exists, the next update treats every path in it as unknown:
// it looks at what is really there (through workTree, so a symlink left in a leading
// component hides what is below it instead of leading anywhere), accepts the old or
// the attempted content there as its own rather than a local modification, and
// writes or removes each such path again, so the work tree converges on the new
// target whichever step failed. Re-verifying every file on every update would do the
// same at the cost of hashing the whole tree; the journal limits it to the paths an
// interrupted apply can have touched.
const journalName = "hookgate-apply"

const journalHeader = "hookgate apply journal 1"

// journalEntry is what an interrupted apply meant to leave at a path; a zero mode
// means removal.
type journalEntry struct {
	mode filemode.FileMode
	hash plumbing.Hash
}

func (m *mover) readJournal() (map[string]journalEntry, error) {
	f, err := m.dotgit.Open(journalName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read .git/%s: %w", journalName, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() || sc.Text() != journalHeader {
		return nil, fmt.Errorf("read .git/%s: not a journal hookgate wrote; remove it and run the update with mode = \"reset\"", journalName)
	}
	j := map[string]journalEntry{}
	for sc.Scan() {
		mode, rest, ok1 := strings.Cut(sc.Text(), " ")
		hash, quoted, ok2 := strings.Cut(rest, " ")
		bits, err1 := strconv.ParseUint(mode, 8, 32)
		p, err2 := strconv.Unquote(quoted)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || !plumbing.IsHash(hash) {
			return nil, fmt.Errorf("read .git/%s: malformed line %q", journalName, sc.Text())
		}
		j[p] = journalEntry{mode: filemode.FileMode(bits), hash: plumbing.NewHash(hash)}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read .git/%s: %w", journalName, err)
	}
	return j, nil
}

// writeJournal records changes, which include every path of an older journal, and
// replaces that journal atomically. A fresh clone needs none: a failed one is
// removed whole.
func (m *mover) writeJournal(changes []change) error {
	if m.fresh || len(changes) == 0 {
		return nil
	}
	const tmp = journalName + ".tmp"
	f, err := m.dotgit.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write .git/%s: %w", journalName, err)
	}
	bw := bufio.NewWriter(f)
	fmt.Fprintln(bw, journalHeader)
	for _, c := range changes {
		var e journalEntry
		if c.entry != nil {
			e = journalEntry{mode: c.entry.Mode, hash: c.entry.Hash}
		}
		fmt.Fprintf(bw, "%o %s %s\n", uint32(e.mode), e.hash, strconv.Quote(c.path))
	}
	err = bw.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = m.dotgit.Rename(tmp, journalName)
	}
	if err != nil {
		_ = m.dotgit.Remove(tmp)
		return fmt.Errorf("write .git/%s: %w", journalName, err)
	}
	return nil
}

// journaled says whether p holds what an interrupted apply meant to write there,
// so that it is not taken for a local modification or an untracked file.
func (m *mover) journaled(p string) bool {
	j, ok := m.journal[p]
	if !ok || j.mode == 0 {
		return false
	}
	fi, err := m.wt.Lstat(p)
	if err != nil {
		return false
	}
	return m.sameAsEntry(p, fi, j.mode, j.hash)
}

// sameAsEntry says whether the work tree file p (described by fi) has the given
// mode and content.
func (m *mover) sameAsEntry(p string, fi fs.FileInfo, mode filemode.FileMode, hash plumbing.Hash) bool {
	if mode == filemode.Symlink {
		if fi.Mode()&fs.ModeSymlink == 0 {
			return false
		}
	} else if !fi.Mode().IsRegular() || (fi.Mode().Perm()&0o100 != 0) != (mode == filemode.Executable) {
		return false
	}
	h, err := m.hashWorktreeFile(p, fi)
	return err == nil && h == hash
}

func shortHash(h plumbing.Hash) string { return h.String()[:7] }

func describeHead(head *plumbing.Reference) string {
	if head.Type() == plumbing.HashReference {
		return "a detached HEAD at " + shortHash(head.Hash())
	}
	return strings.TrimPrefix(head.Target().String(), "refs/heads/")
}
