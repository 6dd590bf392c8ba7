// loops.go owns the loops Run starts beside serving: retention pruning and the node's
// heartbeat.

package gateway

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hookgate/hookgate/store"
)

// DefaultPruneEvery is how often the retention policy runs (Options.PruneEvery when unset).
const DefaultPruneEvery = time.Hour

// retention is what prune deletes: everything older than all, and deliveries without a
// valid signature older than unsigned; 0 turns either off.
type retention struct{ all, unsigned time.Duration }

// prune applies the retention policy at start and then every every, until ctx ends.
// policy is read each time, so a reload changes it. Deliveries without a valid signature
// are pruned after unsigned_retention even with retention off: unauthenticated clients
// must not make a long-running gateway's database grow without bound.
func prune(ctx context.Context, st *store.Store, every time.Duration, policy func() retention, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		keep := policy()
		if keep.unsigned > 0 && (keep.all <= 0 || keep.unsigned < keep.all) {
			n, err := st.PruneUnsigned(ctx, time.Now().Add(-keep.unsigned))
			switch {
			case err != nil && ctx.Err() == nil:
				logger.Error("prune unsigned deliveries", "err", err)
			case n > 0:
				logger.Info("pruned unsigned deliveries", "unsigned_retention", keep.unsigned, "deliveries", n)
			}
		}
		if keep.all > 0 {
			p, err := st.Prune(ctx, time.Now().Add(-keep.all))
			switch {
			case err != nil && ctx.Err() == nil:
				logger.Error("prune history", "err", err)
			case p.Deliveries > 0 || p.Deploys > 0:
				logger.Info("pruned history", "retention", keep.all, "deliveries", p.Deliveries, "deploys", p.Deploys)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heartbeat calls beat every store.HeartbeatEvery, to record that node is alive with the
// repositories it deploys now, until ctx ends.
func heartbeat(ctx context.Context, node string, beat func(context.Context) error, logger *slog.Logger) {
	t := time.NewTicker(store.HeartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		bctx, cancel := context.WithTimeout(ctx, store.HeartbeatEvery)
		err := beat(bctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			logger.Warn("heartbeat", "node", node, "err", err)
		}
	}
}

// writeBeat records that node is alive and deploys repos, registering it again when its
// row was deleted by hand.
func writeBeat(ctx context.Context, st *store.Store, node, version string, repos []string) error {
	err := st.Heartbeat(ctx, node, repos)
	if errors.Is(err, store.ErrNotFound) {
		err = st.RegisterNode(ctx, node, version, repos)
	}
	return err
}
