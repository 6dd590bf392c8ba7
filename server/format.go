// This file owns the template helpers of the pages: times, durations, hashes, refs,
// sizes and the colour of a status.
package server

import (
	"fmt"
	"strings"
	"time"

	"github.com/hookgate/hookgate/app"
	"github.com/hookgate/hookgate/store"
)

// ago says how long before now t was, in the largest unit that fits.
func (p *pages) ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := p.s.now().Sub(t)
	switch {
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	case d < 60*24*time.Hour:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
	return t.UTC().Format("2 Jan 2006")
}

// since is the wall-clock time t, in UTC, for "down since …": the time of day when it was
// today, else with its date too.
func (p *pages) since(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	t = t.UTC()
	if y, m, d := p.s.now().UTC().Date(); t.Year() == y && t.Month() == m && t.Day() == d {
		return t.Format("15:04:05 UTC")
	}
	return t.Format("2 Jan 2006 15:04 UTC")
}

// took is a deploy's duration; for one still running, the time so far.
func (p *pages) took(start, end time.Time) string {
	if start.IsZero() {
		return ""
	}
	if end.IsZero() {
		return humanDuration(p.s.now().Sub(start)) + " so far"
	}
	return humanDuration(end.Sub(start))
}

func humanDuration(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func shortHash(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

// shortGUID is a delivery GUID's first group (eight characters of a UUID), as much as
// it takes to find the delivery in the forge's "Recent Deliveries".
func shortGUID(g string) string {
	if len(g) > 8 {
		return g[:8]
	}
	return g
}

// httpTone colours the status a delivery was answered: a 2xx as the forge counts it a
// success, anything else red, as the forge's list shows it.
func httpTone(code int) string {
	if code >= 200 && code < 300 {
		return "ok"
	}
	return "bad"
}

// commitURL links a commit on the forge, only for an https repository URL and a real
// hash: both come from the payload, and a page must not link to just anything.
func commitURL(repoURL, hash string) string {
	if !strings.HasPrefix(repoURL, "https://") || (len(hash) != 40 && len(hash) != 64) {
		return ""
	}
	for _, r := range hash {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return ""
		}
	}
	return strings.TrimSuffix(repoURL, "/") + "/commit/" + hash
}

// refName shortens refs/heads/main to main and refs/tags/v1 to "tag v1".
func refName(ref string) string {
	if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return b
	}
	if t, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		return "tag " + t
	}
	return ref
}

// tone is the colour class of a status: ok (green), busy (amber), bad (red), info, muted.
func tone(status string) string {
	switch status {
	case store.DeploySucceeded, store.SignatureValid, store.NotificationSent, store.NodeUp:
		return "ok"
	case store.DeployQueued, store.DeployRunning, store.DeployVerifying, store.DeployWaiting:
		// Verifying (the health check) and waiting (the forge's checks) are not done yet.
		return "busy"
	case store.DeployFailed, store.DeployInterrupted, store.DeliveryRejected, store.SignatureInvalid, store.SignatureMissing,
		store.NotificationDropped, store.NodeDown:
		return "bad"
	case store.DeliveryAccepted, store.DeploySkipped:
		// A skipped deploy (paths) is a decision recorded, neither a success nor a failure.
		return "info"
	case store.DeploySuperseded:
		return "muted" // a newer deploy took its place: nothing to look at
	}
	return "muted"
}

// rowTone colours a delivery by its outcome: for an accepted one, its deploy's status;
// with a deploy on each of several nodes, the worst of theirs (a failure anywhere is
// red, then anything still queued or running is amber).
func rowTone(d store.Delivery) string {
	if d.Status != store.DeliveryAccepted {
		return tone(d.Status)
	}
	if len(d.Deploys) > 1 {
		worst := ""
		for _, r := range d.Deploys {
			t := tone(r.Status)
			if toneRank[t] > toneRank[worst] {
				worst = t
			}
		}
		return worst
	}
	if d.DeployStatus != "" {
		return tone(d.DeployStatus)
	}
	return tone(d.Status)
}

// toneRank orders tones from the least to the most urgent, for rowTone.
var toneRank = map[string]int{"muted": 1, "info": 2, "ok": 3, "busy": 4, "bad": 5}

// perNode tells whether a delivery's deploys are shown one per node: in a fleet, or when
// it has several.
func perNode(fleet bool, d store.Delivery) bool { return fleet || len(d.Deploys) > 1 }

func activeStatus(status string) bool { return app.ActiveStatus(status) }

// rowActive tells whether any deploy a delivery joined is still queued or running.
func rowActive(d store.Delivery) bool {
	if d.DeployID != 0 && activeStatus(d.DeployStatus) {
		return true
	}
	for _, r := range d.Deploys {
		if activeStatus(r.Status) {
			return true
		}
	}
	return false
}

func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// targetRow is what a [hooks.NAME] delivery did for one target: queued, with the deploys
// it joined (one per node), or ignored with the reason.
type targetRow struct {
	store.TargetOutcome
	Deploys []store.DeployRef
}

// targetRows pairs each target outcome of d with the deploys of that target it joined.
func targetRows(d store.Delivery) []targetRow {
	out := make([]targetRow, len(d.Targets))
	for i, t := range d.Targets {
		out[i].TargetOutcome = t
		for _, r := range d.Deploys {
			if r.Repo == t.Repo {
				out[i].Deploys = append(out[i].Deploys, r)
			}
		}
	}
	return out
}
