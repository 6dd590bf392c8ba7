package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/app"
	"github.com/hookgate/hookgate/store"
)

// commitBody is the optional body of rollback and pin.
type commitBody struct {
	Commit string `json:"commit"`
}

// readCommitBody reads {"commit": "..."}; no body at all means no commit.
func readCommitBody(c *gin.Context) (string, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, 4<<10))
	if err != nil {
		return "", &outcomeError{http.StatusBadRequest, "invalid_body", "the body could not be read (at most 4 KB)"}
	}
	if strings.TrimSpace(string(raw)) == "" {
		return "", nil
	}
	var b commitBody
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return "", &outcomeError{http.StatusBadRequest, "invalid_body", `the body must be {"commit": "<full hash or a prefix of at least 7>"} or empty`}
	}
	return strings.TrimSpace(b.Commit), nil
}

// pinJSON is a pin as the API shows it.
type pinJSON struct {
	Commit string    `json:"commit"`
	At     time.Time `json:"at"`
	By     string    `json:"by"`
}

func toPinJSON(p *store.Pin) *pinJSON {
	if p == nil {
		return nil
	}
	return &pinJSON{Commit: p.Commit, At: p.At, By: p.By}
}

func (s *Server) apiRollback(c *gin.Context) {
	commit, err := readCommitBody(c)
	if err == nil {
		var dp store.Deploy
		if dp, err = s.app.Rollback(c.Request.Context(), c.Param("name"), commit); err == nil {
			c.JSON(http.StatusAccepted, gin.H{"deploy_id": dp.ID, "commit": dp.Target})
			return
		}
	}
	s.writeOutcomeError(c, err)
}

func (s *Server) apiPin(c *gin.Context) {
	commit, err := readCommitBody(c)
	if err == nil {
		var p store.Pin
		if p, err = s.app.Pin(c.Request.Context(), c.Param("name"), commit); err == nil {
			c.JSON(http.StatusOK, gin.H{"pinned": toPinJSON(&p)})
			return
		}
	}
	s.writeOutcomeError(c, err)
}

func (s *Server) apiUnpin(c *gin.Context) {
	u, err := s.app.Unpin(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.writeOutcomeError(c, err)
		return
	}
	out := gin.H{"deploy_id": nil}
	switch {
	case u.LookErr != nil:
		out["reason"] = "unpinned; origin could not be checked: " + u.LookErr.Error()
	case u.Elsewhere:
		out["reason"] = "unpinned; this node does not deploy the repository: the nodes that do compare origin with what they have live now"
	case u.Check != nil:
		if id := u.Deploy(); id != 0 {
			out["deploy_id"] = id
		}
		out["reason"] = u.Check.Reason
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) apiReconcile(c *gin.Context) {
	name := c.Param("name")
	check, err := s.app.Reconcile(c.Request.Context(), name)
	if errors.Is(err, app.ErrOriginLookUp) {
		// The check ran and decided: nothing can be compared, nothing is queued. The
		// answer keeps its shape, with why in reason and origin_error (as GET /repos).
		c.JSON(http.StatusOK, gin.H{"repo": name, "origin_commit": nil, "live_commit": nullIfEmpty(check.Live),
			"deploy_id": nil, "reason": "origin could not be looked up; nothing queued", "origin_error": err.Error()})
		return
	}
	if err != nil {
		s.writeOutcomeError(c, err)
		return
	}
	var id *int64
	if check.DeployID != 0 {
		id = &check.DeployID
	}
	c.JSON(http.StatusOK, gin.H{"repo": check.Repo, "origin_commit": check.Origin, "live_commit": nullIfEmpty(check.Live),
		"deploy_id": id, "reason": check.Reason})
}

// nullIfEmpty is s, or JSON null when there is none.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (p *pages) rollback(c *gin.Context) {
	dp, err := p.s.app.Rollback(c.Request.Context(), c.Param("name"), strings.TrimSpace(c.PostForm("commit")))
	if err != nil {
		p.outcomeFail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/deploys/%d", dp.ID))
}

func (p *pages) pin(c *gin.Context) {
	if _, err := p.s.app.Pin(c.Request.Context(), c.Param("name"), strings.TrimSpace(c.PostForm("commit"))); err != nil {
		p.outcomeFail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/repos")
}

func (p *pages) unpin(c *gin.Context) {
	u, err := p.s.app.Unpin(c.Request.Context(), c.Param("name"))
	if err != nil {
		p.outcomeFail(c, err)
		return
	}
	if id := u.Deploy(); id != 0 {
		c.Redirect(http.StatusSeeOther, fmt.Sprintf("/deploys/%d", id))
		return
	}
	c.Redirect(http.StatusSeeOther, "/repos")
}
