package reporter

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/forgetest"
	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/store"
)

// pushOf is an accepted push delivery of site to commit, as the server records one.
func pushOf(guid, commit string) *store.Delivery {
	return &store.Delivery{GUID: guid, Repo: "site", Event: "push", Ref: "refs/heads/main",
		After: commit, Commit: commit[:7], Signature: store.SignatureValid, SignatureAlg: "sha256",
		Status: store.DeliveryAccepted, HTTPStatus: 202, Headers: map[string]string{"X-Github-Event": "push"},
		Payload: []byte(`{"ref":"refs/heads/main"}`)}
}

// engines are the databases a test runs on: SQLite always, PostgreSQL when a cluster is named.
func engines(t *testing.T) map[string]func(t *testing.T) string {
	dbs := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return filepath.Join(t.TempDir(), "hookgate.db") },
	}
	if pgtest.Enabled(t) {
		dbs["postgres"] = func(t *testing.T) string { return pgtest.Database(t) }
	}
	return dbs
}

// coalesce records push A, sends its queued report, joins push B to the deploy, claims it
// and sends its running report (on B); it returns the deploy.
func coalesce(t *testing.T, n *node) store.Deploy {
	t.Helper()
	ctx := context.Background()
	first, second := pushOf("g1", commitA), pushOf("g2", commitB)
	if err := n.st.RecordDelivery(ctx, first); err != nil {
		t.Fatal(err)
	}
	runOnce(t, n)
	if err := n.st.RecordDelivery(ctx, second); err != nil {
		t.Fatal(err)
	}
	if second.DeployID != first.DeployID {
		t.Fatalf("the second push made deploy %d, want it joined to %d", second.DeployID, first.DeployID)
	}
	dp, err := n.st.ClaimDeploy(ctx, "site")
	if err != nil {
		t.Fatal(err)
	}
	runOnce(t, n)
	return dp
}

// TestCoalescedPushSupersedesTheFirstCommit is the giteareal run of issue 22: push A
// queues a deploy and its "queued" report goes to A; push B joins the deploy while it is
// queued, so the deploy's later reports go to B. The forge must not keep A pending: A
// ends superseded by B under the same context (error; GitLab canceled), its deployment
// inactive where one was made, B ends success, and the supersede post is one of the
// deploy's reports, recorded with the commit it went to. Every forge, both engines.
func TestCoalescedPushSupersedesTheFirstCommit(t *testing.T) {
	for engine, newDB := range engines(t) {
		for _, typ := range []string{GitHub, Gitea, GitLab} {
			t.Run(engine+"/"+typ, func(t *testing.T) {
				f := forgetest.New(t, typ, pat)
				clk := newClock()
				repo := "acme/site" // on GitLab the project's path, sent as one escaped segment
				n := openNode(t, newDB(t), "web1", clk,
					forgeConfig(f, Target{Repository: repo, Deployments: typ != Gitea, Branch: "main"}))
				ctx := context.Background()

				first := pushOf("g1", commitA)
				if err := n.st.RecordDelivery(ctx, first); err != nil {
					t.Fatal(err)
				}
				runOnce(t, n)
				if s := f.Latest(repo, commitA, "hookgate/site"); s.State != "pending" || s.Description != "queued" {
					t.Fatalf("after the first push the forge shows %+v on A", s)
				}
				second := pushOf("g2", commitB)
				if err := n.st.RecordDelivery(ctx, second); err != nil {
					t.Fatal(err)
				}
				if second.DeployID != first.DeployID {
					t.Fatalf("the second push made deploy %d, want it joined to %d", second.DeployID, first.DeployID)
				}
				dp, err := n.st.ClaimDeploy(ctx, "site")
				if err != nil {
					t.Fatal(err)
				}
				runOnce(t, n)
				if err := n.st.FinishDeploy(ctx, dp.ID, store.Result{Status: store.DeploySucceeded, ToCommit: commitB}); err != nil {
					t.Fatal(err)
				}
				runOnce(t, n)

				wantA := map[string]string{GitHub: "error", Gitea: "error", GitLab: "canceled"}[typ]
				if s := f.Latest(repo, commitA, "hookgate/site"); s.State != wantA || s.Description != "superseded by b0a9f8e" {
					t.Fatalf("A shows %+v, want %s \"superseded by b0a9f8e\"", s, wantA)
				}
				if s := f.Latest(repo, commitB, "hookgate/site"); s.State != "success" {
					t.Fatalf("B shows %+v, want success", s)
				}
				// Deployments: GitHub made A's at queued and closes it; GitLab makes one at
				// running, which was B's only: none for A is created just to cancel it.
				var onA, onB []string
				for _, d := range f.Deployments {
					switch d.SHA {
					case commitA:
						onA = d.Statuses
					case commitB:
						onB = d.Statuses
					}
				}
				switch typ {
				case GitHub:
					if !slices.Equal(onA, []string{"queued", "inactive"}) || onB[len(onB)-1] != "success" {
						t.Fatalf("deployments: A %v, B %v; want A queued then inactive, B success", onA, onB)
					}
				case GitLab:
					if onA != nil || onB[len(onB)-1] != "success" {
						t.Fatalf("deployments: A %v, B %v; want none for A, B success", onA, onB)
					}
				}

				reports, err := n.st.DeployReports(ctx, dp.ID)
				if err != nil {
					t.Fatal(err)
				}
				var left []store.Report
				for _, r := range reports {
					if r.Result == store.ReportSent && r.Commit == "" {
						t.Errorf("sent report %+v records no commit", r)
					}
					if r.SupersededBy != "" {
						left = append(left, r)
					}
				}
				if reports[0].Status != store.DeployQueued || reports[0].Commit != commitA {
					t.Errorf("the queued report %+v, want it recorded on A", reports[0])
				}
				if len(left) != 1 {
					t.Fatalf("reports %+v, want one supersede post", reports)
				}
				l := left[0]
				if l.Status != store.DeploySuperseded || l.Commit != commitA || l.SupersededBy != commitB ||
					l.Result != store.ReportSent || l.Attempts != 1 {
					t.Fatalf("supersede post %+v", l)
				}
				wantState := wantA // no deployment of A on Gitea (none) or GitLab (made at running)
				if typ == GitHub {
					wantState = "error, deployment inactive"
				}
				if l.State != wantState {
					t.Errorf("supersede post state %q, want %q", l.State, wantState)
				}
				// Once: nothing more is due, and a later pass posts nothing.
				before := len(f.Called())
				if runOnce(t, n) != 0 || len(f.Called()) != before {
					t.Fatal("a second pass posted again")
				}
			})
		}
	}
}

// TestSupersedePostRetries: the post that A is superseded meets a 502; the deploy ends
// (its newest status, on B, goes) before the retry, which still tells A: a supersede post
// is never replaced by the deploy's newer statuses. Both engines.
func TestSupersedePostRetries(t *testing.T) {
	for engine, newDB := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			f := forgetest.New(t, Gitea, pat)
			clk := newClock()
			n := openNode(t, newDB(t), "web1", clk, forgeConfig(f, Target{}))
			ctx := context.Background()
			// A's first post (queued) goes; the next (superseded) meets a 502 until down ends.
			var down atomic.Bool
			var postsToA atomic.Int32
			down.Store(true)
			f.Answer(func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/statuses/"+commitA) &&
					postsToA.Add(1) > 1 && down.Load() {
					forgetest.Reply(w, 502, map[string]any{"message": "Bad Gateway"})
					return true
				}
				return false
			})
			dp := coalesce(t, n)
			if s := f.Latest("acme/site", commitA, "hookgate/site"); s.State != "pending" {
				t.Fatalf("A shows %+v before the retry", s)
			}
			if err := n.st.FinishDeploy(ctx, dp.ID, store.Result{Status: store.DeploySucceeded, ToCommit: commitB}); err != nil {
				t.Fatal(err)
			}
			runOnce(t, n)
			down.Store(false)
			clk.add(time.Second)
			runOnce(t, n)
			if s := f.Latest("acme/site", commitA, "hookgate/site"); s.State != "error" || s.Description != "superseded by b0a9f8e" {
				t.Fatalf("A shows %+v after the retry, want error \"superseded by b0a9f8e\"", s)
			}
			if s := f.Latest("acme/site", commitB, "hookgate/site"); s.State != "success" {
				t.Fatalf("B shows %+v", s)
			}
			reports, err := n.st.DeployReports(ctx, dp.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range reports {
				if r.SupersededBy != "" && (r.Result != store.ReportSent || r.Attempts != 2) {
					t.Fatalf("supersede post %+v, want sent at the second attempt", r)
				}
			}
		})
	}
}
