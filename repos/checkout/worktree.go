// This file owns the confined work-tree writer: the descriptor chain and the file operations
// that every write into a checkout's work tree goes through.
package checkout

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// workTree is the only way the updater touches files in a checkout's work tree; the
// upstream is not trusted, and its trees decide which paths are touched. Three rules
// hold for every call:
//
//   - Every path is checked against git's verify_path rules (validPath), so nothing
//     names .git, one of its NTFS or HFS aliases, "..", or an absolute path.
//   - No symlink is ever followed, not even one that stays inside the checkout (into
//     .git, say). Each leading component is opened from its parent's descriptor with
//     O_NOFOLLOW|O_DIRECTORY, as git's has_symlink_leading_path demands of it; a path
//     below a symlink does not exist as far as the work tree is concerned. The final
//     component is acted on relative to its parent's descriptor (fstatat, readlinkat,
//     openat with O_NOFOLLOW, unlinkat, mkdirat, symlinkat, renameat), itself.
//   - Nothing is resolved twice. With run_as the gateway writes, as root, into a tree
//     that a process the account left running can change during the deploy, so a
//     check on a path followed by a use of the same path (os.Root's OpenRoot and
//     OpenFile follow a symlink swapped in meanwhile, and OpenRoot opens a FIFO without
//     O_NONBLOCK) is a window. Here what was checked is what is used: the descriptor.
//
// A folder the account moves away while the writer holds it open takes the writer's
// later files with it, but it stays the account's folder: the writer creates in it
// only what the account could create there itself, and nothing outside it changes.
//
// Directories are opened one component at a time from their parent and kept open
// along the current path (chain), so a sorted walk over the index opens each
// directory once and then does one system call per file, as plain os.Lstat would.
type workTree struct {
	root   int // the checkout
	dotgit unix.Stat_t
	chain  []openDir // directories opened for the last path, outermost first
}

type openDir struct {
	path string // slash-separated, relative to the checkout
	fd   int
}

// openWorkTree opens the checkout at path (the operator's, followed if it is a link)
// and notes which directory its .git is: a real directory, never a link or a file
// pointing elsewhere, and the same one until the update ends (checkGit).
func openWorkTree(path string) (*workTree, error) {
	fd, err := openRetry(unix.AT_FDCWD, path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open work tree: %w", &fs.PathError{Op: "open", Path: path, Err: err})
	}
	w := &workTree{root: fd}
	if err := fstatat(fd, ".git", &w.dotgit); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open work tree %s: %w", path, &fs.PathError{Op: "lstat", Path: ".git", Err: err})
	}
	if w.dotgit.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return nil, fmt.Errorf("open work tree %s: .git is not a directory (%s); refusing to update through it", path, fileMode(w.dotgit.Mode).Type())
	}
	return w, nil
}

// checkGit says whether .git is still the directory openWorkTree found. The writer
// never names .git (validPath), so only someone else can have replaced it; the update
// must then not write an index or move a branch in whatever is there now.
func (w *workTree) checkGit() error {
	var st unix.Stat_t
	err := fstatat(w.root, ".git", &st)
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Dev == w.dotgit.Dev && st.Ino == w.dotgit.Ino {
		return nil
	}
	return errors.New(".git was replaced during the update; refusing to write the index or move the branch")
}

// Close releases the checkout and every directory kept open.
func (w *workTree) Close() error {
	w.drop(0)
	return unix.Close(w.root)
}

func (w *workTree) drop(from int) {
	for _, d := range w.chain[from:] {
		_ = unix.Close(d.fd)
	}
	w.chain = w.chain[:from]
}

// forget closes the kept directories at or below p, which is about to change.
func (w *workTree) forget(p string) {
	for k, d := range w.chain {
		if d.path == p || strings.HasPrefix(d.path, p) && d.path[len(p)] == '/' {
			w.drop(k)
			return
		}
	}
}

// blockedError says a leading component of a path is a symlink or not a directory.
// Like git, the updater treats such a path as absent: it is never looked at through
// the symlink, so errors.Is(err, fs.ErrNotExist) holds.
type blockedError struct {
	path, at, what string
}

func (e *blockedError) Error() string {
	return fmt.Sprintf("%s: %s is %s", e.path, e.at, e.what)
}

func (e *blockedError) Is(target error) bool { return target == fs.ErrNotExist }

// unsafePathError is a path the work tree must never hold.
type unsafePathError struct {
	path, why string
}

func (e *unsafePathError) Error() string {
	return fmt.Sprintf("origin tree has an unsafe path %q: %s", e.path, e.why)
}

// parent returns the open directory holding p and p's last component.
func (w *workTree) parent(p string) (int, string, error) {
	if err := validPath(p, false); err != nil {
		return -1, "", err
	}
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return w.root, p, nil
	}
	d, err := w.dir(p[:i], p)
	return d, p[i+1:], err
}

// dir returns the directory rel ("" for the checkout), opening each component from
// its parent. want names the path the caller wants, for messages.
func (w *workTree) dir(rel, want string) (int, error) {
	if rel == "" {
		return w.root, nil
	}
	parent := w.root
	start := 0
	for k := 0; ; k++ {
		end := len(rel)
		if i := strings.IndexByte(rel[start:], '/'); i >= 0 {
			end = start + i
		}
		prefix := rel[:end]
		if k < len(w.chain) && w.chain[k].path == prefix {
			parent = w.chain[k].fd
		} else {
			w.drop(min(k, len(w.chain)))
			d, err := openDirAt(parent, rel[start:end], prefix, want)
			if err != nil {
				return -1, err
			}
			w.chain = append(w.chain, openDir{path: prefix, fd: d})
			parent = d
		}
		if end == len(rel) {
			return parent, nil
		}
		start = end + 1
	}
}

// openDirAt opens the directory name in parent in one step that cannot follow a
// symlink (O_NOFOLLOW) nor open anything but a directory (O_DIRECTORY: a FIFO put
// there is not opened, so it cannot block the deploy). Whatever is there at the
// moment of the call is what is used; there is no earlier look to be outdated.
func openDirAt(parent int, name, prefix, want string) (int, error) {
	fd, err := openRetry(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		return fd, nil
	}
	if err == unix.ELOOP || err == unix.ENOTDIR {
		// Which of the two only matters for the message; nothing is opened.
		var st unix.Stat_t
		if fstatat(parent, name, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, &blockedError{path: want, at: prefix, what: "a symlink"}
		}
		return -1, &blockedError{path: want, at: prefix, what: "not a directory"}
	}
	return -1, &fs.PathError{Op: "open", Path: want, Err: err}
}

func openRetry(dir int, name string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Openat(dir, name, flags, perm)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func fstatat(dir int, name string, st *unix.Stat_t) error {
	for {
		err := unix.Fstatat(dir, name, st, unix.AT_SYMLINK_NOFOLLOW)
		if err != unix.EINTR {
			return err
		}
	}
}

// lstatAt describes name in dir itself; p is its path, for the FileInfo and errors.
func lstatAt(dir int, name, p string) (fs.FileInfo, error) {
	fi := &fileInfo{name: path.Base(p)}
	if err := fstatat(dir, name, &fi.st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	return fi, nil
}

// fileInfo is an fs.FileInfo from fstatat; Sys is a *syscall.Stat_t, as os.Lstat's is.
type fileInfo struct {
	name string
	st   unix.Stat_t
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.st.Size }
func (fi *fileInfo) Mode() fs.FileMode  { return fileMode(fi.st.Mode) }
func (fi *fileInfo) ModTime() time.Time { return time.Unix(fi.st.Mtim.Unix()) }
func (fi *fileInfo) IsDir() bool        { return fi.st.Mode&unix.S_IFMT == unix.S_IFDIR }
func (fi *fileInfo) Sys() any {
	s := &fi.st
	return &syscall.Stat_t{
		Dev: s.Dev, Ino: s.Ino, Nlink: s.Nlink, Mode: s.Mode, Uid: s.Uid, Gid: s.Gid, Rdev: s.Rdev,
		Size: s.Size, Blksize: s.Blksize, Blocks: s.Blocks,
		Atim: syscall.Timespec{Sec: s.Atim.Sec, Nsec: s.Atim.Nsec},
		Mtim: syscall.Timespec{Sec: s.Mtim.Sec, Nsec: s.Mtim.Nsec},
		Ctim: syscall.Timespec{Sec: s.Ctim.Sec, Nsec: s.Ctim.Nsec},
	}
}

// sameInode says whether fi (from Lstat) and st are the same file.
func sameInode(fi fs.FileInfo, st *unix.Stat_t) bool {
	f, ok := fi.(*fileInfo)
	return ok && f.st.Dev == st.Dev && f.st.Ino == st.Ino
}

// fileMode is os's mapping of st_mode to fs.FileMode.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// Lstat describes p itself, never what a symlink at p points to.
func (w *workTree) Lstat(p string) (fs.FileInfo, error) {
	d, base, err := w.parent(p)
	if err != nil {
		return nil, err
	}
	return lstatAt(d, base, p)
}

// Readlink returns the target of the symlink p.
func (w *workTree) Readlink(p string) (string, error) {
	d, base, err := w.parent(p)
	if err != nil {
		return "", err
	}
	b := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(d, base, b)
		switch {
		case err == unix.EINTR:
		case err != nil:
			return "", &fs.PathError{Op: "readlink", Path: p, Err: err}
		case n < len(b):
			return string(b[:n]), nil
		default:
			b = make([]byte, 2*len(b))
		}
	}
}

// Open opens the regular file p for reading; fi is what Lstat said p is, and
// anything else found there (a symlink, which O_NOFOLLOW refuses to open at all; a
// swapped file; a FIFO, which O_NONBLOCK keeps from blocking) is refused.
//
// A file with more than one link is not opened either (errHardLinked): git never makes
// one, and it may be a file from outside the checkout that the gateway would read.
func (w *workTree) Open(p string, fi fs.FileInfo) (*os.File, error) {
	d, base, err := w.parent(p)
	if err != nil {
		return nil, err
	}
	if f, ok := fi.(*fileInfo); ok && f.st.Nlink > 1 {
		return nil, &fs.PathError{Op: "open", Path: p, Err: errHardLinked}
	}
	fd, err := openRetry(d, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || !sameInode(fi, &st) {
		unix.Close(fd)
		return nil, fmt.Errorf("%s changed while it was opened", p)
	}
	if st.Nlink > 1 {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: p, Err: errHardLinked}
	}
	return os.NewFile(uintptr(fd), p), nil
}

var errHardLinked = errors.New("file has more than one link")

// Remove removes p itself: a file, a symlink (not what it points to) or an empty
// directory. A p below a symlink does not exist, so nothing is removed.
func (w *workTree) Remove(p string) error {
	d, base, err := w.parent(p)
	if err != nil {
		return err
	}
	w.forget(p)
	e := unlinkat(d, base, 0)
	if e == nil {
		return nil
	}
	e1 := unlinkat(d, base, unix.AT_REMOVEDIR)
	if e1 == nil {
		return nil
	}
	// As os.Remove: the file error, unless p is a directory.
	if e1 != unix.ENOTDIR {
		e = e1
	}
	return &fs.PathError{Op: "remove", Path: p, Err: e}
}

func unlinkat(dir int, name string, flags int) error {
	for {
		err := unix.Unlinkat(dir, name, flags)
		if err != unix.EINTR {
			return err
		}
	}
}

// Mkdir makes the directory p; its parent must exist.
func (w *workTree) Mkdir(p string) error {
	d, base, err := w.parent(p)
	if err != nil {
		return err
	}
	if err := unix.Mkdirat(d, base, 0o755); err != nil {
		return &fs.PathError{Op: "mkdir", Path: p, Err: err}
	}
	return nil
}

// MkdirAll makes the directory rel and those above it, one at a time; anything
// other than a real directory in the way is an error, never followed.
func (w *workTree) MkdirAll(rel string) error {
	if rel == "" {
		return nil
	}
	for end := 0; end < len(rel); {
		if i := strings.IndexByte(rel[end+1:], '/'); i >= 0 {
			end += 1 + i
		} else {
			end = len(rel)
		}
		q := rel[:end]
		fi, err := w.Lstat(q)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !isBlocked(err):
			if err := w.Mkdir(q); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("create directory %s: %w", q, err)
			}
		case err != nil:
			return fmt.Errorf("create directory %s: %w", q, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symlink in the way of a directory from origin", q)
		case !fi.IsDir():
			return fmt.Errorf("%s is in the way of a directory from origin", q)
		}
	}
	return nil
}

func isBlocked(err error) bool {
	var b *blockedError
	return errors.As(err, &b)
}

// WriteFile writes r to a temporary file beside p, then renames it over p, so p is
// never half written; it returns what p is afterwards. The temporary file is created
// new (O_EXCL: a name the account planted is not reused) and its mode set on the open
// descriptor; the rename replaces the entry p and never writes through it.
func (w *workTree) WriteFile(p string, r io.Reader, perm fs.FileMode) (fs.FileInfo, error) {
	d, base, err := w.parent(p)
	if err != nil {
		return nil, err
	}
	var fd int
	var tmp string
	for range 100 {
		tmp = tempPrefix + randomSuffix()
		fd, err = openRetry(d, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != unix.EEXIST {
			break
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: path.Join(path.Dir(p), tmp), Err: err}
	}
	f := os.NewFile(uintptr(fd), path.Join(path.Dir(p), tmp))
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		w.forget(p)
		err = renameat(d, tmp, base, p)
	}
	if err != nil {
		_ = unlinkat(d, tmp, 0)
		return nil, err
	}
	return lstatAt(d, base, p)
}

func renameat(dir int, from, to, p string) error {
	if err := unix.Renameat(dir, from, dir, to); err != nil {
		return &fs.PathError{Op: "rename", Path: p, Err: err}
	}
	return nil
}

// Symlink makes p a symlink to target, through a temporary name and a rename. The
// target is content, as for git: it may point anywhere, and it is never followed.
func (w *workTree) Symlink(target, p string) (fs.FileInfo, error) {
	d, base, err := w.parent(p)
	if err != nil {
		return nil, err
	}
	var tmp string
	for range 100 {
		tmp = tempPrefix + randomSuffix()
		err = unix.Symlinkat(target, d, tmp)
		if err != unix.EEXIST {
			break
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "symlink", Path: p, Err: err}
	}
	w.forget(p)
	if err := renameat(d, tmp, base, p); err != nil {
		_ = unlinkat(d, tmp, 0)
		return nil, err
	}
	return lstatAt(d, base, p)
}

// ReadDir lists the directory rel ("" for the checkout) without following symlinks:
// each entry is described by fstatat relative to the open directory.
func (w *workTree) ReadDir(rel string) ([]fs.DirEntry, error) {
	if rel != "" {
		if err := validPath(rel, false); err != nil {
			return nil, err
		}
	}
	d, err := w.dir(rel, rel)
	if err != nil {
		return nil, err
	}
	// A descriptor of its own, so reading it moves no offset of the kept one.
	fd, err := openRetry(d, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	ents := make([]fs.DirEntry, 0, len(names))
	for _, name := range names {
		fi, serr := lstatAt(fd, name, path.Join(rel, name))
		if errors.Is(serr, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if serr != nil {
			return ents, serr
		}
		ents = append(ents, fs.FileInfoToDirEntry(fi))
	}
	return ents, err
}

// WalkFiles calls fn with the path of every file and symlink under the directory
// rel, descending only into real directories. A directory named .git (or an alias),
// which only someone other than origin can have made, is reported like a file and
// not entered: the writer has no business in any .git.
func (w *workTree) WalkFiles(rel string, fn func(p string) error) error {
	ents, err := w.ReadDir(rel)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := rel + "/" + e.Name()
		if e.IsDir() && validPath(p, false) == nil {
			if err := w.WalkFiles(p, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
