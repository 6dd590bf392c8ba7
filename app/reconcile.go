// This file owns an operator's reconcile: compare origin's head with what is live now.
package app

import (
	"context"
	"errors"

	"github.com/hookgate/hookgate/repos"
)

// Reconcile runs name's reconcile check now. A failed look-up of origin is not a refusal:
// the error wraps ErrOriginLookUp and the check still says what is live.
func (a *App) Reconcile(ctx context.Context, name string) (repos.Check, error) {
	if _, ok := a.repo(name); !ok {
		return repos.Check{}, unknownRepo(name)
	}
	if a.reconciler == nil {
		return repos.Check{}, &Error{Unavailable, "unavailable", "reconcile is not available in this process"}
	}
	c, err := a.reconciler.Reconcile(ctx, name)
	if errors.Is(err, repos.ErrUnknownRepo) { // a hook without a worker here
		return c, notDeployedHere(name)
	}
	return c, err
}
