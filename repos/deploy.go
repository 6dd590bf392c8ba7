// This file owns one deploy: the checkout update, the commands, the progress saved on the way.
package repos

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

// deploy updates the checkout and runs the commands of r (the repository's settings when
// the deploy was claimed), within r's timeout, writing the output to out; then, when r has
// a health check and the commands succeeded, verifies the deploy (health.go), which the
// verdict tells of.
func (w *worker) deploy(dp store.Deploy, r Repo, out *tailBuffer) (store.Result, verdict) {
	m := w.m
	ctx, cancel := context.WithTimeout(m.killing, r.Timeout)
	defer cancel()

	var mu sync.Mutex
	var from, to string
	stopProgress := w.saveProgress(dp.ID, out, func() (string, string) {
		mu.Lock()
		defer mu.Unlock()
		return from, to
	})

	res := store.Result{Status: store.DeploySucceeded}
	fail := func(format string, args ...any) {
		res.Status = store.DeployFailed
		res.Error = fmt.Sprintf(format, args...)
		switch {
		case m.killing.Err() != nil:
			res.Status = store.DeployInterrupted
			res.Error = "interrupted: the gateway shut down during the deploy (" + res.Error + ")"
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			res.Error = fmt.Sprintf("deploy timed out after %s: %s", r.Timeout, res.Error)
		}
		out.Printf("hookgate: %s", res.Error)
	}

	spec := r.Spec
	mv := checkout.Move{Target: dp.Target}
	ref := "refs/heads/" + r.Branch
	var err error
	if r.Tags != "" {
		// A tag target's checkout stays on a local branch that follows the tags deployed.
		if spec.Branch == "" {
			spec.Branch = "main"
		}
		mv.Tag, err = w.deployTag(ctx, dp, r)
		ref = "refs/tags/" + mv.Tag
		if err == nil && ref != dp.Ref {
			res.Ref = ref
		}
		if err == nil {
			out.Printf("hookgate: deploy %d of %s (%s), tag %s", dp.ID, r.Name, dp.Trigger, mv.Tag)
			if skip := w.avoidBadTag(ctx, dp, r, mv.Tag, out); skip != "" {
				stopProgress()
				out.Printf("hookgate: nothing deployed: tag %s is at %s", mv.Tag, skip)
				res.Status, res.Error = store.DeploySkipped, "tag "+mv.Tag+" is not deployed: "+skip
				res.Log, _ = out.Snapshot()
				return res, verdict{}
			}
		}
	} else {
		out.Printf("hookgate: deploy %d of %s (%s), branch %s", dp.ID, r.Name, dp.Trigger, r.Branch)
	}
	if dp.Target != "" {
		out.Printf("hookgate: moving to %s (%s)", short(dp.Target), dp.Trigger)
	}
	if err == nil && r.Tags == "" {
		// A branch target with bad commits looks origin up first: a bad head is not
		// deployed by anything automatic (health.go); a tag target's tag was looked up
		// above (avoidBadTag).
		target, skip := w.avoidBad(ctx, dp, r, out)
		if skip != "" {
			stopProgress()
			out.Printf("hookgate: nothing deployed: origin %s is at %s", r.Branch, skip)
			res.Status, res.Error = store.DeploySkipped, "origin's head is not deployed: "+skip
			res.Log, _ = out.Snapshot()
			return res, verdict{}
		}
		if len(r.Paths) == 0 {
			// Held at the head looked up, so origin moving to a bad commit meanwhile
			// does not deploy it. (A paths target decides on the fetched tip instead.)
			mv.Target = target
		}
	}
	if err == nil && len(r.Paths) > 0 && dp.Target == "" {
		// A rollback or a pin moves to its commit whatever changed; anything else deploys
		// only what changed under paths since the live commit (none live: it deploys).
		mv.Live, _, err = m.store.LiveDeploy(ctx, r.Name)
		if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
		mv.Changed = func(p string) bool { return matchAny(r.Paths, p) }
	}
	var upd checkout.UpdateResult
	if err == nil && r.RunAs != nil {
		err = reclaim(r.Path, r.RunAs)
	}
	if err == nil {
		upd, err = checkout.UpdateMove(ctx, spec, mv)
	}
	if w.cloneDone != nil {
		w.cloneDone()
	}
	mu.Lock()
	from, to = upd.From, upd.To
	mu.Unlock()
	if fetched := upd.To; dp.Target == "" && (err == nil || upd.Target != "") {
		// The fetch has just read origin's branch head: keep it as the last look-up of
		// origin, or the repositories page would call an older look-up "origin ahead"
		// of the commit this deploy makes live until the next poll.
		if err != nil || upd.Skipped {
			fetched = upd.Target
		}
		w.setOrigin(originRecord{commit: checkout.NewHash(fetched), checkedAt: time.Now().UTC()})
	}
	res.FromCommit, res.ToCommit = upd.From, upd.To
	if (err != nil || upd.Skipped) && upd.Target != "" {
		// The commit this deploy was for, though HEAD did not move: a reconcile then
		// knows this head was attempted and does not queue it again on every poll.
		res.ToCommit = upd.Target
	}
	// A clone or fetch that failed or was refused may have held as much as one that
	// landed: give it back either way.
	if upd.Cloned || upd.From != upd.To || err != nil {
		releaseMemory()
	}
	switch {
	case err != nil:
		fail("update checkout: %v", err)
	case upd.Skipped:
		res.Status = store.DeploySkipped
		res.Reason = fmt.Sprintf("no change under %s since live %s", strings.Join(r.Paths, ", "), short(mv.Live))
		out.Printf("hookgate: skipped %s: %s; the checkout stays at %s and no command runs", short(upd.Target), res.Reason, short(upd.From))
	case upd.Cloned:
		out.Printf("hookgate: cloned %s at %s", r.Branch, short(upd.To))
	case upd.From == upd.To:
		out.Printf("hookgate: checkout already at %s", short(upd.To))
	default:
		out.Printf("hookgate: updated %s → %s (%d files changed)", short(upd.From), short(upd.To), upd.Changed)
	}
	if err == nil && r.RunAs != nil {
		if err = handOver(r.Path, r.RunAs); err != nil {
			fail("%v", err)
		} else {
			out.Printf("hookgate: commands run as %s (uid %d)", r.RunAs.Name, r.RunAs.UID)
		}
	}
	var env []string
	if err == nil && !upd.Skipped {
		env = append(slices.Clone(m.baseEnv()),
			"HOOKGATE_REPO="+r.Name,
			"HOOKGATE_COMMIT="+upd.To,
			"HOOKGATE_PREVIOUS_COMMIT="+upd.From,
			"HOOKGATE_REF="+ref,
			"HOOKGATE_DELIVERY="+dp.DeliveryGUID,
			"HOOKGATE_TRIGGER="+dp.Trigger,
			fmt.Sprintf("HOOKGATE_DEPLOY=%d", dp.ID),
		)
		for i, c := range r.Commands {
			out.Printf("$ %s", c)
			if err := runCommand(ctx, c, r.Path, env, r.RunAs, out); err != nil {
				fail("command %d of %d (%s) failed: %v", i+1, len(r.Commands), c, err)
				break
			}
		}
	}
	var v verdict
	if res.Status == store.DeploySucceeded && r.Health != nil {
		v = w.verifyDeploy(dp, r, env, &res, out)
	}
	if res.Status == store.DeploySucceeded {
		out.Printf("hookgate: deploy succeeded")
	}
	stopProgress()
	res.Log, _ = out.Snapshot()
	return res, v
}

// verifyDeploy moves dp to verifying and runs r's check, setting res's status from it:
// succeeded when it passed; failed with "health check failed: <the last probe's cause>";
// superseded; interrupted when the gateway killed its deploys meanwhile.
func (w *worker) verifyDeploy(dp store.Deploy, r Repo, env []string, res *store.Result, out *tailBuffer) verdict {
	m := w.m
	log, _ := out.Snapshot()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := m.store.StartVerifying(ctx, dp.ID, res.FromCommit, res.ToCommit, log)
	cancel()
	if err != nil {
		// The check still runs: the status shown is only late by the deploy's end.
		m.log.Warn("mark deploy verifying", "deploy_id", dp.ID, "repo", r.Name, "err", err)
	}
	v := w.verify(dp, r, env, out)
	switch {
	case m.killing.Err() != nil:
		res.Status = store.DeployInterrupted
		res.Error = "interrupted: the gateway shut down during the health check"
		v.result = ""
	case v.result == HealthFailed:
		res.Status = store.DeployFailed
		res.Error = "health check failed: " + v.cause
		out.Printf("hookgate: %s", res.Error)
	case v.result == HealthSuperseded:
		res.Status = store.DeploySuperseded
		res.Error = "superseded: a newer deploy was queued during the health check"
	}
	return v
}

// deployTag is the tag a tag target's deploy goes to: the one its ref names (a push of
// the tag, a reconcile of origin's newest), or, when pushes of other tags joined it while
// it was queued, the newest of them (newestPushed); for a rollback or a pin, which move to a
// commit, the live tag (the commit is looked for in its history and the checkout's); for
// anything else (a manual deploy, a recovery) origin's newest matching tag, as a branch
// target's deploys origin's head.
func (w *worker) deployTag(ctx context.Context, dp store.Deploy, r Repo) (string, error) {
	if t := tagOf(dp.Ref); t != "" {
		refs, err := w.m.store.JoinedRefs(ctx, dp.ID)
		if err != nil {
			return "", err
		}
		return newestPushed(t, refs, r.Tags), nil
	}
	if dp.Target != "" {
		_, live, err := w.m.store.LiveDeploy(ctx, r.Name)
		if t := tagOf(live); err == nil && t != "" {
			return t, nil
		}
	}
	t, err := newestTag(ctx, r)
	if err != nil {
		return "", fmt.Errorf("find origin's newest tag matching %q: %w", r.Tags, err)
	}
	return t.Name, nil
}

// saveProgress stores the deploy's output every progressEvery while it runs, so the history
// shows a deploy live. The returned func stops it and waits.
func (w *worker) saveProgress(id int64, out *tailBuffer, commits func() (string, string)) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		var saved int64
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			log, version := out.Snapshot()
			if version == saved {
				continue
			}
			from, to := commits()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := w.m.store.UpdateDeployProgress(ctx, id, from, to, log); err != nil {
				w.m.log.Warn("save deploy progress", "deploy_id", id, "err", err)
			}
			cancel()
			saved = version
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// releaseMemory gives the memory of a clone or fetch back to the system. Left to itself the
// runtime would keep it: an idle gateway allocates too little to start a collection, so
// the heap stayed at a clone's peak for minutes. Two collections, because go-git parks its
// largest buffers in a sync.Pool, which only the second one empties.
func releaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

func short(hash string) string {
	if len(hash) > 7 {
		return hash[:7]
	}
	return hash
}
