// api_health.go owns how health checks show in the API: a deploy's probes and result.

package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

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

// badCommitJSON is a commit whose health check failed on the target.
type badCommitJSON struct {
	Commit   string    `json:"commit"`
	DeployID int64     `json:"deploy_id"`
	At       time.Time `json:"at"`
	Reason   string    `json:"reason"`
}

func toBadCommitsJSON(bads []store.BadCommit) []badCommitJSON {
	out := make([]badCommitJSON, len(bads))
	for i, b := range bads {
		out[i] = badCommitJSON{Commit: b.Commit, DeployID: b.DeployID, At: b.At, Reason: b.Reason}
	}
	return out
}

// readForceBody reads deploy's optional body {"force": true}; no body means false.
func readForceBody(c *gin.Context) (bool, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, 4<<10))
	if err != nil {
		return false, &outcomeError{http.StatusBadRequest, "invalid_body", "the body could not be read (at most 4 KB)"}
	}
	if strings.TrimSpace(string(raw)) == "" {
		return false, nil
	}
	var b struct {
		Force bool `json:"force"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return false, &outcomeError{http.StatusBadRequest, "invalid_body", `the body must be {"force": true}, {"force": false} or empty`}
	}
	return b.Force, nil
}

// apiVerify answers POST /api/v1/repos/:name/verify: the check run now against what is
// live, its probes recorded; nothing is rolled back whatever it finds.
func (s *Server) apiVerify(c *gin.Context) {
	healthy, probes, err := s.app.Verify(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.writeOutcomeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"healthy": healthy, "probes": toProbesJSON(probes)})
}

// apiClearBad answers DELETE /api/v1/repos/:name/bad/:commit: 204, or 404 for a commit
// that is not bad (or a repository not configured).
func (s *Server) apiClearBad(c *gin.Context) {
	if err := s.app.ClearBadCommit(c.Request.Context(), c.Param("name"), c.Param("commit")); err != nil {
		s.writeOutcomeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// clearBad is the repositories page's Clear button of a bad commit.
func (p *pages) clearBad(c *gin.Context) {
	if err := p.s.app.ClearBadCommit(c.Request.Context(), c.Param("name"), c.Param("commit")); err != nil {
		p.outcomeFail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/repos")
}
