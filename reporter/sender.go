package reporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/internal/scrub"
	"github.com/hookgate/hookgate/store"
)

// Results of one attempt at a report, the result label of hookgate_forge_reports_total.
const (
	ResultSent      = "sent"      // posted
	ResultUnchanged = "unchanged" // the forge already showed it, or refused in a way that counts as sent
	ResultRetry     = "retry"     // failed; tried again later
	ResultFailed    = "failed"    // given up
	ResultSkipped   = "skipped"   // not needed: a newer report of the deploy, or no commit to report on
)

// Results lists every result, for the metric's zero series.
var Results = []string{ResultSent, ResultUnchanged, ResultRetry, ResultFailed, ResultSkipped}

// Options tune a Sender; zero values take the defaults.
type Options struct {
	Backoff    time.Duration // after the first failed attempt, doubling (default 1s)
	MaxBackoff time.Duration // default 5m
	GiveUp     time.Duration // a report still failing this long after it was written is failed (default 24h)
	HTTPClient *http.Client  // default: NewClient's
	Logger     *slog.Logger
	// Observe, when set, counts each attempt's result by forge (the metric).
	Observe func(forge, result string)
}

// Sender sends this node's pending reports from the store's outbox, in the background:
// a deploy only writes its report; a forge that is down delays nothing but the report.
type Sender struct {
	st   *store.Store
	opts Options
	log  *slog.Logger
	now  func() time.Time
	cfg  atomic.Pointer[senderConfig]
	wake chan struct{}
}

type senderConfig struct {
	Config
	clients map[string]*Client // by forge name
}

// NewSender prepares a sender of st's reports as cfg says; Run sends.
func NewSender(st *store.Store, cfg Config, opts Options) *Sender {
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.GiveUp <= 0 {
		opts.GiveUp = 24 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Sender{st: st, opts: opts, log: opts.Logger, now: time.Now, wake: make(chan struct{}, 1)}
	s.SetConfig(cfg)
	return s
}

// SetConfig replaces the forges and targets, as a reload does. A forge whose API and
// credentials did not change keeps its client (and a GitHub App's token).
func (s *Sender) SetConfig(cfg Config) {
	next := &senderConfig{Config: cfg, clients: map[string]*Client{}}
	old := s.cfg.Load()
	for name, f := range cfg.Forges {
		if old != nil {
			if c := old.clients[name]; c != nil && sameForge(c.f, f) {
				next.clients[name] = c
				continue
			}
		}
		c := NewClient(f, s.opts.HTTPClient)
		c.now = func() time.Time { return s.now() }
		next.clients[name] = c
	}
	s.cfg.Store(next)
}

func sameForge(a, b *Forge) bool {
	if a.Type != b.Type || a.APIURL != b.APIURL || a.token != b.token || (a.app == nil) != (b.app == nil) {
		return false
	}
	return a.app == nil || (a.app.ID == b.app.ID && a.app.InstallationID == b.app.InstallationID && a.app.key.Equal(b.app.key))
}

// Wake tells the sender a report was written; it never blocks (the store calls it after
// each commit that wrote one).
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// idleCheck bounds the wait between looks at the outbox, in case a wake-up was lost.
const idleCheck = 30 * time.Second

// Run sends due reports until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		if _, err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("forge reports: reading the outbox failed", "err", err)
		}
		wait := idleCheck
		if next, err := s.st.NextReportAt(ctx); err == nil && !next.IsZero() {
			wait = min(max(next.Sub(s.now()), 10*time.Millisecond), idleCheck)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			if !t.Stop() {
				<-t.C
			}
		case <-t.C:
		}
	}
}

// RunOnce sends every report due now and returns how many it handled.
func (s *Sender) RunOnce(ctx context.Context) (int, error) {
	n := 0
	for {
		due, err := s.st.DueReports(ctx, s.now(), 100)
		if err != nil {
			return n, err
		}
		if len(due) == 0 {
			return n, nil
		}
		for _, r := range due {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			if err := s.st.UpdateReport(ctx, s.send(ctx, r)); err != nil {
				return n, err
			}
			n++
		}
	}
}

// send makes one attempt at r and returns the row to record.
func (s *Sender) send(ctx context.Context, r store.DueReport) store.Report {
	out := r.Report
	out.Attempts++
	cfg := s.cfg.Load()
	t, ok := cfg.Targets[r.Repo]
	row, known := StateOf(r.Status)
	if nothingChanged(r) {
		row = NothingChanged
	}
	leftBehind := r.SupersededBy != "" // a commit the deploy's reports moved away from
	c := cfg.clients[t.Forge]
	finish := func(result, msg string) store.Report {
		out.Result, out.Error = result, msg
		label := map[string]string{store.ReportSent: ResultSent, store.ReportSkipped: ResultSkipped, store.ReportFailed: ResultFailed}[result]
		s.observe(out.Forge, label)
		return out
	}
	switch {
	case !ok || c == nil:
		return finish(store.ReportSkipped, "the target no longer reports to a forge")
	case r.Newer:
		out.Forge = t.Forge
		return finish(store.ReportSkipped, "a newer status of this deploy replaced it")
	case !known:
		out.Forge = t.Forge
		return finish(store.ReportFailed, fmt.Sprintf("no forge state for deploy status %q", r.Status))
	}
	out.Forge = t.Forge
	typ := c.f.Type
	out.State = row.commit(typ)
	if r.Commit == "" {
		if r.FinishedAt.IsZero() && r.Status != "interrupted" {
			// A deploy that has just started learns its commit from the fetch; its next
			// report replaces this one if it ends first.
			return s.retry(out, r, &Error{Msg: "the deploy's commit is not known yet", Retry: true})
		}
		return finish(store.ReportSkipped, "the deploy knows no commit to report on")
	}
	link := ""
	if cfg.PublicURL != "" {
		link = fmt.Sprintf("%s/deploys/%d", cfg.PublicURL, r.DeployID)
	}
	desc := describe(r)
	if leftBehind {
		desc = "superseded by " + short(r.SupersededBy)
	}
	repo := t.Repository // a deploy no payload named a repository for (reconcile, manual, rollback)
	if r.ForgeRepo != "" {
		repo = r.ForgeRepo
	}
	posted, calls, err := c.PostStatus(ctx, repo, r.Commit, CommitStatus{
		State: out.State, Context: t.ContextFor(r.Node), Description: desc, TargetURL: link})
	out.Endpoint, out.HTTPStatus = lastCall(calls)
	if err == nil && t.Deployments && row.deployment(typ) != "" {
		ref := r.Ref
		if ref == "" && t.Branch != "" {
			ref = "refs/heads/" + t.Branch
		}
		var dposted Posted
		dposted, calls, err = c.PostDeployment(ctx, repo, Deployment{SHA: r.Commit, Ref: ref, Environment: t.Environment,
			State: row.deployment(typ), Description: desc, LogURL: link, EnvURL: t.EnvURL, OnlyExisting: leftBehind})
		if len(calls) > 0 {
			out.Endpoint, out.HTTPStatus = lastCall(calls)
			out.State += ", deployment " + row.deployment(typ)
		}
		if dposted == PostedNew {
			posted = PostedNew
		}
	}
	if err != nil {
		return s.retry(out, r, err)
	}
	out.Result, out.Error = store.ReportSent, ""
	if posted != PostedNew {
		s.observe(out.Forge, ResultUnchanged)
		if posted == PostedAccepted {
			out.Error = "the forge refused it in a way that counts as sent (status limit or the same state again)"
		}
		return out
	}
	s.observe(out.Forge, ResultSent)
	return out
}

// retry records a failed attempt: pending again after the backoff, or failed when the
// forge refused for good or the report is older than GiveUp.
func (s *Sender) retry(out store.Report, r store.DueReport, err error) store.Report {
	var fe *Error
	retry := true
	msg := err.Error()
	if errors.As(err, &fe) {
		retry = fe.Retry
		if fe.HTTPStatus != 0 {
			out.HTTPStatus = fe.HTTPStatus
		}
		if fe.Endpoint != "" {
			out.Endpoint = fe.Endpoint
		}
		msg = fe.Msg
	}
	out.Error = msg
	now := s.now()
	if !retry || now.Sub(r.CreatedAt) >= s.opts.GiveUp {
		out.Result = store.ReportFailed
		s.observe(out.Forge, ResultFailed)
		s.log.Warn("forge report given up", "repo", r.Repo, "deploy_id", r.DeployID, "forge", out.Forge,
			"endpoint", out.Endpoint, "http_status", out.HTTPStatus, "err", msg)
		return out
	}
	out.Result = store.ReportPending
	out.NextAt = now.Add(s.backoff(out.Attempts))
	s.observe(out.Forge, ResultRetry)
	return out
}

// backoff is the wait after the attempts-th failed attempt: Backoff, doubling, at most
// MaxBackoff.
func (s *Sender) backoff(attempts int) time.Duration {
	d := s.opts.Backoff
	for i := 1; i < attempts && d < s.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, s.opts.MaxBackoff)
}

func (s *Sender) observe(forge, result string) {
	if s.opts.Observe != nil && result != "" {
		s.opts.Observe(forge, result)
	}
}

func lastCall(calls []Call) (string, int) {
	if len(calls) == 0 {
		return "", 0
	}
	c := calls[len(calls)-1]
	return c.Endpoint, c.HTTPStatus
}

// nothingChanged says r is a deploy skipped by its paths (no error, a reason), not one
// that refused a bad commit.
func nothingChanged(r store.DueReport) bool {
	return r.Status == store.DeploySkipped && r.DeployErr == "" && r.Reason != ""
}

// describe is the status's description: what happened, at most 140 characters.
func describe(r store.DueReport) string {
	short := short(r.Commit)
	firstLine := func(s string) string {
		s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
		return scrub.Text(s)
	}
	switch r.Status {
	case "queued":
		return "queued"
	case "waiting":
		return "waiting for checks"
	case "running":
		return "deploying " + short
	case "verifying":
		return "verifying " + short
	case "succeeded":
		return clip(fmt.Sprintf("deployed %s in %s", short, took(r.FinishedAt.Sub(r.StartedAt))))
	case "failed":
		if e := firstLine(r.DeployErr); e != "" {
			return clip("failed: " + e)
		}
		return "failed"
	case "interrupted":
		return "interrupted; queued again"
	case "skipped":
		if nothingChanged(r) {
			return clip("nothing to deploy: " + firstLine(r.Reason))
		}
	case "superseded":
		if e := firstLine(r.DeployErr); e != "" {
			return clip(e) // "superseded by def5678", as the table words it
		}
	}
	if e := firstLine(r.DeployErr); e != "" {
		return clip(r.Status + ": " + e)
	}
	return r.Status
}

// short is commit's first 7 characters, as the descriptions name a commit.
func short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}

// took writes d as people read it: 12 s, 3 min 4 s.
func took(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s < 60 {
		return fmt.Sprintf("%d s", max(s, 0))
	}
	return fmt.Sprintf("%d min %d s", s/60, s%60)
}
