package reporter

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/forgetest"
	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/store"
)

const (
	commitA = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
	commitB = "b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1"
	pat     = "ghp_s3cretTokenValue"
)

// clock is the tests' time, shared by a store and a sender.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time                              { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration)                         { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }
func newClock() *clock                                       { return &clock{t: time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)} }
func (c *clock) set(s interface{ SetNow(func() time.Time) }) { s.SetNow(c.now) }

// results counts the metric's observations.
type results struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *results) observe(forge, result string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[forge+"/"+result]++
}

func (r *results) get(key string) int { r.mu.Lock(); defer r.mu.Unlock(); return r.n[key] }

// node is one gateway's store and sender on a database.
type node struct {
	st  *store.Store
	s   *Sender
	res *results
}

func openNode(t *testing.T, path, name string, clk *clock, cfg Config) *node {
	t.Helper()
	st, err := store.Open(context.Background(), path, store.WithNode(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk.set(st)
	if err := st.RegisterNode(context.Background(), name, "test", []string{"site"}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range cfg.Targets {
		names = append(names, n)
	}
	st.SetReporting(names)
	res := &results{}
	s := NewSender(st, cfg, Options{Observe: res.observe, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s.now = clk.now
	st.OnReport(s.Wake)
	return &node{st: st, s: s, res: res}
}

func forgeConfig(f *forgetest.Forge, t Target) Config {
	t.Forge = "f"
	if t.Repository == "" {
		t.Repository = "acme/site"
	}
	if t.Context == "" {
		t.Context = "hookgate/site"
	}
	if t.Environment == "" {
		t.Environment = "production"
	}
	return Config{Forges: map[string]*Forge{"f": NewForge("f", f.Type, f.APIURL(), f.Token, nil)},
		Targets: map[string]Target{"site": t}, PublicURL: "https://deploy.example.com"}
}

func runOnce(t *testing.T, n *node) int {
	t.Helper()
	k, err := n.s.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// deployTo runs a rollback deploy of site to commit on n: queued, running, then ended
// with status; the sender runs after each step when send is set.
func deployTo(t *testing.T, n *node, clk *clock, commit, status string, send bool) store.Deploy {
	t.Helper()
	ctx := context.Background()
	if _, err := n.st.Unpin(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	dp, err := n.st.EnqueueRollback(ctx, "site", commit, "test")
	if err != nil {
		t.Fatal(err)
	}
	if send {
		runOnce(t, n)
	}
	if _, err := n.st.ClaimDeploy(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	if send {
		runOnce(t, n)
	}
	clk.add(12 * time.Second)
	res := store.Result{Status: status, ToCommit: commit}
	if status == store.DeployFailed {
		res.Error = "command 1 (make deploy) exited 2\nmore output"
	}
	if err := n.st.FinishDeploy(ctx, dp.ID, res); err != nil {
		t.Fatal(err)
	}
	if send {
		runOnce(t, n)
	}
	return dp
}

// TestSenderReportsADeploy: a GitHub target with deployments sees a deploy's queued,
// running and succeeded as commit statuses under its context and as one deployment's
// statuses, each linking to the deploy's page; each report's attempt is recorded.
func TestSenderReportsADeploy(t *testing.T) {
	f := forgetest.New(t, GitHub, pat)
	clk := newClock()
	n := openNode(t, filepath.Join(t.TempDir(), "hookgate.db"), "web1", clk,
		forgeConfig(f, Target{Deployments: true, EnvURL: "https://site.example.com"}))
	ctx := context.Background()

	dp, err := n.st.EnqueueRollback(ctx, "site", commitA, "test")
	if err != nil {
		t.Fatal(err)
	}
	runOnce(t, n)
	link := fmt.Sprintf("https://deploy.example.com/deploys/%d", dp.ID)
	if s := f.Latest("acme/site", commitA, "hookgate/site"); s != (forgetest.Status{Context: "hookgate/site", State: "pending", Description: "queued", TargetURL: link}) {
		t.Fatalf("after queued the forge shows %+v", s)
	}
	if _, err := n.st.ClaimDeploy(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	runOnce(t, n)
	if s := f.Latest("acme/site", commitA, "hookgate/site"); s.State != "pending" || s.Description != "deploying 1a2b3c4" {
		t.Fatalf("after running the forge shows %+v", s)
	}
	clk.add(12 * time.Second)
	if err := n.st.FinishDeploy(ctx, dp.ID, store.Result{Status: store.DeploySucceeded, ToCommit: commitA}); err != nil {
		t.Fatal(err)
	}
	runOnce(t, n)
	if s := f.Latest("acme/site", commitA, "hookgate/site"); s != (forgetest.Status{Context: "hookgate/site", State: "success", Description: "deployed 1a2b3c4 in 12 s", TargetURL: link}) {
		t.Fatalf("after succeeded the forge shows %+v", s)
	}
	if len(f.Deployments) != 1 {
		t.Fatalf("deployments %+v, want one for (commit, environment)", f.Deployments)
	}
	d := f.Deployments[0]
	if d.SHA != commitA || d.Env != "production" || !slices.Equal(d.Statuses, []string{"queued", "in_progress", "success"}) ||
		d.LogURL != link || d.EnvURL != "https://site.example.com" {
		t.Fatalf("deployment %+v", d)
	}
	reports, err := n.st.DeployReports(ctx, dp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 3 {
		t.Fatalf("reports %+v", reports)
	}
	for _, r := range reports {
		if r.Result != store.ReportSent || r.Forge != "f" || r.Attempts != 1 || r.HTTPStatus != 201 ||
			r.Endpoint != "POST /repos/acme/site/deployments/1/statuses" {
			t.Errorf("report %+v", r)
		}
	}
	if reports[2].State != "success, deployment success" {
		t.Errorf("state %q", reports[2].State)
	}
	// Nothing is due: a second pass calls nothing.
	before := len(f.Called())
	if runOnce(t, n) != 0 || len(f.Called()) != before {
		t.Fatal("a second pass sent again")
	}
	if n.res.get("f/sent") != 3 {
		t.Fatalf("metric %v", n.res.n)
	}
}

// TestEveryStateOfTheTable: each row of the state table reaches each forge in its own
// words: the commit status under the context, and the deployment's status where the
// forge has deployments and the row names one.
func TestEveryStateOfTheTable(t *testing.T) {
	for _, typ := range []string{GitHub, Gitea, GitLab} {
		t.Run(typ, func(t *testing.T) {
			f := forgetest.New(t, typ, pat)
			clk := newClock()
			repo := "acme/site"
			if typ == GitLab {
				repo = "acme/platform/site" // a nested group: one escaped path segment
			}
			n := openNode(t, filepath.Join(t.TempDir(), "hookgate.db"), "web1", clk,
				forgeConfig(f, Target{Repository: repo, Deployments: typ != Gitea, Branch: "main"}))
			// Every row, then a paths skip (no error, a reason): NothingChanged's row.
			for i, row := range append(slices.Clone(States), NothingChanged) {
				clk.add(time.Second)
				r := store.DueReport{Report: store.Report{ID: int64(i), DeployID: 7, Node: "web1", Repo: "site", Status: row.Status, CreatedAt: clk.now(), Commit: commitA},
					Ref: "refs/heads/main", StartedAt: clk.now().Add(-3 * time.Second), FinishedAt: clk.now(), DeployErr: "health check failed: 502"}
				if i == len(States) {
					r.DeployErr, r.Reason = "", "no change under docs/** since live 9f8e7d6"
				}
				out := n.s.send(context.Background(), r)
				if out.Result != store.ReportSent {
					t.Fatalf("%s: result %s (%s)", row.Status, out.Result, out.Error)
				}
				want := row.commit(typ)
				got := f.Latest(repo, commitA, "hookgate/site")
				if got.State != want || got.Description == "" || got.TargetURL != "https://deploy.example.com/deploys/7" {
					t.Fatalf("%s: the forge shows %+v, want state %s", row.Status, got, want)
				}
				if dstate := row.deployment(typ); dstate != "" {
					if len(f.Deployments) != 1 || f.Deployments[0].Statuses[len(f.Deployments[0].Statuses)-1] != dstate {
						t.Fatalf("%s: deployments %+v, want one ending %s", row.Status, f.Deployments, dstate)
					}
				}
			}
			if typ == GitLab {
				if d := f.Deployments[0]; d.Ref != "main" || d.Tag {
					t.Errorf("GitLab deployment ref %q tag %v", d.Ref, d.Tag)
				}
			}
			if typ == Gitea && len(f.Deployments) != 0 {
				t.Fatal("deployments posted to Gitea")
			}
		})
	}
}

// TestDescriptions: what each status says, at most 140 characters.
func TestDescriptions(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	long := strings.Repeat("é", 300)
	for _, tc := range []struct {
		r    store.DueReport
		want string
	}{
		{store.DueReport{Report: store.Report{Status: "succeeded", Commit: commitA}, StartedAt: at, FinishedAt: at.Add(184 * time.Second)}, "deployed 1a2b3c4 in 3 min 4 s"},
		{store.DueReport{Report: store.Report{Status: "failed"}, DeployErr: "health check failed: 502\nbody"}, "failed: health check failed: 502"},
		{store.DueReport{Report: store.Report{Status: "superseded"}, DeployErr: "superseded by def5678"}, "superseded by def5678"},
		{store.DueReport{Report: store.Report{Status: "skipped"}, Reason: "no change under docs/** since live 9f8e7d6"}, "nothing to deploy: no change under docs/** since live 9f8e7d6"},
		{store.DueReport{Report: store.Report{Status: "skipped"}, DeployErr: "origin's head is not deployed: commit 1a2b3c4 failed its health check (deploy 41)"}, "skipped: origin's head is not deployed: commit 1a2b3c4 failed its health check (deploy 41)"},
		{store.DueReport{Report: store.Report{Status: "failed"}, DeployErr: "clone https://x-access-token:hush@example.com/a.git failed"}, "failed: clone https://***@example.com/a.git failed"},
	} {
		if got := describe(tc.r); got != tc.want {
			t.Errorf("describe(%s) = %q, want %q", tc.r.Status, got, tc.want)
		}
	}
	if got := describe(store.DueReport{Report: store.Report{Status: "failed"}, DeployErr: long}); len([]rune(got)) != MaxDescription {
		t.Errorf("a long error gives %d characters", len([]rune(got)))
	}
}

// TestRetriesThroughA502: a forge answering 502 three times gets the report on the fourth
// attempt, after 1 s, 2 s and 4 s; the deploy itself never waited.
func TestRetriesThroughA502(t *testing.T) {
	f := forgetest.New(t, Gitea, pat)
	clk := newClock()
	n := openNode(t, filepath.Join(t.TempDir(), "hookgate.db"), "web1", clk, forgeConfig(f, Target{}))
	f.Fail(3)
	dp := deployTo(t, n, clk, commitA, store.DeploySucceeded, false)
	ctx := context.Background()
	for i, wait := range []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second} {
		clk.add(wait - time.Millisecond)
		if i > 0 && runOnce(t, n) != 0 {
			t.Fatalf("attempt %d ran before its backoff", i+1)
		}
		clk.add(time.Millisecond)
		runOnce(t, n)
	}
	reports, err := n.st.DeployReports(ctx, dp.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := reports[len(reports)-1]
	if last.Status != store.DeploySucceeded || last.Result != store.ReportSent || last.Attempts != 4 || last.Error != "" {
		t.Fatalf("report %+v", last)
	}
	for _, r := range reports[:len(reports)-1] {
		if r.Result != store.ReportSkipped {
			t.Errorf("the older report %s: %s (a newer one replaces it)", r.Status, r.Result)
		}
	}
	if s := f.Latest("acme/site", commitA, "hookgate/site"); s.State != "success" {
		t.Fatalf("the forge shows %+v", s)
	}
	if n.res.get("f/retry") != 3 || n.res.get("f/sent") != 1 {
		t.Fatalf("metric %v", n.res.n)
	}
}

// TestGivesUpAfterADay: a report that still fails 24 h after it was written is failed,
// with the forge's last answer; a refusal that retrying cannot fix fails at once.
func TestGivesUpAfterADay(t *testing.T) {
	f := forgetest.New(t, GitHub, pat)
	clk := newClock()
	n := openNode(t, filepath.Join(t.TempDir(), "hookgate.db"), "web1", clk, forgeConfig(f, Target{}))
	f.Fail(1 << 30)
	dp := deployTo(t, n, clk, commitA, store.DeploySucceeded, false)
	for clk.now().Before(time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)) {
		runOnce(t, n)
		clk.add(5 * time.Minute)
	}
	reports, _ := n.st.DeployReports(context.Background(), dp.ID)
	last := reports[len(reports)-1]
	if last.Result != store.ReportFailed || last.HTTPStatus != 502 || last.Error != "upstream broke" || last.Attempts < 280 {
		t.Fatalf("report %+v", last)
	}
	// A 404 (a wrong repository) is not retried.
	f.Fail(0)
	f.Answer(func(w http.ResponseWriter, r *http.Request) bool {
		forgetest.Reply(w, 404, map[string]any{"message": "Not Found"})
		return true
	})
	dp = deployTo(t, n, clk, commitB, store.DeploySucceeded, false)
	runOnce(t, n)
	reports, _ = n.st.DeployReports(context.Background(), dp.ID)
	if last := reports[len(reports)-1]; last.Result != store.ReportFailed || last.Attempts != 1 || last.HTTPStatus != 404 {
		t.Fatalf("report %+v", last)
	}
}

// TestRestartWithReportsPending: reports written while the forge was down are sent by the
// gateway started again on the same database.
func TestRestartWithReportsPending(t *testing.T) {
	f := forgetest.New(t, GitLab, pat)
	clk := newClock()
	path := filepath.Join(t.TempDir(), "hookgate.db")
	cfg := forgeConfig(f, Target{Repository: "acme/site"})
	first := openNode(t, path, "web1", clk, cfg)
	f.Fail(1 << 30)
	dp := deployTo(t, first, clk, commitA, store.DeployFailed, true)
	first.st.Close()

	f.Fail(0)
	clk.add(time.Minute)
	second := openNode(t, path, "web1", clk, cfg)
	runOnce(t, second)
	if s := f.Latest("acme/site", commitA, "hookgate/site"); s.State != "failed" || s.Description != "failed: command 1 (make deploy) exited 2" {
		t.Fatalf("after the restart the forge shows %+v", s)
	}
	reports, _ := second.st.DeployReports(context.Background(), dp.ID)
	if last := reports[len(reports)-1]; last.Result != store.ReportSent || last.Attempts != 2 {
		t.Fatalf("report %+v", last)
	}
}

// TestRefusalsThatCountAsSent: GitHub's 422 for the 1,000 statuses of a context and
// GitLab's 400 "Cannot transition status" end the report as sent, not retried; any other
// 422 fails it.
func TestRefusalsThatCountAsSent(t *testing.T) {
	t.Run("github 422 status limit", func(t *testing.T) {
		f := forgetest.New(t, GitHub, pat)
		clk := newClock()
		n := openNode(t, filepath.Join(t.TempDir(), "hookgate.db"), "web1", clk, forgeConfig(f, Target{}))
		msg := "This SHA and context has reached the maximum number of statuses."
		f.Answer(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPost {
				return false
			}
			forgetest.Reply(w, 422, map[string]any{"message": "Validation Failed", "errors": []any{map[string]any{"message": msg}}})
			return true
		})
		dp := deployTo(t, n, clk, commitA, store.DeploySucceeded, false)
		runOnce(t, n)
		reports, _ := n.st.DeployReports(context.Background(), dp.ID)
		if last := reports[len(reports)-1]; last.Result != store.ReportFailed {
			t.Fatalf("a 422 without the limit's message: %+v", last)
		}
		f.Answer(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPost {
				return false
			}
			forgetest.Reply(w, 422, map[string]any{"message": msg})
			return true
		})
		dp = deployTo(t, n, clk, commitB, store.DeploySucceeded, false)
		runOnce(t, n)
		reports, _ = n.st.DeployReports(context.Background(), dp.ID)
		if last := reports[len(reports)-1]; last.Result != store.ReportSent || last.HTTPStatus != 422 || last.Attempts != 1 {
			t.Fatalf("the status limit's 422: %+v", last)
		}
	})
	t.Run("gitlab 400 cannot transition", func(t *testing.T) {
		f := forgetest.New(t, GitLab, pat)
		clk := newClock()
		n := openNode(t, filepath.Join(t.TempDir(), "hookgate.db"), "web1", clk, forgeConfig(f, Target{}))
		// Another writer (a second pipeline job) set running with its own description.
		f.SetStatus("acme/site", commitA, forgetest.Status{Context: "hookgate/site", State: "running", Description: "other"})
		r := store.DueReport{Report: store.Report{Repo: "site", Status: "running", CreatedAt: clk.now(), Commit: commitA}}
		out := n.s.send(context.Background(), r)
		if out.Result != store.ReportSent || out.HTTPStatus != 400 {
			t.Fatalf("report %+v", out)
		}
		if n.res.get("f/unchanged") != 1 {
			t.Fatalf("metric %v", n.res.n)
		}
	})
}

// TestSkipsWhatTheForgeShows: a status the forge already shows for the context, with the
// same description, is not posted again.
func TestSkipsWhatTheForgeShows(t *testing.T) {
	f := forgetest.New(t, GitHub, pat)
	clk := newClock()
	n := openNode(t, filepath.Join(t.TempDir(), "hookgate.db"), "web1", clk, forgeConfig(f, Target{}))
	r := store.DueReport{Report: store.Report{DeployID: 3, Repo: "site", Status: "queued", CreatedAt: clk.now(), Commit: commitA}}
	n.s.send(context.Background(), r)
	n.s.send(context.Background(), r)
	posts := 0
	for _, c := range f.Called() {
		if strings.HasPrefix(c, "POST") {
			posts++
		}
	}
	if posts != 1 {
		t.Fatalf("calls %v: want one POST", f.Called())
	}
}

// TestGitHubAppToken: a GitHub App forge buys an installation token with an RS256 JWT,
// uses it until 5 minutes before its expires_at, then buys another.
func TestGitHubAppToken(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := forgetest.New(t, GitHub, "")
	clk := newClock()
	f.AppID, f.Installation, f.AppKey, f.Now, f.TokenTTL = 99, 4242, &key.PublicKey, clk.now, time.Hour
	cfg := forgeConfig(f, Target{})
	cfg.Forges["f"] = NewForge("f", GitHub, f.APIURL(), "", NewApp(99, 4242, key))
	n := openNode(t, filepath.Join(t.TempDir(), "hookgate.db"), "web1", clk, cfg)
	send := func(status string) {
		r := store.DueReport{Report: store.Report{Repo: "site", Status: status, CreatedAt: clk.now(), Commit: commitA},
			StartedAt: clk.now(), FinishedAt: clk.now()}
		if out := n.s.send(context.Background(), r); out.Result != store.ReportSent {
			t.Fatalf("%s: %+v", status, out)
		}
	}
	send("queued")
	send("running")
	if f.Issued() != 1 {
		t.Fatalf("tokens issued %d, want 1 reused", f.Issued())
	}
	clk.add(54 * time.Minute)
	send("succeeded")
	if f.Issued() != 1 {
		t.Fatalf("tokens issued %d before the renewal margin", f.Issued())
	}
	clk.add(2 * time.Minute) // 4 minutes before expires_at
	send("failed")
	if f.Issued() != 2 {
		t.Fatalf("tokens issued %d, want a renewal", f.Issued())
	}
	if got := f.Latest("acme/site", commitA, "hookgate/site").State; got != "failure" {
		t.Fatalf("state %s", got)
	}
	if c := f.Called(); c[0] != "POST /app/installations/4242/access_tokens" {
		t.Fatalf("calls %v", c)
	}
}

// TestFleetReportsTwoContexts: two nodes deploying one target report under two contexts,
// each only the deploy it ran, so neither overwrites the other's status.
func TestFleetReportsTwoContexts(t *testing.T) {
	path := pgtest.Database(t) // a fleet is several gateways on one PostgreSQL database
	f := forgetest.New(t, GitHub, pat)
	clk := newClock()
	cfg := forgeConfig(f, Target{PerNode: true})
	a := openNode(t, path, "a", clk, cfg)
	b := openNode(t, path, "b", clk, cfg)
	ctx := context.Background()
	if _, err := a.st.EnqueueRollback(ctx, "site", commitA, "test"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{a, b} {
		dp, err := n.st.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		status := store.DeploySucceeded
		if n == b {
			status = store.DeployFailed
		}
		if err := n.st.FinishDeploy(ctx, dp.ID, store.Result{Status: status, ToCommit: commitA, Error: "exit 1"}); err != nil {
			t.Fatal(err)
		}
	}
	runOnce(t, a)
	if s := f.Latest("acme/site", commitA, "hookgate/site@b"); s.State != "" {
		t.Fatalf("node a reported node b's deploy: %+v", s)
	}
	runOnce(t, b)
	if s := f.Latest("acme/site", commitA, "hookgate/site@a"); s.State != "success" {
		t.Fatalf("context @a: %+v", s)
	}
	if s := f.Latest("acme/site", commitA, "hookgate/site@b"); s.State != "failure" {
		t.Fatalf("context @b: %+v", s)
	}
}

// TestTokensNeverRecorded: a forge that echoes the token in its refusal; the recorded
// error and endpoint hold no token.
func TestTokensNeverRecorded(t *testing.T) {
	f := forgetest.New(t, GitLab, pat)
	clk := newClock()
	n := openNode(t, filepath.Join(t.TempDir(), "hookgate.db"), "web1", clk, forgeConfig(f, Target{}))
	f.Answer(func(w http.ResponseWriter, r *http.Request) bool {
		forgetest.Reply(w, 403, map[string]any{"message": "token " + r.Header.Get("PRIVATE-TOKEN") + " lacks scope api"})
		return true
	})
	dp := deployTo(t, n, clk, commitA, store.DeploySucceeded, true)
	reports, _ := n.st.DeployReports(context.Background(), dp.ID)
	for _, r := range reports {
		if strings.Contains(fmt.Sprintf("%+v", r), pat) {
			t.Fatalf("a report holds the token: %+v", r)
		}
		if r.Result != store.ReportFailed && r.Result != store.ReportSkipped {
			t.Fatalf("report %+v", r)
		}
	}
	if !strings.Contains(reports[len(reports)-1].Error, "lacks scope api") {
		t.Fatalf("error %q", reports[len(reports)-1].Error)
	}
}
