package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Report results.
const (
	ReportPending = "pending" // not sent yet; next_at says when it is tried
	ReportSent    = "sent"    // the forge took it (or already showed it)
	ReportSkipped = "skipped" // not sent, and need not be: a newer report of the deploy replaced it
	ReportFailed  = "failed"  // given up: refused, or still failing after the sender's deadline
)

// Report is one row of the forge reports' outbox: a deploy status to tell the target's
// forge, and how its sending went.
type Report struct {
	ID         int64
	DeployID   int64
	Node       string
	Repo       string
	Status     string // the deploy's status this report tells
	Result     string
	Forge      string
	Endpoint   string // the last call, e.g. POST /repos/o/r/statuses/SHA
	State      string // the forge's word for Status
	Attempts   int
	HTTPStatus int
	Error      string
	CreatedAt  time.Time
	NextAt     time.Time
	FinishedAt time.Time // zero while pending
	// Commit is the commit the report went to: recorded by UpdateReport (the sender works it
	// out when it sends, as the deploy's commit can move while it is queued), set from the
	// start for a report of a commit left behind.
	Commit string
	// SupersededBy is set on a report of a commit left behind: an earlier report of the
	// deploy told the forge Commit was on its way, then the deploy's reports moved to this
	// commit; the forge is told Commit is superseded by it. "" for a deploy status's report.
	SupersededBy string
}

// DueReport is a pending report due now, with what the sender needs of its deploy.
type DueReport struct {
	Report
	// Report.Commit is the commit to report on: "" while the deploy knows no commit.
	Ref       string
	Trigger   string
	DeployErr string
	// Reason is why the deploy exists or, for a skipped one, why it deployed nothing.
	Reason     string
	StartedAt  time.Time
	FinishedAt time.Time
	// Newer: a later report of the same deploy exists, which tells the forge more.
	Newer bool
	// ForgeRepo is the payload's repository the deploy's newest delivery named ("": none;
	// the target's repository key applies).
	ForgeRepo string
}

// SetReporting names the repositories whose deploy status changes are written to the
// outbox, as the configuration says (a reload calls it again).
func (s *Store) SetReporting(repos []string) {
	m := make(map[string]bool, len(repos))
	for _, r := range repos {
		m[r] = true
	}
	s.reporting.Store(&m)
}

// OnReport sets f, called after the commit of a transaction that wrote a report, so the
// sender need not poll for new ones.
func (s *Store) OnReport(f func()) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.onReport = f
}

// report writes, in tx, a report of deploy id's status as tx has just set it, when repo
// reports to a forge. Every status change of a reporting deploy calls it in the
// transaction that makes the change, so a report is written exactly when the change
// commits.
func (s *Store) report(ctx context.Context, tx *sql.Tx, id int64, repo string) error {
	if m := s.reporting.Load(); m == nil || !(*m)[repo] {
		return nil
	}
	now := s.now()
	if _, err := s.run(ctx, tx, insertReportSQL, now, now, id); err != nil {
		return fmt.Errorf("report deploy %d: %w", id, err)
	}
	s.pubMu.Lock()
	if s.reported == nil {
		s.reported = map[*sql.Tx]bool{}
	}
	s.reported[tx] = true
	s.pubMu.Unlock()
	return nil
}

// DueReports returns up to limit of this node's pending reports due at now, the earliest
// due first.
func (s *Store) DueReports(ctx context.Context, now time.Time, limit int) ([]DueReport, error) {
	rows, err := s.rows(ctx, s.rdb, dueReportsSQL, s.node, now.UTC(), max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("due reports: %w", err)
	}
	defer rows.Close()
	var out []DueReport
	for rows.Next() {
		var r DueReport
		var started, finished sql.NullTime
		if err := rows.Scan(&r.ID, &r.DeployID, &r.Node, &r.Repo, &r.Status, &r.Attempts, &r.CreatedAt, &r.SupersededBy,
			&r.Ref, &r.Trigger, &r.DeployErr, &r.Reason, &started, &finished, &r.Commit, &r.Newer, &r.ForgeRepo); err != nil {
			return nil, fmt.Errorf("due reports: %w", err)
		}
		r.CreatedAt, r.StartedAt, r.FinishedAt = r.CreatedAt.UTC(), started.Time.UTC(), finished.Time.UTC()
		r.Result = ReportPending
		out = append(out, r)
	}
	return out, rows.Err()
}

// NextReportAt is when this node's earliest pending report is due (zero: none pending).
func (s *Store) NextReportAt(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := s.row(ctx, s.rdb, nextReportSQL, s.node).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("next report: %w", err)
	}
	return t.UTC(), nil
}

// UpdateReport records an attempt at r: its result (pending again with a later NextAt, or
// final), the forge, endpoint, state, HTTP status, error and commit. A report no longer
// pending is left alone. When r, a deploy status's report, was sent to a commit other than
// one an earlier report of the deploy said was pending (two pushes coalesced into one
// queued deploy), the same transaction writes, once per such commit, a report telling the
// forge it is superseded by r's commit, due at once.
func (s *Store) UpdateReport(ctx context.Context, r Report) error {
	var finished any
	now := s.now().UTC()
	if r.Result != ReportPending {
		finished = now
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update report %d: %w", r.ID, err)
	}
	defer tx.Rollback()
	res, err := s.run(ctx, tx, updateReportSQL, r.Result, r.Forge, r.Endpoint, r.State, r.Attempts,
		r.HTTPStatus, r.Error, r.NextAt.UTC(), finished, r.Commit, r.ID)
	if err != nil {
		return fmt.Errorf("update report %d: %w", r.ID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 && r.Result == ReportSent && r.SupersededBy == "" && r.Commit != "" {
		if _, err := s.run(ctx, tx, leftBehindSQL, now, now, r.Commit, r.DeployID, r.Commit); err != nil {
			return fmt.Errorf("update report %d: the commits left behind: %w", r.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update report %d: commit: %w", r.ID, err)
	}
	return nil
}

// DeployReports lists the reports of one deploy, oldest first.
func (s *Store) DeployReports(ctx context.Context, deployID int64) ([]Report, error) {
	rows, err := s.rows(ctx, s.rdb, deployReportsSQL, deployID)
	if err != nil {
		return nil, fmt.Errorf("deploy %d reports: %w", deployID, err)
	}
	defer rows.Close()
	out := []Report{}
	for rows.Next() {
		var r Report
		var finished sql.NullTime
		if err := rows.Scan(&r.ID, &r.DeployID, &r.Node, &r.Repo, &r.Status, &r.Result, &r.Forge, &r.Endpoint,
			&r.State, &r.Attempts, &r.HTTPStatus, &r.Error, &r.CreatedAt, &r.NextAt, &finished, &r.Commit, &r.SupersededBy); err != nil {
			return nil, fmt.Errorf("deploy %d reports: %w", deployID, err)
		}
		r.CreatedAt, r.NextAt, r.FinishedAt = r.CreatedAt.UTC(), r.NextAt.UTC(), finished.Time.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}
