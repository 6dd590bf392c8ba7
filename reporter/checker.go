package reporter

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/store"
)

// CheckOptions tune a Checker; zero values take the defaults.
type CheckOptions struct {
	First time.Duration // the wait after the first look that found checks pending (default 10s), doubling
	Max   time.Duration // the longest wait between looks (default 60s)
	// HTTPClient, Logger: as Options'.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Checker moves this node's waiting deploys on: it looks at the forge's checks of each
// one's commit when it is due, and queues it when they are green, fails it when one is red
// or the timeout passed, and otherwise looks again later, backing off. It holds no worker
// slot while a deploy waits: the deploy is a row with a next look time, so a restart finds
// it where it was.
type Checker struct {
	st   *store.Store
	opts CheckOptions
	log  *slog.Logger
	now  func() time.Time
	cfg  atomic.Pointer[senderConfig]
	wake chan struct{}
}

// NewChecker prepares a checker of st's waiting deploys as cfg says; Run checks.
func NewChecker(st *store.Store, cfg Config, opts CheckOptions) *Checker {
	if opts.First <= 0 {
		opts.First = 10 * time.Second
	}
	if opts.Max <= 0 {
		opts.Max = 60 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Checker{st: st, opts: opts, log: opts.Logger, now: time.Now, wake: make(chan struct{}, 1)}
	c.SetConfig(cfg)
	return c
}

// SetConfig replaces the forges and targets, as a reload does.
func (c *Checker) SetConfig(cfg Config) {
	next := &senderConfig{Config: cfg, clients: map[string]*Client{}}
	for name, f := range cfg.Forges {
		cl := NewClient(f, c.opts.HTTPClient)
		cl.now = func() time.Time { return c.now() }
		next.clients[name] = cl
	}
	c.cfg.Store(next)
}

// Wake tells the checker a deploy may have begun to wait; it never blocks.
func (c *Checker) Wake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run looks at due waiting deploys until ctx ends.
func (c *Checker) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		if _, err := c.RunOnce(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("require_checks: reading the waiting deploys failed", "err", err)
		}
		wait := idleCheck
		if next, err := c.st.NextCheckAt(ctx); err == nil && !next.IsZero() {
			wait = min(max(next.Sub(c.now()), 10*time.Millisecond), idleCheck)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
			if !t.Stop() {
				<-t.C
			}
		case <-t.C:
		}
	}
}

// RunOnce looks at every waiting deploy due now and returns how many it looked at.
func (c *Checker) RunOnce(ctx context.Context) (int, error) {
	due, err := c.st.DueWaiting(ctx, c.now(), 100)
	if err != nil {
		return 0, err
	}
	for _, w := range due {
		if err := c.check(ctx, w); err != nil && !errors.Is(err, store.ErrConflict) {
			return 0, err
		}
	}
	return len(due), nil
}

// check looks once at w's checks and moves it on.
func (c *Checker) check(ctx context.Context, w store.Waiting) error {
	cfg := c.cfg.Load()
	t, ok := cfg.Targets[w.Repo]
	cl := cfg.clients[t.Forge]
	if !ok || len(t.RequireChecks) == 0 || cl == nil {
		// A reload turned require_checks off: nothing to wait for any more.
		return c.st.PassWaiting(ctx, w.ID)
	}
	now := c.now()
	repo := t.Repository
	if w.ForgeRepo != "" {
		repo = w.ForgeRepo
	}
	checks, err := cl.Checks(ctx, repo, w.Commit)
	verdict, waitingFor := "", ""
	if err != nil {
		waitingFor = "checks: the forge did not answer: " + err.Error()
		c.log.Warn("require_checks: looking at the checks failed", "repo", w.Repo, "deploy_id", w.ID, "err", err)
	} else {
		verdict, waitingFor = judge(t.RequireChecks, checks, c.own(cfg))
	}
	switch {
	case verdict == "green":
		return c.st.PassWaiting(ctx, w.ID)
	case strings.HasPrefix(verdict, "check "):
		return c.st.FailWaiting(ctx, w.ID, verdict)
	case t.ChecksTimeout > 0 && now.Sub(w.Since) >= t.ChecksTimeout:
		return c.st.FailWaiting(ctx, w.ID, "checks still pending after "+spell(t.ChecksTimeout))
	}
	next := now.Add(c.backoff(w.Polls))
	if deadline := w.Since.Add(t.ChecksTimeout); t.ChecksTimeout > 0 && next.After(deadline) {
		next = deadline // the timeout is noticed when it passes, not a backoff later
	}
	return c.st.PostponeWaiting(ctx, w.ID, next, waitingFor)
}

// own lists hookgate's own status contexts, which "*" leaves out (each target's context
// and its per-node forms start with it).
func (c *Checker) own(cfg *senderConfig) []string {
	var out []string
	for _, t := range cfg.Targets {
		out = append(out, t.Context)
	}
	return out
}

// backoff is the wait after the polls-th look: First, doubling, at most Max.
func (c *Checker) backoff(polls int) time.Duration {
	d := c.opts.First
	for i := 0; i < polls && d < c.opts.Max; i++ {
		d *= 2
	}
	return min(d, c.opts.Max)
}

// Check states as the forges name them: statuses (GitHub, Gitea, GitLab) and GitHub's
// check-run conclusions.
var (
	greenStates = []string{"success", "neutral", "skipped"}
	redStates   = []string{"failure", "error", "failed", "canceled", "cancelled", "timed_out", "action_required",
		"startup_failure", "warning"}
)

// judge says what checks mean for required (names, or "*" for every check but those
// whose name starts with one of own): "green", "check NAME failed", or "" while some are
// pending or missing, with what is still awaited.
func judge(required []string, checks []Check, own []string) (verdict, waitingFor string) {
	mine := func(name string) bool {
		for _, o := range own {
			if name == o || strings.HasPrefix(name, o+"@") {
				return true
			}
		}
		return false
	}
	// A name reported both as a status and a check run counts red if either is.
	state := map[string]string{}
	var names []string
	for _, ch := range checks {
		if mine(ch.Name) {
			continue
		}
		prev, seen := state[ch.Name]
		if !seen {
			names = append(names, ch.Name)
		}
		if !seen || slices.Contains(greenStates, prev) || slices.Contains(redStates, ch.State) {
			state[ch.Name] = ch.State
		}
	}
	want := required
	if slices.Contains(required, "*") {
		want = names
	}
	var pending []string
	for _, n := range want {
		st, ok := state[n]
		switch {
		case !ok:
			pending = append(pending, n+" (not reported yet)")
		case slices.Contains(redStates, st):
			return "check " + n + " failed", ""
		case !slices.Contains(greenStates, st):
			pending = append(pending, n+" ("+st+")")
		}
	}
	if len(want) == 0 {
		return "", "checks: none reported yet"
	}
	if len(pending) == 0 {
		return "green", ""
	}
	return "", "checks: " + strings.Join(pending, ", ")
}

// spell writes d as the config does: 30m, 90s, 1h30m.
func spell(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
