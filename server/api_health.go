// api_health.go owns how health checks show in the API: a deploy's probes and result.

package server

import (
	"time"

	"github.com/hookgate/hookgate/store"
)

// healthJSON is a deploy's health check: result is verifying while it runs, then passed,
// failed, superseded or interrupted.
type healthJSON struct {
	Result string      `json:"result"`
	Probes []probeJSON `json:"probes"`
}

// probeJSON is one probe. Code is the HTTP status for a url check and the exit code for a
// command; Output the first 2 KiB of the body or output.
type probeJSON struct {
	At        time.Time `json:"at"`
	LatencyMS int64     `json:"latency_ms"`
	Kind      string    `json:"kind"`
	Code      int       `json:"code"`
	Passed    bool      `json:"passed"`
	Output    string    `json:"output"`
	Error     string    `json:"error"`
}

func toProbesJSON(probes []store.Probe) []probeJSON {
	out := make([]probeJSON, len(probes))
	for i, p := range probes {
		out[i] = probeJSON{At: p.At, LatencyMS: p.Latency.Milliseconds(), Kind: p.Kind, Code: p.Code,
			Passed: p.Passed, Output: p.Output, Error: p.Error}
	}
	return out
}

// healthResult names how dp's check went; "" when dp had none.
func healthResult(dp store.Deploy, probes []store.Probe) string {
	if len(probes) == 0 && dp.Status != store.DeployVerifying {
		return ""
	}
	switch dp.Status {
	case store.DeploySucceeded:
		return "passed"
	case store.DeployVerifying, store.DeployRunning:
		return store.DeployVerifying
	}
	return dp.Status // failed, superseded, interrupted
}

func toHealthJSON(dp store.Deploy, probes []store.Probe) *healthJSON {
	result := healthResult(dp, probes)
	if result == "" {
		return nil
	}
	return &healthJSON{Result: result, Probes: toProbesJSON(probes)}
}
