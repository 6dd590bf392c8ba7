// This file owns resolving a commit a user names (full hash or prefix) in a checkout's history.
package checkout

import (
	"errors"
	"fmt"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// ErrUnknownCommit means a commit asked for is not in the branch's history as fetched.
var ErrUnknownCommit = errors.New("commit not in the branch's history")

// unknownCommitError is an ErrUnknownCommit whose message says which and why, once: it
// matches ErrUnknownCommit without repeating its text after its own.
type unknownCommitError struct{ msg string }

func (e *unknownCommitError) Error() string        { return e.msg }
func (e *unknownCommitError) Is(target error) bool { return target == ErrUnknownCommit }

func unknownCommit(format string, args ...any) error {
	return &unknownCommitError{fmt.Sprintf(format, args...)}
}

// MinCommitPrefix is the shortest commit prefix a rollback or pin accepts.
const MinCommitPrefix = 7

// ResolveCommit finds the commit of the checkout at path that want (a full hash or a
// prefix of at least MinCommitPrefix hex digits) names, among the history of origin's
// branch as last fetched (refs/remotes/origin/BRANCH, else the local branch). It only
// reads, so it may run beside a deploy.
func ResolveCommit(path, branch, want string) (string, error) {
	repo, err := openCheckout(path)
	if err != nil {
		return "", err
	}
	tip, err := repo.Storer.Reference(plumbing.NewRemoteReferenceName("origin", branch))
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		tip, err = repo.Storer.Reference(plumbing.NewBranchReferenceName(branch))
	}
	if err != nil {
		return "", fmt.Errorf("read origin/%s of %s: %w", branch, path, err)
	}
	h, err := resolveInHistory(repo, tip.Hash(), want)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// ResolveTagCommit is ResolveCommit for a tag target's checkout, whose deploys move along
// tags rather than a branch: want is a tag the checkout holds (NAME or refs/tags/NAME,
// fetched by an earlier deploy), which resolves to the commit it points to (an annotated
// tag peeled), or a commit (a full hash or a prefix of at least MinCommitPrefix hex
// digits) in the history of HEAD or of one of those tags: what a tag target's rollback
// can move to (see resolveInOwnHistory). It only reads, so it may run beside a deploy.
func ResolveTagCommit(path, want string) (string, error) {
	repo, err := openCheckout(path)
	if err != nil {
		return "", err
	}
	name := strings.TrimPrefix(want, "refs/tags/")
	if ref := plumbing.NewTagReferenceName(name); ref.Validate() == nil {
		if r, err := repo.Storer.Reference(ref); err == nil {
			h, err := peelToCommit(repo, r.Hash())
			if err != nil {
				return "", fmt.Errorf("tag %s of %s: %w", name, path, err)
			}
			return h.String(), nil
		}
	}
	if h, _, ok := resolveInOwnHistory(repo, want); ok {
		return h.String(), nil
	}
	if !looksLikeCommit(want) {
		// Neither a tag here nor a hash: say both, since a tag name is what was likely meant.
		return "", unknownCommit("%q is neither a tag deployed here before nor a commit hash (a prefix of at least %d hex digits)",
			want, MinCommitPrefix)
	}
	return "", unknownCommit("%s is not a tag deployed here before nor a commit in the history of the live commit or of those tags", want)
}

// looksLikeCommit says whether want can name a commit: hex, MinCommitPrefix to 64 digits.
func looksLikeCommit(want string) bool {
	want = strings.ToLower(want)
	return len(want) >= MinCommitPrefix && len(want) <= 64 && strings.Trim(want, "0123456789abcdef") == ""
}

// resolveInHistory returns the one commit reachable from tip whose hash starts with want.
func resolveInHistory(repo *git.Repository, tip plumbing.Hash, want string) (plumbing.Hash, error) {
	want = strings.ToLower(want)
	if !looksLikeCommit(want) {
		return plumbing.ZeroHash, unknownCommit("%q is not a commit hash or a prefix of at least %d hex digits",
			want, MinCommitPrefix)
	}
	head, err := repo.CommitObject(tip)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read branch head %s: %w", shortHash(tip), err)
	}
	var found []plumbing.Hash
	iter := object.NewCommitPreorderIter(head, nil, nil)
	err = iter.ForEach(func(c *object.Commit) error {
		if strings.HasPrefix(c.Hash.String(), want) {
			found = append(found, c.Hash)
			if len(want) == len(c.Hash.String()) || len(found) > 1 {
				return storer.ErrStop
			}
		}
		return nil
	})
	// A shallow history ends at a parent that is not there: what was walked counts.
	if err != nil && !errors.Is(err, plumbing.ErrObjectNotFound) {
		return plumbing.ZeroHash, fmt.Errorf("walk the history of %s: %w", shortHash(tip), err)
	}
	switch len(found) {
	case 0:
		if shallow, _ := repo.Storer.Shallow(); len(shallow) > 0 {
			return plumbing.ZeroHash, unknownCommit("%s is not in the history of the branch at %s as fetched: the checkout is shallow (depth), "+
				"so commits older than its first fetch are not there; remove or raise depth to roll back further",
				want, shortHash(tip))
		}
		return plumbing.ZeroHash, unknownCommit("%s is not in the history of the branch at %s", want, shortHash(tip))
	case 1:
		return found[0], nil
	}
	return plumbing.ZeroHash, unknownCommit("%s names more than one commit; give more digits", want)
}

// inTip reports whether c is in the history of m.tip, so moving from c to an ancestor of
// the tip loses no local commit.
func (m *mover) inTip(c *object.Commit) (bool, error) {
	tip, err := m.repo.CommitObject(m.tip)
	if err != nil {
		return false, fmt.Errorf("read origin/%s commit %s: %w", m.branch, shortHash(m.tip), err)
	}
	ok, err := shallowIsAncestor(m.repo, c, tip)
	if err != nil {
		return false, fmt.Errorf("check that %s is in the history of origin/%s: %w", shortHash(c.Hash), m.branch, err)
	}
	return ok, nil
}

// Hash is an object name, go-git's own type, so that callers need not import go-git.
type Hash = plumbing.Hash

// NewHash is the Hash a hex object name spells (the zero Hash if it spells none).
func NewHash(s string) Hash { return plumbing.NewHash(s) }
