package repos

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// workTree is the only way the updater touches files in a checkout's work tree; the
// upstream is not trusted, and its trees decide which paths are touched. Two rules
// hold for every call:
//
//   - Every path is checked against git's verify_path rules (validPath), so nothing
//     names .git, one of its NTFS or HFS aliases, "..", or an absolute path.
//   - Every leading component is checked with Lstat and must be a real directory, as
//     git's has_symlink_leading_path does; the final component is never followed
//     (Lstat, Readlink, unlink of the link itself, rename over it). A path below a
//     symlink does not exist as far as the work tree is concerned.
//
// Underneath, every call goes through an os.Root: the checkout's, or one opened from
// it on a verified subdirectory. An os.Root cannot be talked out of its directory, so
// even a directory swapped for a symlink between our Lstat and the call (no upstream
// can do that; a local process could) would not lead outside the checkout. os.Root
// alone is not enough: it follows a symlink that stays inside the checkout, such as
// one into .git, and it knows nothing of .git's names.
//
// Directories are opened one component at a time from their verified parent and kept
// open along the current path (chain), so a sorted walk over the index opens each
// directory once and then does one system call per file, as plain os.Lstat would.
type workTree struct {
	root  *os.Root
	chain []openDir // directories opened for the last path, outermost first
}

type openDir struct {
	path string // slash-separated, relative to the checkout
	dir  *os.Root
}

func openWorkTree(path string) (*workTree, error) {
	r, err := os.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("open work tree: %w", err)
	}
	return &workTree{root: r}, nil
}

// Close releases the checkout and every directory kept open.
func (w *workTree) Close() error {
	w.drop(0)
	return w.root.Close()
}

func (w *workTree) drop(from int) {
	for _, d := range w.chain[from:] {
		_ = d.dir.Close()
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

// parent returns the verified directory holding p and p's last component.
func (w *workTree) parent(p string) (*os.Root, string, error) {
	if err := validPath(p, false); err != nil {
		return nil, "", err
	}
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return w.root, p, nil
	}
	d, err := w.dir(p[:i], p)
	return d, p[i+1:], err
}

// dir returns the directory rel ("" for the checkout), opening each component from
// its parent after checking with Lstat that it is a real directory. want names the
// path the caller wants, for messages.
func (w *workTree) dir(rel, want string) (*os.Root, error) {
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
			parent = w.chain[k].dir
		} else {
			w.drop(min(k, len(w.chain)))
			d, err := openVerifiedDir(parent, rel[start:end], prefix, want)
			if err != nil {
				return nil, err
			}
			w.chain = append(w.chain, openDir{path: prefix, dir: d})
			parent = d
		}
		if end == len(rel) {
			return parent, nil
		}
		start = end + 1
	}
}

func openVerifiedDir(parent *os.Root, name, prefix, want string) (*os.Root, error) {
	fi, err := parent.Lstat(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", want, err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, &blockedError{path: want, at: prefix, what: "a symlink"}
	case !fi.IsDir():
		return nil, &blockedError{path: want, at: prefix, what: "not a directory"}
	}
	d, err := parent.OpenRoot(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", want, err)
	}
	// OpenRoot follows a symlink that replaced the directory since the Lstat; the
	// inode tells.
	if st, err := d.Stat("."); err != nil || !os.SameFile(fi, st) {
		_ = d.Close()
		return nil, &blockedError{path: want, at: prefix, what: "replaced while it was opened"}
	}
	return d, nil
}

// Lstat describes p itself, never what a symlink at p points to.
func (w *workTree) Lstat(p string) (fs.FileInfo, error) {
	d, base, err := w.parent(p)
	if err != nil {
		return nil, err
	}
	return d.Lstat(base)
}

// Readlink returns the target of the symlink p.
func (w *workTree) Readlink(p string) (string, error) {
	d, base, err := w.parent(p)
	if err != nil {
		return "", err
	}
	return d.Readlink(base)
}

// Open opens the regular file p for reading; fi is what Lstat said p is, and
// anything else found there (a symlink, a swapped file) is refused.
func (w *workTree) Open(p string, fi fs.FileInfo) (*os.File, error) {
	d, base, err := w.parent(p)
	if err != nil {
		return nil, err
	}
	f, err := d.OpenFile(base, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || !os.SameFile(fi, st) {
		_ = f.Close()
		return nil, fmt.Errorf("%s changed while it was opened", p)
	}
	return f, nil
}

// Remove removes p itself: a file, a symlink (not what it points to) or an empty
// directory. A p below a symlink does not exist, so nothing is removed.
func (w *workTree) Remove(p string) error {
	d, base, err := w.parent(p)
	if err != nil {
		return err
	}
	w.forget(p)
	return d.Remove(base)
}

// Mkdir makes the directory p; its parent must exist.
func (w *workTree) Mkdir(p string) error {
	d, base, err := w.parent(p)
	if err != nil {
		return err
	}
	return d.Mkdir(base, 0o755)
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
// never half written; it returns what p is afterwards.
func (w *workTree) WriteFile(p string, r io.Reader, perm fs.FileMode) (fs.FileInfo, error) {
	d, base, err := w.parent(p)
	if err != nil {
		return nil, err
	}
	var f *os.File
	var tmp string
	for range 100 {
		tmp = tempPrefix + randomSuffix()
		f, err = d.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		w.forget(p)
		err = d.Rename(tmp, base)
	}
	if err != nil {
		_ = d.Remove(tmp)
		return nil, err
	}
	return d.Lstat(base)
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
		err = d.Symlink(target, tmp)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	w.forget(p)
	if err := d.Rename(tmp, base); err != nil {
		_ = d.Remove(tmp)
		return nil, err
	}
	return d.Lstat(base)
}

// ReadDir lists the directory rel ("" for the checkout) without following symlinks.
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
	f, err := d.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, err
}

// WalkFiles calls fn with the path of every file and symlink under the directory
// rel, descending only into real directories.
func (w *workTree) WalkFiles(rel string, fn func(p string) error) error {
	ents, err := w.ReadDir(rel)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := rel + "/" + e.Name()
		if e.IsDir() {
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
// changes its entries relative to it, links themselves (AT_SYMLINK_NOFOLLOW). A folder
// swapped for a link meanwhile is not entered (O_NOFOLLOW). A file with more than one
// link is never given away: a hard link to a file elsewhere (where protected_hardlinks is
// off) would hand that file to a.
func handOver(path string, a *Account) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("hand the checkout to %s: open %s: %w", a.Name, path, err)
	}
	h := &handover{a: a, gw: owner{uint32(os.Geteuid()), uint32(os.Getegid())}}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return fmt.Errorf("hand the checkout to %s: %w", a.Name, err)
	}
	if st.Uid != h.gw.uid || st.Gid != a.GID {
		h.note(".", unix.Fchown(fd, int(h.gw.uid), int(a.GID)))
	}
	if mode := uint32(st.Mode & 0o7777); mode|0o070|unix.S_ISVTX != mode {
		h.note(".", unix.Fchmod(fd, mode|0o070|unix.S_ISVTX))
	}
	h.walk(fd, ".", false)
	if len(h.errs) > 0 {
		more := ""
		if len(h.errs) > 1 {
			more = " (and " + strconv.Itoa(len(h.errs)-1) + " more)"
		}
		return fmt.Errorf("hand the checkout to %s: %w%s", a.Name, h.errs[0], more)
	}
	return nil
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
		kind := st.Mode & unix.S_IFMT
		if (st.Uid != want.uid || st.Gid != want.gid) && (kind == unix.S_IFDIR || st.Nlink <= 1) {
			h.note(p, unix.Fchownat(fd, name, int(want.uid), int(want.gid), unix.AT_SYMLINK_NOFOLLOW))
		}
		if kind == unix.S_IFDIR && perm != 0 {
			perm |= 0o010 // a group-readable folder is also searchable
		}
		// Only in .git, which a cannot write, so the entry cannot turn into a link
		// between the stat and the chmod (which would follow it).
		if mode := uint32(st.Mode & 0o7777); perm != 0 && kind != unix.S_IFLNK && mode|perm != mode {
			h.note(p, unix.Fchmodat(fd, name, mode|perm, 0))
		}
		if kind != unix.S_IFDIR {
			continue
		}
		sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			h.note(p, err)
			continue
		}
		h.walk(sub, p, git)
	}
}
