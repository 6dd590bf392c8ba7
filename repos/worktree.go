package repos

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
	"strconv"
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

// validPath applies git's verify_path with core.protectNTFS and core.protectHFS on
// (read-cache.c, path.c, utf8.c): no empty, "." or ".." component (so no leading or
// doubled "/"), no NUL, and no component that is .git or one of its aliases on
// another file system: any case, NTFS's trailing spaces and dots, alternate data
// streams and 8.3 short name git~1, backslash as a separator, HFS+'s ignored
// Unicode code points. A symlink named like .gitmodules is refused too. Checkouts get
// copied to other machines, so the aliases matter on Linux as well.
func validPath(p string, symlink bool) error {
	if p == "" {
		return &unsafePathError{path: p, why: "empty"}
	}
	for start := 0; start <= len(p); {
		end := strings.IndexByte(p[start:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += start
		}
		c := p[start:end]
		last := end == len(p)
		switch {
		case c == "":
			return &unsafePathError{path: p, why: "empty path component"}
		case c == "." || c == "..":
			return &unsafePathError{path: p, why: "component " + c}
		case strings.IndexByte(c, 0) >= 0:
			return &unsafePathError{path: p, why: "NUL in a name"}
		}
		for part := range strings.SplitSeq(c, `\`) {
			if isDotGit(part) {
				return &unsafePathError{path: p, why: "names .git or an alias of it"}
			}
			if symlink && last && isDotGitmodules(part) {
				return &unsafePathError{path: p, why: "a symlink named like .gitmodules"}
			}
		}
		start = end + 1
	}
	return nil
}

// isDotGit says whether name is .git on any file system git protects: its case
// variants, NTFS's ".git" followed by spaces and dots or a stream (".git::$DATA"),
// its short name "git~1", and HFS+'s ".git" with ignored code points in it.
func isDotGit(name string) bool {
	if len(name) < 4 {
		return false
	}
	return ntfsAlias(name, ".git") || ntfsAlias(name, "git~1") || hasNonASCII(name) && hfsFolded(name) == ".git"
}

// isDotGitmodules is isDotGit for .gitmodules (git refuses it as a symlink): also the
// NTFS short names gitmod~N and gi7eba~N.
func isDotGitmodules(name string) bool {
	if ntfsAlias(name, ".gitmodules") || hasNonASCII(name) && hfsFolded(name) == ".gitmodules" {
		return true
	}
	for _, short := range []string{"gitmod~", "gi7eba~"} {
		if len(name) > len(short) && asciiEqualFold(name[:len(short)], short) &&
			name[len(short)] >= '1' && name[len(short)] <= '9' &&
			onlySpacesAndDots(streamless(name[len(short)+1:])) {
			return true
		}
	}
	return false
}

// ntfsAlias says whether name is want to NTFS: any case, then only spaces and dots,
// then optionally an alternate data stream.
func ntfsAlias(name, want string) bool {
	return len(name) >= len(want) && asciiEqualFold(name[:len(want)], want) &&
		onlySpacesAndDots(streamless(name[len(want):]))
}

func streamless(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[:i]
	}
	return s
}

func onlySpacesAndDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '.' {
			return false
		}
	}
	return true
}

// hfsFolded drops the code points HFS+ ignores in names and lower-cases ASCII, as
// git's next_hfs_char does; other characters are kept as they are.
func hfsFolded(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 0x200c && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x206a && r <= 0x206f, r == 0xfeff:
			continue
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// asciiEqualFold is strings.EqualFold for ASCII letters only, as git compares: the
// Kelvin sign is not a k.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// The hand-over to a run_as account lives here too: it walks the work tree, so it is
// held to the same rule as the updater (never through a symlink), by file descriptors.

// handOver makes the checkout at path writable by a after the gateway has updated it:
// everything in it the gateway wrote becomes a's, except .git, which is (or becomes
// again) the gateway's, readable by a's group, so the commands cannot rewrite what the
// gateway fetches with, such as origin's URL, which the HTTPS token is sent to, or plant
// links in it that the gateway would write through. The top folder is the gateway's too,
// with a's group allowed to write in it and the sticky bit set: a can add and remove its
// own files there but cannot move .git away and put another in its place.
//
// The tree is a's, and a process a left running may change it during the walk, so the walk
// never resolves a path: it holds each folder open (opened without following a link) and
// changes each entry through a descriptor of its own, opened without following a link and
// checked (walk). A folder swapped for a link meanwhile is not entered (O_NOFOLLOW). A file
// with more than one link is never given away: a hard link to a file elsewhere (where
// protected_hardlinks is off) would hand that file to a.
func handOver(path string, a *Account) error {
	return handOverWalk(path, a, false)
}

// reclaim takes the top folder and .git back before an update, as handOver leaves them
// after one: the top folder the gateway's (sticky, the account's group may write) and
// .git the gateway's, only readable by the account's group. handOver runs only after an
// update that succeeded, so without this the first update of a checkout the account
// already owned (run_as just switched on), or one after a failed update, would run while
// the account could still swap or write .git. The work tree itself stays the account's.
func reclaim(path string, a *Account) error {
	return handOverWalk(path, a, true)
}

func handOverWalk(path string, a *Account, gitOnly bool) error {
	verb := "hand the checkout to " + a.Name
	if gitOnly {
		verb = "take .git back from " + a.Name
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) && gitOnly {
		return nil // not cloned yet: the clone is made by the gateway, in a folder of its own
	}
	if err != nil {
		return fmt.Errorf("%s: open %s: %w", verb, path, err)
	}
	h := &handover{a: a, gw: owner{uint32(os.Geteuid()), uint32(os.Getegid())}}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return fmt.Errorf("%s: %w", verb, err)
	}
	if st.Uid != h.gw.uid || st.Gid != a.GID {
		h.note(".", unix.Fchown(fd, int(h.gw.uid), int(a.GID)))
	}
	if mode := uint32(st.Mode & 0o7777); mode|0o070|unix.S_ISVTX != mode {
		h.note(".", unix.Fchmod(fd, mode|0o070|unix.S_ISVTX))
	}
	if gitOnly {
		h.walkGit(fd)
	} else {
		h.walk(fd, ".", false)
	}
	if len(h.errs) > 0 {
		more := ""
		if len(h.errs) > 1 {
			more = " (and " + strconv.Itoa(len(h.errs)-1) + " more)"
		}
		return fmt.Errorf("%s: %w%s", verb, h.errs[0], more)
	}
	return nil
}

// walkGit gives .git, below the open top folder fd, back to the gateway the way walk does
// inside .git, and closes fd. A .git that is not a folder is left to the update, which
// refuses it.
func (h *handover) walkGit(fd int) {
	defer unix.Close(fd)
	sub, err := unix.Openat(fd, ".git", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return
	}
	if err != nil {
		h.note(".git", err)
		return
	}
	var st unix.Stat_t
	if err := unix.Fstat(sub, &st); err != nil {
		h.note(".git", err)
		unix.Close(sub)
		return
	}
	want := owner{h.gw.uid, h.a.GID}
	if h.needs(&st, want, 0o050) {
		h.fix(sub, ".git", &st, want, 0o050)
	}
	h.walk(sub, ".git", true)
}

type owner struct{ uid, gid uint32 }

type handover struct {
	a    *Account
	gw   owner
	errs []error
}

// note records err, about rel, unless it is nil or says the entry is gone (removed by a
// process the last deploy left running).
func (h *handover) note(rel string, err error) {
	if err != nil && !errors.Is(err, unix.ENOENT) {
		h.errs = append(h.errs, &fs.PathError{Op: "hand over", Path: rel, Err: err})
	}
}

// walk hands over the entries of the open folder fd (rel in the checkout; inGit: inside
// .git) and closes fd.
//
// An entry is looked at with fstatat only to skip what needs no change, which after the
// first hand-over is nearly everything. To change one, the walk opens it (never
// following a link: O_NOFOLLOW, or O_PATH|O_NOFOLLOW for the link itself), checks what
// it opened, and changes that open file: a name the account swaps meanwhile, for a hard
// link to a file elsewhere or for a symlink, is never chowned or chmod'ed by name.
func (h *handover) walk(fd int, rel string, inGit bool) {
	dir := os.NewFile(uintptr(fd), rel)
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		h.note(rel, err)
		return
	}
	for _, name := range names {
		p := name
		if rel != "." {
			p = rel + "/" + name
		}
		git := inGit || p == ".git"
		want, perm := owner{h.a.UID, h.a.GID}, uint32(0)
		if git {
			want, perm = owner{h.gw.uid, h.a.GID}, 0o040
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			h.note(p, err)
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				h.note(p, err)
				continue
			}
			if perm != 0 {
				perm |= 0o010 // a group-readable folder is also searchable
			}
			// What fstatat saw decides whether to look again; a folder swapped in since
			// that needs a change gets it at the next hand-over.
			if h.needs(&st, want, perm) {
				if err := unix.Fstat(sub, &st); err != nil {
					h.note(p, err)
					unix.Close(sub)
					continue
				}
				h.fix(sub, p, &st, want, perm)
			}
			h.walk(sub, p, git)
			continue
		}
		if git && st.Nlink > 1 && st.Uid != h.gw.uid && st.Mode&unix.S_IFMT != unix.S_IFLNK {
			// The account's, and linked elsewhere: taking it back could take a file
			// outside the checkout from whoever owns it, leaving it lets the account
			// write .git. Neither: the deploy stops and says so.
			h.note(p, errors.New("a file in .git that is not the gateway's has another hard link; remove the link or clone the checkout again"))
			continue
		}
		if !h.needs(&st, want, perm) {
			continue
		}
		// Only a file needing a mode is opened for reading (only in .git, where files
		// are the gateway's); for a change of owner, O_PATH opens without reading.
		flags := unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if h.needsMode(&st, perm) {
			flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
		}
		f, err := unix.Openat(fd, name, flags, 0)
		if err == unix.ELOOP {
			continue // became a link since the fstatat: left for the next hand-over
		}
		if err != nil {
			h.note(p, err)
			continue
		}
		if err := unix.Fstat(f, &st); err != nil {
			h.note(p, err)
		} else if st.Mode&unix.S_IFMT != unix.S_IFDIR { // a folder swapped in: next time
			h.fix(f, p, &st, want, perm)
		}
		unix.Close(f)
	}
}

func (h *handover) needs(st *unix.Stat_t, want owner, perm uint32) bool {
	return h.needsOwner(st, want) || h.needsMode(st, perm)
}

// needsOwner: a file with more than one link is never given away: a hard link to a
// file elsewhere (where protected_hardlinks is off) would hand that file to a.
func (h *handover) needsOwner(st *unix.Stat_t, want owner) bool {
	kind := st.Mode & unix.S_IFMT
	return (st.Uid != want.uid || st.Gid != want.gid) && (kind == unix.S_IFDIR || st.Nlink <= 1)
}

func (h *handover) needsMode(st *unix.Stat_t, perm uint32) bool {
	mode := uint32(st.Mode & 0o7777)
	return perm != 0 && st.Mode&unix.S_IFMT != unix.S_IFLNK && gitMode(mode, perm) != mode
}

// gitMode is the mode an entry of .git gets: perm added for the account's group, and no
// write for the group or others, which an account that once owned the checkout may have
// left there.
func gitMode(mode, perm uint32) uint32 { return (mode | perm) &^ 0o022 }

// fix changes the open file f (fstat'ed into st; opened with O_PATH unless it needs a
// mode) to be want's with perm added.
func (h *handover) fix(f int, p string, st *unix.Stat_t, want owner, perm uint32) {
	if h.needsOwner(st, want) {
		// fchown does not take an O_PATH descriptor; fchownat on it with AT_EMPTY_PATH
		// changes exactly the opened inode, a link itself included.
		h.note(p, unix.Fchownat(f, "", int(want.uid), int(want.gid), unix.AT_EMPTY_PATH))
	}
	if h.needsMode(st, perm) {
		h.note(p, unix.Fchmod(f, gitMode(uint32(st.Mode&0o7777), perm)))
	}
}
