// Package checkout brings a git checkout to a commit, and nothing else: it
// fetches, clones, plans and writes the work tree, resolves commits and reads
// origin, and knows no store. This file holds the update's entry points and
// its orchestration (Spec, Update, UpdateTo, update).
package checkout

import (
	"context"
	"errors"
	"fmt"
	"github.com/hookgate/hookgate/internal/scrub"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
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
	// Skipped says that Move.Changed answered false for every file changed since
	// Move.Live: the work tree and HEAD were left alone (From = To = HEAD) and Target is
	// the commit that was not deployed.
	Skipped bool
}

// Move says where UpdateMove goes, beyond Update's branch head.
type Move struct {
	// Target is UpdateTo's target: a commit of the fetched history ("" for its tip).
	Target string
	// Tag, when set, makes the update fetch refs/tags/Tag instead of Branch and go to the
	// commit it points to (an annotated tag peeled, through tags of tags). Branch stays
	// the local branch the checkout is on.
	Tag string
	// Live and Changed decide a deploy by what changed: when both are set, Target is "",
	// HEAD is Live (and no interrupted update is to be finished), Live is in the fetched
	// tip's history and differs from it, Changed is asked about
	// each path that differs between Live's tree and the tip's (both sides of a rename),
	// until it answers true. If it never does, the update stops before touching the work
	// tree (UpdateResult.Skipped). A Live that is not in the history (a force-push), or
	// not there at all, deploys.
	Live    string
	Changed func(path string) bool
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
	return UpdateMove(ctx, s, Move{Target: target})
}

// UpdateMove is UpdateTo with the rest of Move: a tag instead of the branch, and a
// deploy decided by the files changed since the live commit.
func UpdateMove(ctx context.Context, s Spec, mv Move) (UpdateResult, error) {
	res, err := update(ctx, s, mv)
	if err != nil {
		return res, s.named(err)
	}
	return res, nil
}

func update(ctx context.Context, s Spec, mv Move) (UpdateResult, error) {
	target := mv.Target
	if s.Path == "" {
		return UpdateResult{}, errors.New("no checkout path is set")
	}
	if s.Branch == "" || plumbing.NewBranchReferenceName(s.Branch).Validate() != nil {
		return UpdateResult{}, fmt.Errorf("invalid branch name %q", s.Branch)
	}
	if mv.Tag != "" && plumbing.NewTagReferenceName(mv.Tag).Validate() != nil {
		return UpdateResult{}, fmt.Errorf("invalid tag name %q", mv.Tag)
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
		res, err := cloneCheckout(ctx, path, s, mv.Tag)
		if err != nil || target == "" || target == res.To {
			return res, err
		}
		// A rollback into a checkout that had to be cloned: move the fresh clone back.
		res2, err := update(ctx, s, mv)
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
	tracking := plumbing.NewRemoteReferenceName("origin", s.Branch)
	what := s.Branch // what is fetched, for messages
	if mv.Tag != "" {
		// The tag alone, into its own name: not every tag (Tags stays NoTags), so a fetch
		// brings one tag's history, bounded by the pack scanner like a branch's.
		tracking = plumbing.NewTagReferenceName(mv.Tag)
		refspec = config.RefSpec(fmt.Sprintf("+%[1]s:%[1]s", tracking))
		what = "tag " + mv.Tag
	}
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
		case isMissingBranch(err) && mv.Tag != "":
			return fmt.Errorf("fetch origin %s: tag %q not found on origin", what, mv.Tag)
		case isMissingBranch(err):
			return fmt.Errorf("fetch origin %s: branch %q not found on origin", s.Branch, s.Branch)
		case err != nil:
			return fmt.Errorf("fetch %s from origin %s: %w", what, originURL(repo), err)
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
	tip := ref.Hash()
	if mv.Tag != "" {
		if tip, err = peelToCommit(repo, tip); err != nil {
			return UpdateResult{}, fmt.Errorf("tag %s: %w", mv.Tag, err)
		}
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
			err = deepenToHead(repo, s, s.Depth, tip, fetch)
		}
		if err == nil {
			complete, err = treeComplete(repo, tip)
		}
		if err == nil && !complete {
			// A depth of at least 2, since go-git asks for nothing it has at depth 1.
			if err = restore(); err == nil {
				err = fetch(max(s.Depth, 2))
			}
			if err == nil {
				complete, err = treeComplete(repo, tip)
			}
			if err == nil && !complete {
				err = fmt.Errorf("fetch origin %s into a shallow checkout: objects are missing after fetching with depth", what)
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
		target: tip,
		reset:  mode == ModeReset,
		tag:    mv.Tag,
	}
	if target != "" {
		resolved := false
		if mv.Tag != "" {
			// A tag target's rollback goes back to a commit deployed from an earlier tag,
			// which is in the checkout's own history (HEAD's) or in that of a tag fetched
			// by an earlier deploy, though maybe not in this tag's (a hotfix line).
			if h, in, ok := resolveInOwnHistory(repo, target); ok {
				m.target, tip, resolved = h, in, true
			}
		}
		if !resolved {
			m.target, err = resolveInHistory(repo, tip, target)
		}
		if err != nil {
			return UpdateResult{}, err
		}
		m.tip = tip
	} else if mv.Changed != nil && mv.Live != "" && atLive(repo, mv.Live) {
		skip, err := unchangedSince(repo, plumbing.NewHash(mv.Live), tip, mv.Changed)
		if err != nil {
			return UpdateResult{Target: tip.String()}, err
		}
		if skip {
			return UpdateResult{From: mv.Live, To: mv.Live, Target: tip.String(), Skipped: true}, nil
		}
	}
	res, err := m.run()
	if err != nil {
		res.Target = m.target.String()
		res.To = res.From // refs/heads moves last, so on failure HEAD has not moved
	}
	return res, err
}

// named is err as the functions of this package that take a Spec return it: naming the
// repository (when the Spec has a name) and with the token redacted.
func (s Spec) named(err error) error {
	if s.Name != "" {
		err = fmt.Errorf("repository %s: %w", s.Name, err)
	}
	return redact(err, s.Token)
}

func isMissingBranch(err error) bool {
	return errors.Is(err, git.NoMatchingRefSpecError{}) ||
		errors.Is(err, plumbing.ErrReferenceNotFound) ||
		errors.Is(err, transport.ErrEmptyRemoteRepository)
}

// originURL is the checkout's origin URL with credentials scrubbed, for errors that must
// say which repository could not be reached.
func originURL(repo *git.Repository) string {
	r, err := repo.Remote("origin")
	if err != nil || len(r.Config().URLs) == 0 {
		return "(no origin URL)"
	}
	return scrub.URL(r.Config().URLs[0])
}
