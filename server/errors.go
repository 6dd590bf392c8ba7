// This file owns the one table from the errors the App and the store return to the HTTP
// status, code and message an answer gives, and the writers that use it (API and pages).
package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/app"
	"github.com/hookgate/hookgate/store"
)

// kindStatus is the status of each kind of the App's refusals.
var kindStatus = map[app.Kind]int{
	app.UnknownRepo:      http.StatusNotFound,
	app.UnknownCommit:    http.StatusUnprocessableEntity,
	app.NoPreviousDeploy: http.StatusConflict,
	app.NoLiveCommit:     http.StatusConflict,
	app.NotDeployedHere:  http.StatusConflict,
	app.Unavailable:      http.StatusServiceUnavailable,
	app.NotReplayable:    http.StatusConflict,
	app.BadCommit:        http.StatusConflict,
	app.UnknownBadCommit: http.StatusNotFound,
	app.NoHealthCheck:    http.StatusConflict,
	app.DeployRunning:    http.StatusConflict,
}

// outcomeError is a refusal of the server's own (a body that does not read), with its
// status and code.
type outcomeError struct {
	status    int
	code, msg string
}

func (e *outcomeError) Error() string { return e.msg }

// statusOf maps err to its status, code and message; ok is false for anything
// unexpected, which clients see as "internal error" and the log sees with its cause.
func statusOf(err error) (status int, code, msg string, ok bool) {
	var ae *app.Error
	var oe *outcomeError
	switch {
	case errors.As(err, &oe):
		return oe.status, oe.code, oe.msg, true
	case errors.As(err, &ae):
		return kindStatus[ae.Kind], ae.Code, ae.Msg, true
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "not_found", "not found", true
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, "conflict", "the resource changed; try again", true
	case errors.Is(err, store.ErrNoNode):
		return http.StatusConflict, "no_node", store.ErrNoNode.Error(), true
	}
	return http.StatusInternalServerError, "internal", "internal error", false
}

// writeStoreError answers err through statusOf, logging what it does not know.
func (s *Server) writeStoreError(c *gin.Context, err error) {
	status, code, msg, ok := statusOf(err)
	if !ok {
		s.log.Error("store error", "path", c.FullPath(), "err", err)
	}
	writeError(c, status, code, msg)
}

// writeOutcomeError answers a refusal of a rollback, pin, unpin, reconcile or deploy: a
// pinned repository says since when and by whom; the rest goes through writeStoreError.
func (s *Server) writeOutcomeError(c *gin.Context, err error) {
	if errors.Is(err, store.ErrPinned) {
		writeError(c, http.StatusConflict, "pinned", s.pinnedMessage(c.Request.Context(), c.Param("name")))
		return
	}
	s.writeStoreError(c, err)
}

func (s *Server) pinnedMessage(ctx context.Context, name string) string {
	if p, err := s.store.GetPin(ctx, name); err == nil && p != nil {
		return store.PinnedReason(p)
	}
	return "the repository is pinned; unpin it first"
}

// outcomeFail shows a refused rollback, pin or deploy as a page.
func (p *pages) outcomeFail(c *gin.Context, err error) {
	var ae *app.Error
	switch {
	case errors.As(err, &ae):
		status, _, msg, _ := statusOf(err)
		p.fail(c, status, msg)
	case errors.Is(err, store.ErrPinned):
		p.fail(c, http.StatusConflict, "The repository is "+p.s.pinnedMessage(c.Request.Context(), c.Param("name"))+".")
	default:
		p.storeFail(c, err, "The repository")
	}
}

// storeFail maps a store error to a page: unknown ids are a 404, the rest a logged 500.
func (p *pages) storeFail(c *gin.Context, err error, what string) {
	if errors.Is(err, store.ErrNotFound) {
		p.fail(c, http.StatusNotFound, what+" does not exist.")
		return
	}
	p.s.log.Error("page: store error", "path", c.FullPath(), "err", err)
	p.fail(c, http.StatusInternalServerError, "Internal error; the server log has the cause.")
}
