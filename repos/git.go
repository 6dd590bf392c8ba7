package repos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"golang.org/x/crypto/ssh"
)

// Spec says where a checkout lives and how to reach its origin.
type Spec struct {
	Name       string // repository name in the config, for messages
	Path       string // the checkout (work tree with .git)
	Branch     string // e.g. "main"
	URL        string // optional; clone into Path when Path does not exist
	Mode       string // "ff" (default when "") or "reset"
	SSHKey     string // optional path to a private key file (SSH URLs)
	KnownHosts string // optional known_hosts file for SSH; default: the user's ~/.ssh/known_hosts
	Token      string // optional HTTPS token (already resolved from env); basic auth user "x-access-token"
	// Depth, when above 0, clones and fetches only that many commits from the branch's
	// tip (a shallow checkout); 0 fetches the whole history.
	Depth int
	// Limits bound the objects a fetch may bring and the update may read.
	Limits ObjectLimits
}

// UpdateResult says what an update did.
type UpdateResult struct {
	From    string // full hash of HEAD before ("" when freshly cloned)
	To      string // full hash of HEAD after
	Cloned  bool
	Changed int // files written or removed in the work tree
	// Target is the commit a failed update was moving to, once it was known (after the
	// fetch); "" on success (see To) or when the update failed before.
	Target string
}

// Update modes, the values of Spec.Mode.
const (
	// ModeFastForward only moves forward and refuses diverged history or local
	// modifications; it is the default.
	ModeFastForward = "ff"
	// ModeReset makes tracked content equal origin's, discarding local commits
	// and modifications; untracked and ignored files still survive.
	ModeReset = "reset"
)

const (
	// sshDialTimeout bounds the TCP connect when the deploy context has no
	// nearer deadline; the SSH handshake after it is bounded only by the watchdog.
	sshDialTimeout = 30 * time.Second

	// tempPrefix names the files written beside their targets before the rename,
	// so a crash leaves something recognisable rather than a half-written file.
	tempPrefix = ".hookgate-tmp-"

	// objectCacheSize bounds go-git's cache of decoded objects (and delta bases) per open
	// repository. go-git's default, 96 MiB, filled up with blobs during a clone's checkout
	// and was most of the gateway's peak; see PERFORMANCE.md ("Big repositories").
	objectCacheSize = 16 * cache.MiByte

	// largeObjectThreshold is the size above which an object is read from its pack as a
	// stream rather than whole into memory, so a big file reaches the work tree in pieces.
	largeObjectThreshold = 1 << 20

	// unshallowDepth is git's "infinite" depth (fetch --unshallow): fetching with it
	// completes a shallow checkout's history once depth is removed from its configuration.
	unshallowDepth = 0x7fffffff
)

// maxShallowDeepen is the most commits a fast-forward of a shallow checkout fetches
// below origin's tip while looking for HEAD; a variable so tests can make it small.
var maxShallowDeepen = 1024

// Update fetches Branch from origin and moves the checkout to it. It is bounded by ctx,
// including SSH dialing, which go-git does not bound by context. Once the fetch is
// done the local update runs to the end regardless, as stopping halfway would leave
// a work tree that matches no commit.
//
// The work tree is updated by hand rather than with go-git's Pull, Reset or Checkout:
// those delete untracked and ignored files (node_modules, .env, build output), and
// Worktree.Status hashes every file. Callers must not run two Updates on one path at once.
func Update(ctx context.Context, s Spec) (UpdateResult, error) {
	return UpdateTo(ctx, s, "")
}

// UpdateTo is Update to a given commit of the branch's history instead of its head: a
// rollback. target is a full hash, "" for the head; one that is not the fetched head or an
// ancestor of it is refused (ErrUnknownCommit). In ff mode the move may go backwards,
// which is not a fast-forward: it is allowed when HEAD is itself in the fetched branch's
// history (so no local commit is lost) and, as for any ff update, nothing tracked is
// modified locally.
func UpdateTo(ctx context.Context, s Spec, target string) (UpdateResult, error) {
	res, err := update(ctx, s, target)
	if err != nil {
		if s.Name != "" {
			err = fmt.Errorf("repository %s: %w", s.Name, err)
		}
		return res, redact(err, s.Token)
	}
	return res, nil
}

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

func update(ctx context.Context, s Spec, target string) (UpdateResult, error) {
	if s.Path == "" {
		return UpdateResult{}, errors.New("no checkout path is set")
	}
	if s.Branch == "" || plumbing.NewBranchReferenceName(s.Branch).Validate() != nil {
		return UpdateResult{}, fmt.Errorf("invalid branch name %q", s.Branch)
	}
	mode := s.Mode
	if mode == "" {
		mode = ModeFastForward
	}
	if mode != ModeFastForward && mode != ModeReset {
		return UpdateResult{}, fmt.Errorf("unknown mode %q (want %q or %q)", s.Mode, ModeFastForward, ModeReset)
	}
	path, err := filepath.Abs(s.Path)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("checkout path %s: %w", s.Path, err)
	}
	if err := waitForAbandoned(ctx, path); err != nil {
		return UpdateResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return UpdateResult{}, fmt.Errorf("update not started: %w", err)
	}

	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if s.URL == "" {
			return UpdateResult{}, fmt.Errorf("checkout %s does not exist and no url is set", path)
		}
		res, err := cloneCheckout(ctx, path, s)
		if err != nil || target == "" || target == res.To {
			return res, err
		}
		// A rollback into a checkout that had to be cloned: move the fresh clone back.
		res2, err := update(ctx, s, target)
		res2.From, res2.Cloned, res2.Changed = "", true, res.Changed
		return res2, err
	case err != nil:
		return UpdateResult{}, fmt.Errorf("checkout %s: %w", path, err)
	case !fi.IsDir():
		return UpdateResult{}, fmt.Errorf("checkout %s is not a directory", path)
	}

	repo, closeRepo, err := openCheckoutKeepingPacks(path, s.Limits)
	if err != nil {
		return UpdateResult{}, err
	}
	defer func() { closeRepo() }()
	if st, ok := fsStorage(repo.Storer); ok {
		// Before the fetch: go-git reads a ref lock left in refs/heads as a ref.
		removeDeadLock(st.Filesystem())
		removeEmptyTrackingRef(st.Filesystem(), plumbing.NewRemoteReferenceName("origin", s.Branch).String())
	}
	remote, err := repo.Remote("origin")
	if err != nil {
		return UpdateResult{}, fmt.Errorf("checkout %s: remote origin: %w", path, err)
	}
	urls := remote.Config().URLs
	if len(urls) == 0 {
		return UpdateResult{}, fmt.Errorf("checkout %s: remote origin has no url", path)
	}
	auth, err := authFor(ctx, urls[0], s)
	if err != nil {
		return UpdateResult{}, err
	}
	refspec := config.RefSpec(fmt.Sprintf("+refs/heads/%[1]s:refs/remotes/origin/%[1]s", s.Branch))
	shallowList, err := repo.Storer.Shallow()
	if err != nil {
		return UpdateResult{}, fmt.Errorf("checkout %s: read the shallow list: %w", path, err)
	}
	shallow := len(shallowList) > 0
	fetch := func(depth int) error {
		gaveUp, err := watchdog(ctx, path, func() error {
			return repo.FetchContext(ctx, &git.FetchOptions{
				RemoteName: "origin",
				RefSpecs:   []config.RefSpec{refspec},
				Auth:       auth,
				Tags:       git.NoTags,
				Depth:      depth,
			})
		}, closeRepo)
		if gaveUp {
			closeRepo = func() {} // the abandoned fetch still reads the pack files
		}
		switch {
		case errors.Is(err, git.NoErrAlreadyUpToDate):
		case isMissingBranch(err):
			return fmt.Errorf("fetch origin %s: branch %q not found on origin", s.Branch, s.Branch)
		case err != nil:
			return fmt.Errorf("fetch origin %s: %w", s.Branch, err)
		}
		// The fetch may have been abandoned above, but on success it is finished,
		// so repo is ours alone again.
		if shallow {
			return pruneShallow(repo)
		}
		return nil
	}
	// A shallow checkout fetches without a depth first, as git fetch does: origin sends
	// the new commits down to HEAD and only the objects HEAD lacks. go-git tells origin
	// where the checkout's history stops only along with a depth, and origin then sent
	// the whole tree again each time (151 MB for one changed file), so the fetch is
	// checked instead: the walk from origin's tip must meet HEAD (ff), and the tip's tree
	// must be complete; if not, a fetch with the depth, which tells origin where the
	// history stops, brings what is missing. With depth removed from the configuration,
	// the rest of the history is fetched, as git fetch --unshallow does.
	first := 0
	if shallow && s.Depth == 0 {
		first = unshallowDepth
	}
	tracking := plumbing.NewRemoteReferenceName("origin", s.Branch)
	before, err := repo.Storer.Reference(tracking)
	if err != nil && !errors.Is(err, plumbing.ErrReferenceNotFound) {
		return UpdateResult{}, fmt.Errorf("read %s: %w", tracking, err)
	}
	if err := fetch(first); err != nil {
		return UpdateResult{}, err
	}
	ref, err := repo.Storer.Reference(tracking)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("read %s after fetch: %w", tracking, err)
	}
	if shallow && first == 0 {
		// The tracking ref goes back to where it was whenever the fetched tip is not
		// used: go-git would offer it to origin as a commit the checkout has, and
		// origin would leave out its objects again; git fsck would call it broken.
		restore := func() error {
			if before != nil {
				return repo.Storer.SetReference(before)
			}
			return repo.Storer.RemoveReference(tracking)
		}
		var complete bool
		if mode == ModeFastForward {
			err = deepenToHead(repo, s, s.Depth, ref.Hash(), fetch)
		}
		if err == nil {
			complete, err = treeComplete(repo, ref.Hash())
		}
		if err == nil && !complete {
			// A depth of at least 2, since go-git asks for nothing it has at depth 1.
			if err = restore(); err == nil {
				err = fetch(max(s.Depth, 2))
			}
			if err == nil {
				complete, err = treeComplete(repo, ref.Hash())
			}
			if err == nil && !complete {
				err = fmt.Errorf("fetch origin %s into a shallow checkout: objects are missing after fetching with depth", s.Branch)
			}
		}
		if err != nil {
			if rerr := restore(); rerr != nil {
				err = errors.Join(err, fmt.Errorf("put %s back: %w", tracking, rerr))
			}
			return UpdateResult{}, err
		}
	}
	m := mover{
		repo:   repo,
		root:   path,
		branch: s.Branch,
		want:   plumbing.NewBranchReferenceName(s.Branch),
		target: ref.Hash(),
		reset:  mode == ModeReset,
	}
	if target != "" {
		if m.target, err = resolveInHistory(repo, ref.Hash(), target); err != nil {
			return UpdateResult{}, err
		}
		m.tip = ref.Hash()
	}
	res, err := m.run()
	if err != nil {
		res.Target = m.target.String()
		res.To = res.From // refs/heads moves last, so on failure HEAD has not moved
	}
	return res, err
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

func isMissingBranch(err error) bool {
	return errors.Is(err, git.NoMatchingRefSpecError{}) ||
		errors.Is(err, plumbing.ErrReferenceNotFound) ||
		errors.Is(err, transport.ErrEmptyRemoteRepository)
}

// cloneCheckout clones into a hidden sibling first and renames it into place, so an
// interrupted clone never leaves a half-made checkout at path. go-git only fetches;
// the work tree is written by the same mover as every update, so a hostile first
// commit meets the same guard (workTree) as a later one.
func cloneCheckout(ctx context.Context, path string, s Spec) (UpdateResult, error) {
	parent, base := filepath.Dir(path), filepath.Base(path)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return UpdateResult{}, fmt.Errorf("clone %s: %w", path, err)
	}
	prefix := "." + base + ".hookgate-clone-"
	// Leftovers of clones abandoned by a timeout; waitForAbandoned made sure none runs.
	if ents, err := os.ReadDir(parent); err == nil {
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
				_ = os.RemoveAll(filepath.Join(parent, e.Name()))
			}
		}
	}
	tmp, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("clone %s: %w", path, err)
	}
	auth, err := authFor(ctx, s.URL, s)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return UpdateResult{}, err
	}
	defer collectHarderDuringClones()()
	// The pack files stay open for the checkout below, which reads every file's blob.
	var st *gatedStorage
	var repo *git.Repository
	err = withWatchdog(ctx, path, func() error {
		// git.PlainCloneContext, but with newStorage's bounds instead of go-git's defaults,
		// and without go-git's checkout: see below.
		wt := osfs.New(tmp)
		dot, err := wt.Chroot(git.GitDirName)
		if err != nil {
			_ = os.RemoveAll(tmp)
			return err
		}
		st = newStorage(dot, true, s.Limits)
		r, err := git.CloneContext(ctx, st, wt, &git.CloneOptions{
			URL:           s.URL,
			Auth:          auth,
			RemoteName:    "origin",
			ReferenceName: plumbing.NewBranchReferenceName(s.Branch),
			SingleBranch:  true,
			Tags:          git.NoTags,
			Depth:         s.Depth,
			NoCheckout:    true,
		})
		if err == nil {
			err = ctx.Err() // the caller may have given up on us already
		}
		if err != nil {
			_ = st.Close()
			_ = os.RemoveAll(tmp)
			return err
		}
		repo = r
		return nil
	})
	switch {
	case isMissingBranch(err):
		return UpdateResult{}, fmt.Errorf("clone %s: branch %q not found on origin", path, s.Branch)
	case err != nil:
		return UpdateResult{}, fmt.Errorf("clone %s: %w", path, err)
	}
	defer func() { _ = st.Close() }()
	head, err := repo.Head()
	if err != nil {
		_ = os.RemoveAll(tmp)
		return UpdateResult{}, fmt.Errorf("clone %s: read HEAD: %w", path, err)
	}
	// The work tree is written by the same writer as every update (as a reset of an empty
	// checkout): it checks origin's paths the same way and streams big blobs, and on
	// 20,000 files it peaked 25 MB lower than go-git's checkout for about the same CPU time
	// (PERFORMANCE.md, "Big repositories").
	m := mover{
		repo:   repo,
		root:   tmp,
		branch: s.Branch,
		want:   plumbing.NewBranchReferenceName(s.Branch),
		target: head.Hash(),
		reset:  s.Mode == ModeReset,
		fresh:  true,
	}
	res, err := m.run()
	if err != nil {
		_ = os.RemoveAll(tmp)
		return UpdateResult{}, fmt.Errorf("clone %s: check out %s: %w", path, shortHash(head.Hash()), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.RemoveAll(tmp)
		return UpdateResult{}, fmt.Errorf("clone %s: move into place: %w", path, err)
	}
	return UpdateResult{To: head.Hash().String(), Cloned: true, Changed: res.Changed}, nil
}

// cloneGCPercent is the garbage collector's GOGC while a clone runs. go-git's pack parser
// holds up to 96 MiB of delta bases plus some 200 bytes per object until the clone's end,
// and with the default of 100 the heap grew to twice that before a collection: on 50,000
// commits a 462 MB peak at 100 against 338 MB at 25, for a third more CPU time on a clone
// that happens once per checkout (PERFORMANCE.md, "Big repositories").
const cloneGCPercent = 25

var clonesGC struct {
	sync.Mutex
	running int
	prev    int  // the setting before the first clone in flight
	changed bool // whether it was higher than cloneGCPercent and so lowered
}

// collectHarderDuringClones lowers GOGC to cloneGCPercent until the returned func has
// been called by every clone in flight. A lower setting from the environment is kept,
// and GOGC=off is left alone.
func collectHarderDuringClones() (restore func()) {
	clonesGC.Lock()
	defer clonesGC.Unlock()
	if clonesGC.running == 0 {
		clonesGC.prev = debug.SetGCPercent(cloneGCPercent)
		clonesGC.changed = clonesGC.prev > cloneGCPercent
		if !clonesGC.changed {
			debug.SetGCPercent(clonesGC.prev)
		}
	}
	clonesGC.running++
	return sync.OnceFunc(func() {
		clonesGC.Lock()
		defer clonesGC.Unlock()
		clonesGC.running--
		if clonesGC.running == 0 && clonesGC.changed {
			debug.SetGCPercent(clonesGC.prev)
		}
	})
}

// abandoned maps a checkout path to a channel closed when a fetch or clone that
// Update stopped waiting for (on timeout) has really ended; it may still be
// writing into the repository, so the next Update there waits for it.
var abandoned = struct {
	sync.Mutex
	ops map[string]chan struct{}
}{ops: map[string]chan struct{}{}}

func waitForAbandoned(ctx context.Context, path string) error {
	abandoned.Lock()
	ch := abandoned.ops[path]
	abandoned.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("an earlier timed-out fetch or clone of %s is still running: %w", path, ctx.Err())
	}
}

// withWatchdog runs fn, which must honour ctx where it can, but returns when ctx
// ends even if fn does not: go-git's SSH transport dials and handshakes without
// a context. The next Update of path waits for an abandoned fn to end.
func withWatchdog(ctx context.Context, path string, fn func() error) error {
	_, err := watchdog(ctx, path, fn, nil)
	return err
}

// watchdog is withWatchdog that also says whether it gave up on fn; if so, it runs
// after (when not nil) once fn has really returned, since only then are the
// resources fn uses free to release.
func watchdog(ctx context.Context, path string, fn func() error, after func()) (gaveUp bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("not started: %w", err)
	}
	done := make(chan struct{})
	var fnErr error
	go func() {
		defer close(done)
		fnErr = fn()
	}()
	select {
	case <-done:
		return false, fnErr
	case <-ctx.Done():
	}
	select {
	case <-done: // finished at the same moment: keep its result
		return false, fnErr
	default:
	}
	abandoned.Lock()
	abandoned.ops[path] = done
	abandoned.Unlock()
	go func() {
		<-done
		if after != nil {
			after()
		}
		abandoned.Lock()
		if abandoned.ops[path] == done {
			delete(abandoned.ops, path)
		}
		abandoned.Unlock()
	}()
	return true, fmt.Errorf("gave up (%w); it goes on in the background and the next update waits for it", ctx.Err())
}

// authFor picks credentials by the URL's protocol, since go-git rejects an SSH
// auth method on an HTTPS transport and the other way round.
func authFor(ctx context.Context, rawURL string, s Spec) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse origin url: %w", err)
	}
	switch ep.Protocol {
	case "ssh":
		if s.SSHKey == "" {
			return nil, nil
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeysFromFile(user, s.SSHKey, "")
		if err != nil {
			return nil, fmt.Errorf("load ssh key %s: %w", s.SSHKey, err)
		}
		var files []string
		if s.KnownHosts != "" {
			files = []string{s.KnownHosts}
		}
		db, err := gitssh.NewKnownHostsDb(files...)
		if err != nil {
			return nil, fmt.Errorf("load known_hosts: %w", err)
		}
		keys.HostKeyCallback = db.HostKeyCallback()
		port := ep.Port
		if port == 0 {
			port = 22
		}
		timeout := sshDialTimeout
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
			timeout = max(time.Until(dl), time.Millisecond)
		}
		return &sshAuth{
			PublicKeys: keys,
			// Without these, a server offering an RSA key first fails against an
			// ed25519 known_hosts line; go-git only fills them when it owns the callback.
			algorithms: db.HostKeyAlgorithms(net.JoinHostPort(ep.Host, strconv.Itoa(port))),
			timeout:    timeout,
		}, nil
	case "http", "https":
		if s.Token == "" {
			return nil, nil
		}
		return &githttp.BasicAuth{Username: "x-access-token", Password: s.Token}, nil
	}
	return nil, nil
}

// sshAuth adds a dial timeout and host key algorithms to go-git's public key auth.
type sshAuth struct {
	*gitssh.PublicKeys
	algorithms []string
	timeout    time.Duration
}

// ClientConfig returns the SSH client configuration with the dial timeout set.
func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	cfg, err := a.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = a.timeout
	if len(a.algorithms) > 0 {
		cfg.HostKeyAlgorithms = a.algorithms
	}
	return cfg, nil
}

// mover brings one open checkout to target. Its fields are set by update.
type mover struct {
	repo   *git.Repository
	root   string
	branch string
	want   plumbing.ReferenceName
	target plumbing.Hash
	reset  bool
	fresh  bool // a clone without a checkout: nothing is in the work tree yet
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

// checkObstacles finds, before anything is touched, every untracked file or
// directory that writing the change set would destroy. Tree paths from origin are
// checked too: a hostile tree must not write into .git or outside the checkout.
func (m *mover) checkObstacles(changes []change, tracked map[string]*index.Entry) error {
	deleted := map[string]bool{}
	for _, c := range changes {
		if err := validPath(c.path, c.entry != nil && c.entry.Mode == filemode.Symlink); err != nil {
			return err
		}
		if c.entry == nil {
			deleted[c.path] = true
		}
	}
	var untracked []string
	for _, c := range changes {
		if c.entry == nil {
			continue
		}
		// A file or symlink where a directory must go is fine only if it is a
		// tracked file on its way out; symlinks are never followed, and what is
		// below one does not exist.
		parts := strings.Split(c.path, "/")
		for i := 1; i < len(parts); i++ {
			q := strings.Join(parts[:i], "/")
			fi, err := m.wt.Lstat(q)
			if isNotExist(err) {
				break
			}
			if err != nil {
				return fmt.Errorf("check %s: %w", q, err)
			}
			if fi.IsDir() {
				continue
			}
			if !deleted[q] {
				untracked = append(untracked, q)
			}
			break
		}
		fi, err := m.wt.Lstat(c.path)
		if isNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check %s: %w", c.path, err)
		}
		if fi.IsDir() {
			if c.entry.Mode == filemode.Submodule {
				continue
			}
			// Only removable if every file under it is tracked and being deleted.
			err := m.wt.WalkFiles(c.path, func(p string) error {
				if !deleted[p] {
					return fmt.Errorf("directory %s holds untracked files (%s), so it cannot be replaced by a file from origin; move them away", c.path, p)
				}
				return nil
			})
			if err != nil {
				return err
			}
			continue
		}
		if tracked[c.path] == nil && !m.reset && !m.journaled(c.path) {
			untracked = append(untracked, c.path)
		}
	}
	if len(untracked) > 0 {
		set := map[string]bool{}
		for _, p := range untracked {
			set[p] = true
		}
		if m.reset {
			// Only reached for files sitting where origin needs a directory.
			return nil
		}
		return fmt.Errorf("untracked files in %s would be overwritten by origin/%s: %s; move them away or set mode = \"reset\"",
			m.root, m.branch, listPaths(set))
	}
	return nil
}

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
