// This file owns replay: re-running a recorded delivery from its stored fields as a new
// delivery, decided again under the hook's current configuration.
package app

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/hookgate/hookgate/policy"
	"github.com/hookgate/hookgate/store"
)

// notReplayable says why a recorded delivery cannot be re-run.
func notReplayable(reason string) error {
	return &Error{NotReplayable, "not_replayable", reason}
}

// Replay re-runs recorded delivery id from its stored fields as a new delivery that
// deploys: recorded with replay_of, its deploy triggered "replay". The hook's current
// configuration decides again, so a replay cannot deploy what a delivery could not.
func (a *App) Replay(ctx context.Context, id int64, remote string) (store.Delivery, error) {
	orig, err := a.store.Delivery(ctx, id)
	if err != nil {
		return store.Delivery{}, err
	}
	hookName := cmp.Or(orig.Hook, orig.Repo)
	targets := a.targetsOf(hookName)
	switch {
	case len(targets) == 0:
		return store.Delivery{}, notReplayable(fmt.Sprintf("repository %q is no longer configured", orig.Repo))
	case orig.Signature != store.SignatureValid || orig.Payload == nil:
		return store.Delivery{}, notReplayable("only a delivery with a valid signature and a stored payload can be replayed")
	case orig.Event != "push":
		return store.Delivery{}, notReplayable(fmt.Sprintf("a %q delivery does not deploy; only push does", orig.Event))
	}
	hook := targets[0]
	in := policy.Delivery{Hook: policy.Hook{Repo: hookName, Branch: hook.Branch, Repository: hook.Repository, Tags: hook.Tags},
		Event: "push", Ref: orig.Ref, After: orig.After, FullName: orig.FullName, ReplayOf: orig.ID}
	if hook.Shared {
		in.Hook.Branch, in.Hook.Tags = "", ""
		for _, t := range targets {
			in.Targets = append(in.Targets, policy.Target{Repo: t.Name, Branch: t.Branch, Tags: t.Tags})
		}
	}
	if dec, ok := policy.Screen(in); !ok {
		return store.Delivery{}, notReplayable(dec.Reason)
	}
	d := orig
	d.ID, d.DeployID, d.DeployStatus = 0, 0, ""
	d.GUID, d.Redelivery, d.ReplayOf = "", false, orig.ID
	d.Input = &in // the store decides: accepted ("replay of delivery N"), or ignored while pinned
	d.ReceivedAt, d.RemoteAddr, d.UserAgent = a.now(), remote, "hookgate replay"
	d.DeployStartedAt, d.DeployFinishedAt = time.Time{}, time.Time{}
	if err := a.Record(ctx, &d); err != nil {
		return store.Delivery{}, err
	}
	a.log.Info("delivery replayed", "id", d.ID, "replay_of", orig.ID, "repo", d.Repo, "deploy_id", d.DeployID)
	return d, nil
}

// targetsOf is the targets that take their deliveries from hook, by name.
func (a *App) targetsOf(hook string) []Repo {
	var out []Repo
	rs := a.repos.Load()
	for _, n := range rs.names {
		if r := rs.byName[n]; cmp.Or(r.Hook, r.Name) == hook {
			out = append(out, r)
		}
	}
	return out
}
