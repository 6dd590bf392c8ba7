// This file owns writing the planned changes into the work tree.
package checkout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// apply changes the work tree and returns the new index entries.
func (m *mover) apply(idx *index.Index, changes []change) ([]*index.Entry, error) {
	sort.Slice(changes, func(i, j int) bool { return changes[i].path < changes[j].path })
	touched := map[string]bool{}
	emptied := map[string]bool{}
	for _, c := range changes {
		touched[c.path] = true
		if c.entry != nil {
			continue
		}
		if err := m.remove(c.path); err != nil {
			return nil, err
		}
		for d := path.Dir(c.path); d != "."; d = path.Dir(d) {
			emptied[d] = true
		}
	}
	// In reset mode an untracked file or symlink may sit where origin now has a
	// directory: it goes, as a link, never followed.
	if m.reset {
		for _, c := range changes {
			if c.entry == nil {
				continue
			}
			parts := strings.Split(c.path, "/")
			for i := 1; i < len(parts); i++ {
				q := strings.Join(parts[:i], "/")
				fi, err := m.wt.Lstat(q)
				if err != nil {
					break
				}
				if fi.IsDir() {
					continue
				}
				if err := m.wt.Remove(q); err != nil {
					return nil, fmt.Errorf("remove %s: %w", q, err)
				}
				break
			}
		}
	}
	// Deepest first; removing a directory fails while it holds anything, such as
	// untracked files, and that refusal is what we want.
	dirs := make([]string, 0, len(emptied))
	for d := range emptied {
		dirs = append(dirs, d)
	}
	sort.Slice(dirs, func(i, j int) bool {
		if a, b := strings.Count(dirs[i], "/"), strings.Count(dirs[j], "/"); a != b {
			return a > b
		}
		return dirs[i] > dirs[j]
	})
	for _, d := range dirs {
		if fi, err := m.wt.Lstat(d); err == nil && fi.IsDir() {
			_ = m.wt.Remove(d)
		}
	}

	var added []*index.Entry
	for _, c := range changes {
		if c.entry == nil {
			continue
		}
		e, err := m.write(c.path, c.entry)
		if err != nil {
			return nil, err
		}
		added = append(added, e)
	}

	entries := make([]*index.Entry, 0, len(idx.Entries)+len(added))
	for _, e := range idx.Entries {
		if !touched[e.Name] {
			entries = append(entries, e)
		}
	}
	entries = append(entries, added...)
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Name != entries[j].Name {
			return entries[i].Name < entries[j].Name
		}
		return entries[i].Stage < entries[j].Stage
	})
	return entries, nil
}

// remove deletes the tracked file or symlink p. Below a symlink it does not exist.
func (m *mover) remove(p string) error {
	fi, err := m.wt.Lstat(p)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	if fi.IsDir() {
		// A submodule or a local directory in place of a tracked file: only
		// if empty, as it may hold untracked files.
		_ = m.wt.Remove(p)
		return nil
	}
	if err := m.wt.Remove(p); err != nil && !isNotExist(err) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// maxSymlinkTarget is the longest symlink target Linux accepts (PATH_MAX less the
// terminating NUL); a longer blob is refused without reading it.
const maxSymlinkTarget = 4095

// write puts one tree entry in place atomically (temporary file, then rename) and
// returns its index entry with fresh stat data.
func (m *mover) write(p string, te *object.TreeEntry) (*index.Entry, error) {
	if dir := path.Dir(p); dir != "." {
		if err := m.wt.MkdirAll(dir); err != nil {
			return nil, err
		}
	}
	fi, err := m.wt.Lstat(p)
	if err == nil && fi.IsDir() && te.Mode != filemode.Submodule {
		if err := m.wt.Remove(p); err != nil {
			return nil, fmt.Errorf("replace directory %s with a file: %w", p, err)
		}
	}
	e := &index.Entry{Name: p, Hash: te.Hash, Mode: te.Mode}
	switch te.Mode {
	case filemode.Submodule:
		// Submodules are not checked out; git shows an uninitialised one as an
		// empty directory with a gitlink entry in the index.
		if err == nil && !fi.IsDir() {
			if err := m.wt.Remove(p); err != nil {
				return nil, fmt.Errorf("replace %s with a submodule directory: %w", p, err)
			}
		}
		if err := m.wt.Mkdir(p); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create submodule directory %s: %w", p, err)
		}
		return e, nil
	case filemode.Symlink:
		if err := m.checkBlobSize(te.Hash); err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		blob, err := m.repo.BlobObject(te.Hash)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		if blob.Size > maxSymlinkTarget {
			return nil, fmt.Errorf("write %s: symlink target of %d bytes: %w", p, blob.Size, syscall.ENAMETOOLONG)
		}
		target, err := readBlob(blob)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		if fi, err = m.wt.Symlink(string(target), p); err != nil {
			return nil, fmt.Errorf("write %s: %w", p, err)
		}
	case filemode.Regular, filemode.Executable, filemode.Deprecated:
		perm := os.FileMode(0o644)
		if te.Mode == filemode.Executable {
			perm = 0o755
		}
		if fi, err = m.writeFile(p, te.Hash, perm); err != nil {
			return nil, fmt.Errorf("write %s: %w", p, err)
		}
		if te.Mode == filemode.Deprecated {
			e.Mode = filemode.Regular
		}
	default:
		return nil, fmt.Errorf("write %s: unsupported file mode %s", p, te.Mode)
	}
	fillStat(e, fi)
	return e, nil
}

// writeFile streams the blob into place: it is never held in memory whole.
func (m *mover) writeFile(p string, h plumbing.Hash, perm os.FileMode) (fs.FileInfo, error) {
	if err := m.checkBlobSize(h); err != nil {
		return nil, err
	}
	blob, err := m.repo.BlobObject(h)
	if err != nil {
		return nil, err
	}
	r, err := blob.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return m.wt.WriteFile(p, r, perm)
}

// checkBlobSize refuses a blob above maxObject before it is read. Blobs fetched since the
// limit existed were checked on the way in; this is for those already in the repository.
// The size is read from the object's header, or a delta's, without building it.
func (m *mover) checkBlobSize(h plumbing.Hash) error {
	if m.maxObject <= 0 || m.objects == nil {
		return nil
	}
	size, err := m.objects.EncodedObjectSize(h)
	if err != nil {
		return err
	}
	if size > m.maxObject {
		return fmt.Errorf("%w: blob %s is %s, over server.max_object_size (%s)", ErrObjectTooLarge, shortHash(h), formatSize(size), formatSize(m.maxObject))
	}
	return nil
}

func readBlob(blob *object.Blob) ([]byte, error) {
	r, err := blob.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// fillStat records the file's stat data the way git does, so that neither git
// nor the next Update has to hash it again.
func fillStat(e *index.Entry, fi fs.FileInfo) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		e.ModifiedAt = fi.ModTime()
		e.Size = uint32(fi.Size())
		return
	}
	e.ModifiedAt = time.Unix(st.Mtim.Unix())
	e.CreatedAt = time.Unix(st.Ctim.Unix())
	e.Dev = uint32(st.Dev)
	e.Inode = uint32(st.Ino)
	e.UID = st.Uid
	e.GID = st.Gid
	e.Size = uint32(st.Size)
}
