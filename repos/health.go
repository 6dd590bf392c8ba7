// This file owns a target's health check: its settings, one probe (an HTTP GET or a
// command), and the verification after a deploy's commands (probes until healthy_after
// consecutive passes or the deadline).
package repos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

// Health is a target's [repos.NAME.health] settings: exactly one of URL or Command.
type Health struct {
	URL     string // probed with GET; http or https
	Command string // run with sh -c in the checkout, as run_as, with the deploy's HOOKGATE_* variables
	// ExpectStatus lists the HTTP statuses that pass; empty: any 2xx.
	ExpectStatus []int
	ExpectBody   string // a substring the body must contain; "": any body
	Host         string // the Host header of the GET; "": the URL's host
	ProbeTimeout time.Duration
	StartDelay   time.Duration // after the commands, before the first probe
	Interval     time.Duration // between the starts of two probes
	Deadline     time.Duration // from the end of the commands
	HealthyAfter int           // consecutive passing probes that make the deploy healthy
	OnFailure    string        // HealthRollback or HealthFail
}

// The values of Health.OnFailure.
const (
	HealthRollback = "rollback" // queue an auto_rollback deploy to the last good commit
	HealthFail     = "fail"     // the deploy fails; nothing else happens
)

// Health check results, as the metrics and the API name them.
const (
	HealthPassed     = "passed"
	HealthFailed     = "failed"
	HealthSuperseded = "superseded" // a newer deploy was queued while the check ran
)

// maxBodyRead is how much of a probe's body is read to look for expect_body; the first
// store.MaxProbeOutput bytes of it are kept.
const maxBodyRead = 64 << 10

// probeClient fetches health URLs: no proxy (a check is of this machine's service, or
// one beside it, not of what a proxy answers), and no connection kept between probes, so
// each probe sees whether the service accepts connections now.
var probeClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	// A redirect is followed, as a browser or a load balancer's check would.
}

// verdict is how a deploy's health check ended.
type verdict struct {
	result string // "" (no check ran), HealthPassed, HealthFailed or HealthSuperseded
	cause  string // HealthFailed: the last probe's cause
	took   time.Duration
}

// probe runs one probe of h against the checkout at dir.
func (m *Manager) probe(ctx context.Context, h *Health, r Repo, env []string) store.Probe {
	p := store.Probe{Repo: r.Name, At: time.Now().UTC(), Kind: store.ProbeURL}
	ctx, cancel := context.WithTimeout(ctx, h.ProbeTimeout)
	defer cancel()
	start := time.Now()
	if h.Command != "" {
		p.Kind = store.ProbeCommand
		out := newTailBuffer()
		err := runCommand(ctx, h.Command, r.Path, env, r.RunAs, out)
		p.Latency = time.Since(start)
		p.Output, _ = out.Snapshot()
		var exit *exec.ExitError
		switch {
		case err == nil:
			p.Passed = true
		case ctx.Err() != nil:
			p.Error = fmt.Sprintf("command timed out after %s", h.ProbeTimeout)
		case errors.As(err, &exit):
			p.Code = exit.ExitCode()
			p.Error = fmt.Sprintf("command exited %d", p.Code)
			if p.Code < 0 {
				p.Error = fmt.Sprintf("command ended: %v", err)
			}
		default:
			p.Error = fmt.Sprintf("command: %v", err)
		}
	} else {
		p.Passed, p.Code, p.Output, p.Error = getHealth(ctx, h)
		p.Latency = time.Since(start)
	}
	if len(p.Output) > store.MaxProbeOutput {
		p.Output = strings.ToValidUTF8(p.Output[:store.MaxProbeOutput], "")
	}
	return p
}

// getHealth GETs h.URL and says whether it passes h's status and body checks.
func getHealth(ctx context.Context, h *Health) (passed bool, status int, body, cause string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return false, 0, "", fmt.Sprintf("GET %s: %v", h.URL, err)
	}
	if h.Host != "" {
		req.Host = h.Host
	}
	req.Header.Set("User-Agent", "hookgate-health-check")
	resp, err := probeClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, 0, "", fmt.Sprintf("GET %s: no answer within %s", h.URL, h.ProbeTimeout)
		}
		return false, 0, "", fmt.Sprintf("GET %s: %v", h.URL, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBodyRead))
	body = string(b)
	status = resp.StatusCode
	switch {
	case len(h.ExpectStatus) > 0 && !slices.Contains(h.ExpectStatus, status):
		return false, status, body, fmt.Sprintf("GET %s answered %d, want %s", h.URL, status, joinInts(h.ExpectStatus))
	case len(h.ExpectStatus) == 0 && (status < 200 || status > 299):
		return false, status, body, fmt.Sprintf("GET %s answered %d, want 2xx", h.URL, status)
	case rerr != nil:
		return false, status, body, fmt.Sprintf("GET %s: reading the body: %v", h.URL, rerr)
	case h.ExpectBody != "" && !strings.Contains(body, h.ExpectBody):
		return false, status, body, fmt.Sprintf("GET %s answered %d without %q in the body", h.URL, status, h.ExpectBody)
	}
	return true, status, body, ""
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, " or ")
}

// verify runs r's health check after dp's commands: probes every interval from
// start_delay on, until healthy_after consecutive passes, the deadline (counted from now,
// the end of the commands), a newer deploy queued for the target (superseded) or the
// gateway killing its deploys (interrupted: the caller sees m.killing ended).
func (w *worker) verify(dp store.Deploy, r Repo, env []string, out *tailBuffer) verdict {
	m, h := w.m, r.Health
	start := time.Now()
	deadline := start.Add(h.Deadline)
	out.Printf("hookgate: verifying: %s every %s from %s on, %d passing in a row within %s", describeCheck(h),
		h.Interval, h.StartDelay, h.HealthyAfter, h.Deadline)
	v := verdict{result: HealthFailed}
	defer func() { v.took = time.Since(start) }()
	// wait waits until t; false when the check is to end: superseded or killed.
	wait := func(t time.Time) bool {
		timer := time.NewTimer(time.Until(t))
		defer timer.Stop()
		for {
			select {
			case <-timer.C:
				return !w.superseded()
			case <-m.killing.Done():
				return false
			case <-w.wake:
				if w.superseded() {
					return false
				}
			}
		}
	}
	next := start.Add(h.StartDelay)
	passes, n := 0, 0
	for {
		if !wait(next) {
			if m.killing.Err() != nil {
				v.cause = "interrupted"
				return v
			}
			out.Printf("hookgate: check ended: a newer deploy of %s is queued", r.Name)
			v.result = HealthSuperseded
			return v
		}
		n++
		began := time.Now()
		p := m.probe(m.killing, h, r, env)
		p.DeployID, p.Node = dp.ID, dp.Node
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := m.store.RecordProbe(ctx, p); err != nil {
			m.log.Warn("record probe", "deploy_id", dp.ID, "repo", r.Name, "err", err)
		}
		cancel()
		if p.Passed {
			passes++
			out.Printf("hookgate: probe %d passed (%s, %s)", n, probeCode(p), p.Latency.Round(time.Millisecond))
			if passes >= h.HealthyAfter {
				out.Printf("hookgate: healthy after %d probe(s)", n)
				v.result = HealthPassed
				return v
			}
		} else {
			passes = 0
			v.cause = p.Error
			out.Printf("hookgate: probe %d failed: %s", n, p.Error)
		}
		next = began.Add(h.Interval)
		if next.After(deadline) {
			if v.cause == "" || p.Passed {
				v.cause = fmt.Sprintf("%d of %d consecutive probes passed before the deadline (%s)", passes, h.HealthyAfter, h.Deadline)
			}
			return v
		}
	}
}

// superseded says whether a deploy of the worker's target is queued for this node.
func (w *worker) superseded() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	queued, err := w.m.store.QueuedRepos(ctx)
	if err != nil {
		w.m.log.Warn("verify: list queued deploys", "repo", w.config().Name, "err", err)
		return false
	}
	return slices.Contains(queued, w.config().Name)
}

func describeCheck(h *Health) string {
	if h.Command != "" {
		return "command " + strconv.Quote(h.Command)
	}
	return "GET " + h.URL
}

func probeCode(p store.Probe) string {
	if p.Kind == store.ProbeCommand {
		return fmt.Sprintf("exit %d", p.Code)
	}
	return fmt.Sprintf("HTTP %d", p.Code)
}

// avoidBad returns the commit dp is to move the checkout to: dp.Target, or for a deploy of
// origin's head that nobody forced (a push, a coalesced follow-up, a redelivery, a replay,
// a reconcile, a recovery) while the target has bad commits, origin's head as looked up
// now, so that the fetch cannot bring a newer head unchecked. skip is that head's bad
// commit reason when it is bad: the deploy then deploys nothing. A manual deploy was
// checked (or forced) when it was asked for.
func (w *worker) avoidBad(ctx context.Context, dp store.Deploy, r Repo, out *tailBuffer) (target, skip string) {
	bads := w.badCommits(ctx, dp, r)
	if len(bads) == 0 {
		return dp.Target, ""
	}
	head, err := checkout.OriginHead(ctx, r.Spec)
	if err != nil {
		// The fetch will say what is wrong with origin; nothing is known to be bad.
		w.m.log.Warn("look up origin before a deploy", "repo", r.Name, "err", err)
		return "", ""
	}
	if reason := badReason(bads, head); reason != "" {
		return "", reason
	}
	out.Printf("hookgate: origin %s at %s (the target has bad commits: this one is not)", r.Branch, short(head))
	return head, ""
}

// avoidBadTag is avoidBad for a tag target's deploy of tag: skip is the bad commit reason
// of the commit tag points to on origin (an annotated tag peeled), looked up now, when the
// deploy is one nobody forced and that commit is bad for the target. A push of an
// annotated tag names the tag object, not its commit, so the delivery could not refuse it;
// a coalesced deploy, a recovery or a reconcile goes to a tag no delivery named.
func (w *worker) avoidBadTag(ctx context.Context, dp store.Deploy, r Repo, tag string, out *tailBuffer) (skip string) {
	bads := w.badCommits(ctx, dp, r)
	if len(bads) == 0 {
		return ""
	}
	tags, err := checkout.OriginTags(ctx, r.Spec, r.Tags)
	if err != nil {
		// The fetch will say what is wrong with origin; nothing is known to be bad.
		w.m.log.Warn("look up origin's tags before a deploy", "repo", r.Name, "err", err)
		return ""
	}
	for _, t := range tags {
		if t.Name != tag {
			continue
		}
		if reason := badReason(bads, t.Commit); reason != "" {
			return reason
		}
		out.Printf("hookgate: tag %s at %s (the target has bad commits: this one is not)", tag, short(t.Commit))
	}
	return ""
}

// badCommits is what avoidBad and avoidBadTag check against: r's bad commits, or none
// for a deploy to a commit of its own (a rollback, a pin) or a manual one (checked, or
// forced, when it was asked for).
func (w *worker) badCommits(ctx context.Context, dp store.Deploy, r Repo) []store.BadCommit {
	if dp.Target != "" || dp.Trigger == store.TriggerManual {
		return nil
	}
	bads, err := w.m.store.BadCommits(ctx, r.Name)
	if err != nil {
		w.m.log.Warn("read bad commits", "repo", r.Name, "err", err)
		return nil
	}
	return bads
}

// badReason is the reason commit is bad, "" when it is not one of bads.
func badReason(bads []store.BadCommit, commit string) string {
	for _, b := range bads {
		if b.Commit == commit {
			return b.Reason
		}
	}
	return ""
}

// ErrNoHealthCheck is Verify's answer for a target without [health].
var ErrNoHealthCheck = errors.New("no health check is configured")

// ErrDeployRunning is Verify's answer while a deploy of the target is running or verifying
// on this node: what is live is changing, and the deploy's own check is the answer.
var ErrDeployRunning = errors.New("a deploy is running")

// ErrNotHere is Verify's answer for a target this node does not deploy.
var ErrNotHere = errors.New("not deployed by this node")

// Verify runs repo's health check now against what is live, as an operator asked: up to
// healthy_after probes, interval apart, ending at the first that fails; each is recorded
// without a deploy. It never rolls anything back. healthy is whether all of them passed.
func (m *Manager) Verify(ctx context.Context, repo string) (healthy bool, probes []store.Probe, err error) {
	m.mu.Lock()
	w := m.workers[repo]
	m.mu.Unlock()
	if w == nil {
		return false, nil, ErrNotHere
	}
	r := w.config()
	if r.Health == nil {
		return false, nil, ErrNoHealthCheck
	}
	// Not while a deploy moves the checkout or checks it; a deploy queued meanwhile waits
	// for the probes (healthy_after of them at most).
	if err := w.beginVerify(); err != nil {
		return false, nil, err
	}
	defer w.endVerify()
	head, _, _ := checkout.Head(r.Path)
	env := append(slices.Clone(m.baseEnv()), "HOOKGATE_REPO="+r.Name, "HOOKGATE_COMMIT="+head,
		"HOOKGATE_REF=refs/heads/"+r.Branch, "HOOKGATE_TRIGGER=verify")
	for i := 0; i < r.Health.HealthyAfter; i++ {
		if i > 0 {
			t := time.NewTimer(r.Health.Interval)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return false, probes, ctx.Err()
			}
		}
		p := m.probe(ctx, r.Health, r, env)
		p.Node = m.store.Node()
		if err := m.store.RecordProbe(ctx, p); err != nil {
			return false, probes, err
		}
		probes = append(probes, p)
		if !p.Passed {
			return false, probes, nil
		}
	}
	return true, probes, nil
}
