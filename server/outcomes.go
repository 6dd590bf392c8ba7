package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/repos"
	"github.com/hookgate/hookgate/store"
)

// Reconciler compares origin's branch head with what is live; a Deployer that is one (the
// real repos.Manager) serves the reconcile route, the origin fields of the repositories
// and the reconcile after an unpin.
type Reconciler interface {
	Reconcile(ctx context.Context, repo string) (repos.Check, error)
	OriginState(repo string) repos.OriginState
	// Deploys reports whether this gateway deploys repo (has its checkout).
	Deploys(repo string) bool
}

// outcomeError is a refusal of a rollback, pin or reconcile, with its status and code.
type outcomeError struct {
	status    int
	code, msg string
}

func (e *outcomeError) Error() string { return e.msg }

func unknownRepo(name string) error {
	return &outcomeError{http.StatusNotFound, "unknown_repo", fmt.Sprintf("no repository is configured under the name %q", name)}
}

// resolveCommit finds want in the branch's history as fetched into name's checkout. A node
// that does not deploy the repository has no checkout to look in.
func (s *Server) resolveCommit(h Hook, want string) (string, error) {
	commit, err := repos.ResolveCommit(h.Path, h.Branch, want)
	if err != nil && s.reconciler != nil && !s.reconciler.Deploys(h.Name) {
		return "", notDeployedHere(h.Name)
	}
	if err != nil {
		msg := err.Error()
		if !errors.Is(err, repos.ErrUnknownCommit) {
			msg = fmt.Sprintf("the history of %s cannot be read: %v", h.Name, err)
		}
		return "", &outcomeError{http.StatusUnprocessableEntity, "unknown_commit", msg}
	}
	return commit, nil
}

// liveCommit is what is live on name: the newest succeeded deploy's commit, else the
// checkout's HEAD; "" when neither is known.
func (s *Server) liveCommit(ctx context.Context, h Hook) (string, error) {
	st, err := s.store.RepoState(ctx, h.Name)
	if err != nil {
		return "", err
	}
	if st.LastOK != nil && st.LastOK.ToCommit != "" {
		return st.LastOK.ToCommit, nil
	}
	head, _, _ := repos.Head(h.Path)
	return head, nil
}

// rollback queues a deploy of name that moves the checkout to commit (or, when commit is
// "", to the commit live before the live one), and pins the repository there.
func (s *Server) rollback(ctx context.Context, name, commit string) (store.Deploy, error) {
	h, ok := s.hook(name)
	if !ok {
		return store.Deploy{}, unknownRepo(name)
	}
	live, err := s.liveCommit(ctx, h)
	if err != nil {
		return store.Deploy{}, err
	}
	if commit == "" {
		commit, err = s.store.PreviousCommit(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return store.Deploy{}, &outcomeError{http.StatusConflict, "no_previous_deploy",
				"no earlier succeeded deploy of another commit to roll back to; name a commit"}
		}
		if err != nil {
			return store.Deploy{}, err
		}
	}
	if commit, err = s.resolveCommit(h, commit); err != nil {
		return store.Deploy{}, err
	}
	reason := fmt.Sprintf("rollback to %s requested by an operator (live %s); the repository is pinned there",
		shortHash(commit), orNothing(shortHash(live)))
	dp, err := s.store.EnqueueRollback(ctx, name, commit, reason)
	if err != nil {
		return store.Deploy{}, err
	}
	s.deployer.Notify(name)
	s.log.Warn("rollback queued; repository pinned", "repo", name, "deploy_id", dp.ID, "commit", shortHash(commit), "live", shortHash(live))
	return dp, nil
}

func orNothing(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// pin holds name at commit (default: the live commit) without deploying.
func (s *Server) pin(ctx context.Context, name, commit string) (store.Pin, error) {
	h, ok := s.hook(name)
	if !ok {
		return store.Pin{}, unknownRepo(name)
	}
	var err error
	if commit == "" {
		if commit, err = s.liveCommit(ctx, h); err != nil {
			return store.Pin{}, err
		}
		if commit == "" {
			return store.Pin{}, &outcomeError{http.StatusConflict, "no_live_commit",
				"nothing is deployed and the checkout has no commit; name the commit to pin"}
		}
	} else if commit, err = s.resolveCommit(h, commit); err != nil {
		return store.Pin{}, err
	}
	p, err := s.store.SetPin(ctx, name, commit, store.PinnedByPin)
	if err != nil {
		return store.Pin{}, err
	}
	s.log.Warn("repository pinned", "repo", name, "commit", shortHash(commit))
	return p, nil
}

// unpinned is what followed an unpin: the reconcile check (nil without a reconciler) or
// why origin could not be checked; elsewhere when this node does not deploy the repository,
// so the check is left to the nodes that do (the store tells them).
type unpinned struct {
	check     *repos.Check
	lookErr   error
	elsewhere bool
}

// deploy is the deploy an unpin answers with, 0 when none: the one its check queued, else
// the one already queued or running. A poll or a push can land between lifting the pin and
// the check and queue origin's head first; the operator then waits for that deploy rather
// than being told there is nothing to deploy while one is under way.
func (u unpinned) deploy() int64 {
	switch {
	case u.check == nil:
		return 0
	case u.check.DeployID != 0:
		return u.check.DeployID
	}
	return u.check.InFlight
}

// notDeployedHere refuses what only a node that deploys the repository can do (compare
// origin with its live commit): name is configured here, for its deliveries, but its nodes
// list leaves this node out.
func notDeployedHere(name string) error {
	return &outcomeError{http.StatusConflict, "not_deployed_here",
		fmt.Sprintf("this node does not deploy %q (its nodes list leaves it out); ask a node that deploys it", name)}
}

// unpin lifts name's pin and reconciles at once.
func (s *Server) unpin(ctx context.Context, name string) (unpinned, error) {
	if _, ok := s.hook(name); !ok {
		return unpinned{}, unknownRepo(name)
	}
	was, err := s.store.Unpin(ctx, name)
	if err != nil {
		return unpinned{}, err
	}
	if was {
		s.log.Warn("repository unpinned", "repo", name)
	}
	if s.reconciler == nil {
		return unpinned{}, nil
	}
	c, err := s.reconciler.Reconcile(ctx, name)
	switch {
	case errors.Is(err, repos.ErrOriginLookUp):
		return unpinned{lookErr: err}, nil
	case errors.Is(err, repos.ErrUnknownRepo):
		// This node does not deploy the repository ([repos.NAME] nodes): the nodes that
		// do reconcile on their own, told by the store.
		return unpinned{elsewhere: true}, nil
	case err != nil:
		return unpinned{}, err
	}
	return unpinned{check: &c}, nil
}

// reconcileNow runs name's reconcile check now.
func (s *Server) reconcileNow(ctx context.Context, name string) (repos.Check, error) {
	if _, ok := s.hook(name); !ok {
		return repos.Check{}, unknownRepo(name)
	}
	if s.reconciler == nil {
		return repos.Check{}, &outcomeError{http.StatusServiceUnavailable, "unavailable", "reconcile is not available in this process"}
	}
	c, err := s.reconciler.Reconcile(ctx, name)
	if errors.Is(err, repos.ErrUnknownRepo) { // a hook without a worker here
		return c, notDeployedHere(name)
	}
	return c, err
}

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

// writeOutcomeError answers a refusal with its status and code; other errors go through
// writeStoreError.
func (s *Server) writeOutcomeError(c *gin.Context, err error) {
	var oe *outcomeError
	switch {
	case errors.As(err, &oe):
		writeError(c, oe.status, oe.code, oe.msg)
	case errors.Is(err, store.ErrPinned):
		writeError(c, http.StatusConflict, "pinned", s.pinnedMessage(c.Request.Context(), c.Param("name")))
	default:
		s.writeStoreError(c, err)
	}
}

func (s *Server) pinnedMessage(ctx context.Context, name string) string {
	if p, err := s.store.GetPin(ctx, name); err == nil && p != nil {
		return store.PinnedReason(p)
	}
	return "the repository is pinned; unpin it first"
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
		if dp, err = s.rollback(c.Request.Context(), c.Param("name"), commit); err == nil {
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
		if p, err = s.pin(c.Request.Context(), c.Param("name"), commit); err == nil {
			c.JSON(http.StatusOK, gin.H{"pinned": toPinJSON(&p)})
			return
		}
	}
	s.writeOutcomeError(c, err)
}

func (s *Server) apiUnpin(c *gin.Context) {
	u, err := s.unpin(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.writeOutcomeError(c, err)
		return
	}
	out := gin.H{"deploy_id": nil}
	switch {
	case u.lookErr != nil:
		out["reason"] = "unpinned; origin could not be checked: " + u.lookErr.Error()
	case u.elsewhere:
		out["reason"] = "unpinned; this node does not deploy the repository: the nodes that do compare origin with what they have live now"
	case u.check != nil:
		if id := u.deploy(); id != 0 {
			out["deploy_id"] = id
		}
		out["reason"] = u.check.Reason
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) apiReconcile(c *gin.Context) {
	name := c.Param("name")
	check, err := s.reconcileNow(c.Request.Context(), name)
	if errors.Is(err, repos.ErrOriginLookUp) {
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

// outcomeFail shows a refused rollback, pin or deploy as a page.
func (p *pages) outcomeFail(c *gin.Context, err error) {
	var oe *outcomeError
	switch {
	case errors.As(err, &oe):
		p.fail(c, oe.status, oe.msg)
	case errors.Is(err, store.ErrPinned):
		p.fail(c, http.StatusConflict, "The repository is "+p.s.pinnedMessage(c.Request.Context(), c.Param("name"))+".")
	default:
		p.storeFail(c, err, "The repository")
	}
}

func (p *pages) rollback(c *gin.Context) {
	dp, err := p.s.rollback(c.Request.Context(), c.Param("name"), strings.TrimSpace(c.PostForm("commit")))
	if err != nil {
		p.outcomeFail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/deploys/%d", dp.ID))
}

func (p *pages) pin(c *gin.Context) {
	if _, err := p.s.pin(c.Request.Context(), c.Param("name"), strings.TrimSpace(c.PostForm("commit"))); err != nil {
		p.outcomeFail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/repos")
}

func (p *pages) unpin(c *gin.Context) {
	u, err := p.s.unpin(c.Request.Context(), c.Param("name"))
	if err != nil {
		p.outcomeFail(c, err)
		return
	}
	if id := u.deploy(); id != 0 {
		c.Redirect(http.StatusSeeOther, fmt.Sprintf("/deploys/%d", id))
		return
	}
	c.Redirect(http.StatusSeeOther, "/repos")
}
