// This file owns a target's health check: its settings, one probe (an HTTP GET or a
// command), and the verification after a deploy's commands (probes until healthy_after
// consecutive passes or the deadline).
package repos

import (
	"time"
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
