// This file owns the first clone and its memory.
package checkout

import (
	"context"
	"fmt"
	"github.com/hookgate/hookgate/internal/scrub"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// cloneCheckout clones into a hidden sibling first and renames it into place, so an
// interrupted clone never leaves a half-made checkout at path. go-git only fetches;
// the work tree is written by the same mover as every update, so a hostile first
// commit meets the same guard (workTree) as a later one.
//
// With tag set, the clone fetches refs/tags/tag alone and checks out the commit it points
// to, on Branch as any checkout.
func cloneCheckout(ctx context.Context, path string, s Spec, tag string) (UpdateResult, error) {
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
		var r *git.Repository
		if tag != "" {
			r, err = cloneTag(ctx, st, wt, s, tag, auth)
		} else {
			r, err = git.CloneContext(ctx, st, wt, &git.CloneOptions{
				URL:           s.URL,
				Auth:          auth,
				RemoteName:    "origin",
				ReferenceName: plumbing.NewBranchReferenceName(s.Branch),
				SingleBranch:  true,
				Tags:          git.NoTags,
				Depth:         s.Depth,
				NoCheckout:    true,
			})
		}
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
	case isMissingBranch(err) && tag != "":
		return UpdateResult{}, fmt.Errorf("clone %s: tag %q not found on origin", path, tag)
	case isMissingBranch(err):
		return UpdateResult{}, fmt.Errorf("clone %s: branch %q not found on origin", path, s.Branch)
	case err != nil:
		// The URL is what the operator got wrong when origin is not there; credentials
		// in it are scrubbed (and the token by the caller's redact).
		return UpdateResult{}, fmt.Errorf("clone %s into %s: %w", scrub.URL(s.URL), path, err)
	}
	defer func() { _ = st.Close() }()
	var head *plumbing.Reference
	if tag != "" {
		var ref *plumbing.Reference
		var h plumbing.Hash
		if ref, err = repo.Storer.Reference(plumbing.NewTagReferenceName(tag)); err == nil {
			if h, err = peelToCommit(repo, ref.Hash()); err != nil {
				err = fmt.Errorf("tag %s: %w", tag, err)
			}
		}
		head = plumbing.NewHashReference(plumbing.HEAD, h)
	} else {
		head, err = repo.Head()
	}
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

// cloneTag is the clone of a tag target: an empty repository on Branch with origin's URL,
// then a fetch of the one tag (the same bounded storage and depth as a branch's clone).
func cloneTag(ctx context.Context, st *gatedStorage, wt billy.Filesystem, s Spec, tag string, auth transport.AuthMethod) (*git.Repository, error) {
	r, err := git.InitWithOptions(st, wt, git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(s.Branch)})
	if err != nil {
		return nil, err
	}
	if _, err := r.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{s.URL}}); err != nil {
		return nil, err
	}
	ref := plumbing.NewTagReferenceName(tag)
	err = r.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("+%[1]s:%[1]s", ref))},
		Auth:       auth,
		Tags:       git.NoTags,
		Depth:      s.Depth,
	})
	return r, err
}
