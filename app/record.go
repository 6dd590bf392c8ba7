// This file owns recording a delivery: the hook path and replay hand it to the store,
// which decides on it (policy) and commits it before the caller answers.
package app

import (
	"context"

	"github.com/hookgate/hookgate/store"
)

// Record records delivery d in the store, which decides on d.Input: accepted (a deploy
// queued or joined) or ignored, or d as the caller rejected it. d comes back with its id,
// status, reason, HTTP status and deploy.
func (a *App) Record(ctx context.Context, d *store.Delivery) error {
	return a.store.RecordDelivery(ctx, d)
}
