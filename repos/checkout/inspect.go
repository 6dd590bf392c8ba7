// This file owns inspecting a checkout for the check command.
package checkout

import (
	"errors"
	"os"

	"github.com/go-git/go-git/v5/plumbing"
)

// Inspection is what `hookgate check` reports about a checkout. It only reads.
type Inspection struct {
	Missing   bool   // Path does not exist (a deploy clones it when URL is set)
	Head      string // HEAD commit
	OnBranch  string // the branch HEAD is on, "" if detached
	HasBranch bool   // refs/heads/<Branch> or refs/remotes/origin/<Branch> exists
	OriginURL string
}

// Inspect reads the checkout at s.Path without changing it.
func Inspect(s Spec) (Inspection, error) {
	if _, err := os.Stat(s.Path); errors.Is(err, os.ErrNotExist) {
		return Inspection{Missing: true, OriginURL: s.URL}, nil
	}
	repo, err := openCheckout(s.Path)
	if err != nil {
		return Inspection{}, err
	}
	var in Inspection
	if in.Head, in.OnBranch, err = Head(s.Path); err != nil {
		return Inspection{}, err
	}
	for _, name := range []plumbing.ReferenceName{
		plumbing.NewBranchReferenceName(s.Branch),
		plumbing.NewRemoteReferenceName("origin", s.Branch),
	} {
		if _, err := repo.Reference(name, true); err == nil {
			in.HasBranch = true
			break
		}
	}
	if rc, err := repo.Remote("origin"); err == nil && len(rc.Config().URLs) > 0 {
		in.OriginURL = rc.Config().URLs[0]
	}
	return in, nil
}
