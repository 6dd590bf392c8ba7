// This file owns the names the checkout library had while it lived in this package,
// forwarded to repos/checkout so that callers outside repos compile unchanged until they
// import it themselves (issue 23; step L3 deletes this file).
package repos

import (
	"context"

	"github.com/hookgate/hookgate/repos/checkout"
)

type (
	Spec         = checkout.Spec
	UpdateResult = checkout.UpdateResult
	Inspection   = checkout.Inspection
	ObjectLimits = checkout.ObjectLimits
)

const (
	ModeFastForward      = checkout.ModeFastForward
	ModeReset            = checkout.ModeReset
	MinCommitPrefix      = checkout.MinCommitPrefix
	DefaultMaxObjectSize = checkout.DefaultMaxObjectSize
)

var (
	ErrUnknownCommit  = checkout.ErrUnknownCommit
	ErrObjectTooLarge = checkout.ErrObjectTooLarge
)

func Update(ctx context.Context, s Spec) (UpdateResult, error) { return checkout.Update(ctx, s) }

func UpdateTo(ctx context.Context, s Spec, target string) (UpdateResult, error) {
	return checkout.UpdateTo(ctx, s, target)
}

func Head(path string) (hash, branch string, err error) { return checkout.Head(path) }

func Inspect(s Spec) (Inspection, error) { return checkout.Inspect(s) }

func RemoteHead(ctx context.Context, s Spec) (string, error) { return checkout.RemoteHead(ctx, s) }

func ResolveCommit(path, branch, want string) (string, error) {
	return checkout.ResolveCommit(path, branch, want)
}
