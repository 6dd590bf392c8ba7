// Health checks (issue 21): a deploy's verification (StartVerifying), its probes, the end
// of a failed check (FinishHealthFailure: the bad commit, the automatic rollback, the pin
// when the rollback failed too), and the commits bad for a target.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PinnedByHealth: an automatic rollback failed its own deploy or check, so the target is
// held at the commit the rollback tried until an operator unpins it.
const PinnedByHealth = "health"

// Probe kinds.
const (
	ProbeURL     = "url"
	ProbeCommand = "command"
)

// MaxProbeOutput is how much of a probe's body or output is kept.
const MaxProbeOutput = 2 << 10

// Probe is one try of a health check.
type Probe struct {
	ID       int64
	DeployID int64 // 0: a check run on demand (POST /api/v1/repos/NAME/verify)
	Repo     string
	Node     string
	At       time.Time
	Latency  time.Duration
	Kind     string // ProbeURL or ProbeCommand
	Code     int    // the HTTP status or the exit code; 0 when Error says why there is none
	Passed   bool
	Output   string // the first MaxProbeOutput bytes of the body or output
	Error    string // why the probe failed, in words
}

// BadCommit is a commit whose health check failed on a target: nothing automatic deploys
// it there again until an operator clears it.
type BadCommit struct {
	Repo     string
	Commit   string
	DeployID int64 // the deploy whose check failed; 0 once retention removed it
	At       time.Time
	Reason   string
}

// HealthFailure is what FinishHealthFailure did beside failing the deploy.
type HealthFailure struct {
	Bad      bool   // the commit was marked bad (not for an automatic rollback's own failure)
	Rollback Deploy // the automatic rollback queued; ID 0: none
	// NoGoodCommit: a rollback was asked for but this node has no good commit to go to.
	NoGoodCommit bool
	// Pinned: the failed deploy was itself an automatic rollback; the target is now
	// pinned (by health) at the commit it tried.
	Pinned   bool
	PinnedAt string
}

// StartVerifying moves a running deploy to verifying, with its commits and output so far:
// its commands succeeded and its health check starts.
func (s *Store) StartVerifying(ctx context.Context, id int64, from, to, log string) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("deploy %d: start verifying: %w", id, err)
	}
	defer tx.Rollback()
	defer s.forget(tx)
	res, err := s.run(ctx, tx, startVerifyingSQL, from, to, log, id)
	if err != nil {
		return fmt.Errorf("deploy %d: start verifying: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("deploy %d: start verifying: not running: %w", id, ErrConflict)
	}
	var repo string
	if err := s.row(ctx, tx, deployRepoSQL, id).Scan(&repo); err != nil {
		return fmt.Errorf("deploy %d: start verifying: %w", id, err)
	}
	// The forge shows the check as part of the deploy (pending / running, in_progress).
	if err := s.report(ctx, tx, id, repo); err != nil {
		return fmt.Errorf("deploy %d: start verifying: %w", id, err)
	}
	if err := s.commit(tx); err != nil {
		return fmt.Errorf("deploy %d: start verifying: commit: %w", id, err)
	}
	return nil
}

// RecordProbe stores one probe; its output is cut to MaxProbeOutput.
func (s *Store) RecordProbe(ctx context.Context, p Probe) error {
	if len(p.Output) > MaxProbeOutput {
		p.Output = p.Output[:MaxProbeOutput]
	}
	var deployID any
	if p.DeployID != 0 {
		deployID = p.DeployID
	}
	if _, err := s.run(ctx, s.wdb, insertProbeSQL, deployID, p.Repo, p.Node, p.At.UTC(), p.Latency.Milliseconds(),
		p.Kind, p.Code, p.Passed, p.Output, p.Error); err != nil {
		return fmt.Errorf("record probe of %s: %w", p.Repo, err)
	}
	return nil
}

// Probes returns a deploy's probes, oldest first.
func (s *Store) Probes(ctx context.Context, deployID int64) ([]Probe, error) {
	rows, err := s.rows(ctx, s.rdb, deployProbesSQL, deployID)
	if err != nil {
		return nil, fmt.Errorf("probes of deploy %d: %w", deployID, err)
	}
	defer rows.Close()
	out := []Probe{}
	for rows.Next() {
		var p Probe
		var ms int64
		var dep sql.NullInt64
		if err := rows.Scan(&p.ID, &dep, &p.Repo, &p.Node, &p.At, &ms, &p.Kind, &p.Code, &p.Passed, &p.Output, &p.Error); err != nil {
			return nil, fmt.Errorf("probes of deploy %d: %w", deployID, err)
		}
		p.DeployID, p.At, p.Latency = dep.Int64, p.At.UTC(), time.Duration(ms)*time.Millisecond
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("probes of deploy %d: %w", deployID, err)
	}
	return out, nil
}

// FinishHealthFailure fails a deploy whose check (or, for an automatic rollback, whose
// commands or check) failed, and in the same transaction: marks its commit bad for the
// target, and with rollback queues on the deploy's node a deploy (trigger auto_rollback,
// rollback_of id) to the node's last good commit: the newest succeeded deploy's commit
// that is neither bad nor this one. When the failed deploy was itself an automatic rollback,
// nothing is marked bad or queued: the target is pinned by health at the commit it tried.
func (s *Store) FinishHealthFailure(ctx context.Context, id int64, r Result, rollback bool) (HealthFailure, error) {
	var hf HealthFailure
	if r.Status != DeployFailed {
		return hf, fmt.Errorf("finish deploy %d: a failed check ends failed, not %q", id, r.Status)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return hf, fmt.Errorf("finish deploy %d: %w", id, err)
	}
	defer tx.Rollback()
	defer s.forget(tx)
	var repo, node string
	err = s.row(ctx, tx, finishDeploySQL,
		r.Status, r.FromCommit, r.ToCommit, r.Error, r.Log, s.now(), id).Scan(&repo, &node)
	if errors.Is(err, sql.ErrNoRows) {
		return hf, fmt.Errorf("finish deploy %d: not running: %w", id, ErrConflict)
	}
	if err != nil {
		return hf, fmt.Errorf("finish deploy %d: %w", id, err)
	}
	if err := s.report(ctx, tx, id, repo); err != nil {
		return hf, fmt.Errorf("finish deploy %d: %w", id, err)
	}
	// Before the pin and the queue: the delivery writer reads both under the same lock.
	if err := s.lockRepos(ctx, tx, []string{repo}); err != nil {
		return hf, fmt.Errorf("finish deploy %d: %w", id, err)
	}
	var trigger string
	var target string
	if err := s.row(ctx, tx, deployTriggerSQL, id).Scan(&trigger, &target); err != nil {
		return hf, fmt.Errorf("finish deploy %d: %w", id, err)
	}
	if trigger == TriggerAutoRollback {
		commit := target
		if commit == "" {
			commit = r.ToCommit
		}
		if commit != "" {
			if _, err := s.setPin(ctx, tx, repo, commit, PinnedByHealth); err != nil {
				return hf, err
			}
			hf.Pinned, hf.PinnedAt = true, commit
		}
		if err := s.commit(tx); err != nil {
			return hf, fmt.Errorf("finish deploy %d: commit: %w", id, err)
		}
		return hf, nil
	}
	if r.ToCommit != "" {
		reason := fmt.Sprintf("commit %s failed its health check (deploy %d)", short(r.ToCommit), id)
		if _, err := s.run(ctx, tx, markBadSQL, repo, r.ToCommit, id, s.now(), reason); err != nil {
			return hf, fmt.Errorf("finish deploy %d: mark %s bad: %w", id, short(r.ToCommit), err)
		}
		hf.Bad = true
	}
	if rollback {
		var good string
		err := s.row(ctx, tx, lastGoodCommitSQL, node, repo, r.ToCommit, repo).Scan(&good)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			hf.NoGoodCommit = true
		case err != nil:
			return hf, fmt.Errorf("finish deploy %d: last good commit: %w", id, err)
		default:
			rid, err := s.enqueue(ctx, tx, repo, node, TriggerAutoRollback, "")
			if err != nil {
				return hf, fmt.Errorf("finish deploy %d: queue rollback: %w", id, err)
			}
			reason := fmt.Sprintf("automatic rollback to %s: deploy %d of %s failed its health check",
				short(good), id, short(r.ToCommit))
			if _, err := s.run(ctx, tx, autoRollbackSQL, TriggerAutoRollback, good, reason, id, rid); err != nil {
				return hf, fmt.Errorf("finish deploy %d: queue rollback: %w", id, err)
			}
			hf.Rollback = Deploy{ID: rid, Repo: repo, Node: node, Status: DeployQueued, Trigger: TriggerAutoRollback,
				Target: good, Reason: reason, RollbackOf: id}
		}
	}
	if err := s.commit(tx); err != nil {
		return hf, fmt.Errorf("finish deploy %d: commit: %w", id, err)
	}
	return hf, nil
}

// BadCommits lists repo's bad commits, newest first.
func (s *Store) BadCommits(ctx context.Context, repo string) ([]BadCommit, error) {
	rows, err := s.rows(ctx, s.rdb, badCommitsSQL, repo)
	if err != nil {
		return nil, fmt.Errorf("bad commits of %s: %w", repo, err)
	}
	defer rows.Close()
	out := []BadCommit{}
	for rows.Next() {
		var b BadCommit
		if err := rows.Scan(&b.Repo, &b.Commit, &b.DeployID, &b.At, &b.Reason); err != nil {
			return nil, fmt.Errorf("bad commits of %s: %w", repo, err)
		}
		b.At = b.At.UTC()
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("bad commits of %s: %w", repo, err)
	}
	return out, nil
}

// RecentBadCommits lists repo's newest limit bad commits, newest first, and how many it
// has: a repository status shows these, where a target whose check keeps failing would
// otherwise carry every bad commit it ever had into each listing.
func (s *Store) RecentBadCommits(ctx context.Context, repo string, limit int) ([]BadCommit, int, error) {
	var total int
	if err := s.row(ctx, s.rdb, countBadSQL, repo).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("bad commits of %s: %w", repo, err)
	}
	out := []BadCommit{}
	if total == 0 {
		return out, 0, nil
	}
	rows, err := s.rows(ctx, s.rdb, recentBadCommitsSQL, repo, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("bad commits of %s: %w", repo, err)
	}
	defer rows.Close()
	for rows.Next() {
		var b BadCommit
		if err := rows.Scan(&b.Repo, &b.Commit, &b.DeployID, &b.At, &b.Reason); err != nil {
			return nil, 0, fmt.Errorf("bad commits of %s: %w", repo, err)
		}
		b.At = b.At.UTC()
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("bad commits of %s: %w", repo, err)
	}
	return out, total, nil
}

// BadCommit returns repo's bad commit whose hash is commit, or ErrNotFound.
func (s *Store) BadCommit(ctx context.Context, repo, commit string) (BadCommit, error) {
	b, err := s.badCommit(ctx, s.rdb, repo, commit)
	if err != nil {
		return BadCommit{}, fmt.Errorf("bad commit %s of %s: %w", short(commit), repo, err)
	}
	return b, nil
}

func (s *Store) badCommit(ctx context.Context, q rowQuerier, repo, commit string) (BadCommit, error) {
	var b BadCommit
	err := s.row(ctx, q, badCommitSQL, repo, commit).Scan(&b.Repo, &b.Commit, &b.DeployID, &b.At, &b.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return BadCommit{}, ErrNotFound
	}
	b.At = b.At.UTC()
	return b, err
}

// ClearBadCommit forgets that commit is bad for repo, so automatic deploys may deploy it
// again; ErrNotFound when it was not bad.
func (s *Store) ClearBadCommit(ctx context.Context, repo, commit string) error {
	res, err := s.run(ctx, s.wdb, clearBadSQL, repo, commit)
	if err != nil {
		return fmt.Errorf("clear bad commit %s of %s: %w", short(commit), repo, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("clear bad commit %s of %s: %w", short(commit), repo, ErrNotFound)
	}
	return nil
}

// Describe says, for the failure's notification and log, what followed the failed check
// of a deploy of repo; "" when nothing did (a deploy without rollback, or none recorded).
func (hf HealthFailure) Describe(repo string) string {
	switch {
	case hf.Pinned:
		return fmt.Sprintf("the automatic rollback failed too: %s is pinned (by health) at %s until an operator unpins it", repo, short(hf.PinnedAt))
	case hf.Rollback.ID != 0:
		return fmt.Sprintf("rolling back to %s (deploy %d)", short(hf.Rollback.Target), hf.Rollback.ID)
	case hf.NoGoodCommit:
		return "no rollback: no earlier good commit on this node; the failure stands"
	}
	return ""
}

// FailedRollback returns the newest automatic rollback of repo to commit that failed (its
// ID, RollbackOf and Error), which is why a pin by health holds repo at commit; ErrNotFound
// when there is none (retention removed it).
func (s *Store) FailedRollback(ctx context.Context, repo, commit string) (Deploy, error) {
	dp := Deploy{Repo: repo, Status: DeployFailed, Trigger: TriggerAutoRollback, Target: commit}
	err := s.row(ctx, s.rdb, failedAutoRollbackSQL, repo, commit).Scan(&dp.ID, &dp.RollbackOf, &dp.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return Deploy{}, fmt.Errorf("failed rollback of %s to %s: %w", repo, short(commit), ErrNotFound)
	}
	if err != nil {
		return Deploy{}, fmt.Errorf("failed rollback of %s to %s: %w", repo, short(commit), err)
	}
	return dp, nil
}

// Node is the node ([server] node) this store records deploys and probes under.
func (s *Store) Node() string { return s.node }
