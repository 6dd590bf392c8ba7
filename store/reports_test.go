package store

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestReportsOutbox: every status change of a reporting target's deploy writes a report
// in its own transaction (queued, running, succeeded; interrupted), a target that does
// not report writes none, the sender is told after the commit, and the due reports carry
// the deploy's commit and whether a newer report replaced them. Both engines.
func TestReportsOutbox(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, newDatabase func() string) {
		ctx := context.Background()
		st := openAt(t, newDatabase(), WithNode("web1"))
		at := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
		st.SetNow(func() time.Time { return at })
		if err := st.RegisterNode(ctx, "web1", "test", []string{"site", "quiet"}); err != nil {
			t.Fatal(err)
		}
		st.SetReporting([]string{"site"})
		var told atomic.Int32
		st.OnReport(func() { told.Add(1) })

		dp, err := st.EnqueueManual(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.EnqueueManual(ctx, "site"); err != nil { // joins: no new status, no report
			t.Fatal(err)
		}
		if _, err := st.EnqueueManual(ctx, "quiet"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ClaimDeploy(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		const commit = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
		if err := st.UpdateDeployProgress(ctx, dp.ID, "", commit, ""); err != nil {
			t.Fatal(err)
		}
		at = at.Add(12 * time.Second)
		if err := st.FinishDeploy(ctx, dp.ID, Result{Status: DeploySucceeded, ToCommit: commit}); err != nil {
			t.Fatal(err)
		}
		if n := told.Load(); n != 3 {
			t.Errorf("the sender was told %d times, want 3 (queued, running, succeeded)", n)
		}
		due, err := st.DueReports(ctx, at, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range due {
			got = append(got, r.Status)
			if r.DeployID != dp.ID || r.Repo != "site" || r.Node != "web1" || r.Commit != commit {
				t.Errorf("report %+v", r)
			}
			if r.Newer != (r.Status != DeploySucceeded) {
				t.Errorf("report %s: newer %v", r.Status, r.Newer)
			}
		}
		if len(got) != 3 || got[0] != DeployQueued || got[1] != DeployRunning || got[2] != DeploySucceeded {
			t.Fatalf("reports %v, want queued, running, succeeded", got)
		}
		if due[2].FinishedAt.Sub(due[2].StartedAt).Round(time.Second) != 12*time.Second {
			t.Errorf("started %v finished %v", due[2].StartedAt, due[2].FinishedAt)
		}

		// An attempt that failed is due again later; a sent one is done.
		r := due[2].Report
		r.Result, r.Forge, r.Endpoint, r.State, r.Attempts, r.HTTPStatus, r.Error, r.NextAt =
			ReportPending, "gh", "POST /repos/a/b/statuses/"+commit, "success", 1, 502, "Bad Gateway", at.Add(time.Second)
		if err := st.UpdateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		for _, d := range due[:2] {
			d.Result = ReportSkipped
			if err := st.UpdateReport(ctx, d.Report); err != nil {
				t.Fatal(err)
			}
		}
		if due, _ := st.DueReports(ctx, at, 10); len(due) != 0 {
			t.Fatalf("due before its time: %+v", due)
		}
		if next, err := st.NextReportAt(ctx); err != nil || !next.Equal(at.Add(time.Second)) {
			t.Fatalf("next report at %v, %v", next, err)
		}
		if due, _ := st.DueReports(ctx, at.Add(time.Second), 10); len(due) != 1 || due[0].Attempts != 1 {
			t.Fatalf("due after its backoff: %+v", due)
		}
		r.Result, r.HTTPStatus, r.Error, r.Attempts = ReportSent, 201, "", 2
		if err := st.UpdateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		list, err := st.DeployReports(ctx, dp.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 3 || list[2].Result != ReportSent || list[2].Attempts != 2 || list[2].HTTPStatus != 201 ||
			list[2].Forge != "gh" || list[2].State != "success" || list[2].FinishedAt.IsZero() {
			t.Fatalf("reports %+v", list)
		}

		// A deploy cut off by a stop reports interrupted, and its recovery deploy queued.
		if _, err := st.ClaimDeploy(ctx, "site"); err == nil {
			t.Fatal("claimed with nothing queued")
		}
		next, err := st.EnqueueManual(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.ClaimDeploy(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.InterruptRunning(ctx, "stopped"); err != nil {
			t.Fatal(err)
		}
		due, err = st.DueReports(ctx, at.Add(time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		for _, r := range due {
			got = append(got, r.Status)
		}
		// The queued report of next now reads its deploy's current status: the report
		// row keeps the status it was written with.
		if len(got) != 4 || got[2] != DeployInterrupted || got[3] != DeployQueued || due[2].DeployID != next.ID {
			t.Fatalf("after an interruption: %v", got)
		}
		quiet, err := st.ListDeploys(ctx, DeployFilter{Repo: "quiet"})
		if err != nil || len(quiet) != 1 {
			t.Fatalf("quiet's deploys %+v, %v", quiet, err)
		}
		if l, err := st.DeployReports(ctx, quiet[0].ID); err != nil || len(l) != 0 {
			t.Fatalf("a target that does not report has reports: %+v, %v", l, err)
		}
	})
}

// TestHealthCheckIsReported: a checked deploy tells the forge it is verifying, and how its
// check ended, each in the transaction that sets the status.
func TestHealthCheckIsReported(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, newDatabase func() string) {
		ctx := context.Background()
		st := openAt(t, newDatabase(), WithNode("web1"))
		if err := st.RegisterNode(ctx, "web1", "test", []string{"site"}); err != nil {
			t.Fatal(err)
		}
		st.SetReporting([]string{"site"})
		dp, err := st.EnqueueManual(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.ClaimDeploy(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		const commit = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
		if err := st.StartVerifying(ctx, dp.ID, "", commit, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := st.FinishHealthFailure(ctx, dp.ID, Result{Status: DeployFailed, ToCommit: commit, Error: "health check failed: 502"}, true); err != nil {
			t.Fatal(err)
		}
		due, err := st.DueReports(ctx, time.Now().Add(time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range due {
			got = append(got, r.Status)
		}
		if want := []string{DeployQueued, DeployRunning, DeployVerifying, DeployFailed}; !slices.Equal(got, want) {
			t.Fatalf("reports %v, want %v", got, want)
		}
	})
}
