// This file owns the API's routes and what its listings share: parameters, cursors and ids.
package server

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/store"
)

func (s *Server) registerAPI(g *gin.RouterGroup) {
	g.GET("/deliveries", s.apiDeliveries)
	g.GET("/deliveries/:id", s.apiDelivery)
	g.GET("/deliveries/:id/payload", s.apiPayload)
	g.GET("/deploys", s.apiDeploys)
	g.GET("/deploys/:id", s.apiDeploy)
	g.GET("/deploys/:id/log", s.apiDeployLog)
	g.GET("/repos", s.apiRepos)
	g.GET("/repos/:name", s.apiRepo)
	g.POST("/repos/:name/deploy", s.apiDeployNow)
	g.POST("/repos/:name/reconcile", s.apiReconcile)
	g.POST("/repos/:name/rollback", s.apiRollback)
	g.POST("/repos/:name/pin", s.apiPin)
	g.POST("/repos/:name/unpin", s.apiUnpin)
	g.POST("/repos/:name/verify", s.apiVerify)
	g.DELETE("/repos/:name/bad/:commit", s.apiClearBad)
	g.POST("/deliveries/:id/redeliver", s.apiRedeliver)
	g.GET("/notifications", s.apiNotifications)
	g.GET("/nodes", s.apiNodes)
	g.DELETE("/nodes/:name", s.apiRemoveNode)
	g.POST("/reload", s.apiReload)
}

// badParam answers 400 naming the parameter.
type badParam struct{ name, msg string }

func (e badParam) Error() string { return e.name + ": " + e.msg }

// listParams holds what the deliveries and deploys listings share.
type listParams struct {
	repo, status, commit string
	since, until         time.Time
	page                 store.Page
}

func parseList(c *gin.Context, statuses []string) (listParams, error) {
	var p listParams
	if _, err := url.ParseQuery(c.Request.URL.RawQuery); err != nil {
		return p, badParam{"query", "the query string does not parse: " + err.Error()}
	}
	var err error
	if p.repo, err = parseRepo(c); err != nil {
		return p, err
	}
	if p.status = c.Query("status"); p.status != "" && !slices.Contains(statuses, p.status) {
		return p, badParam{"status", "must be one of " + strings.Join(statuses, ", ")}
	}
	if p.commit = strings.ToLower(c.Query("commit")); p.commit != "" && !isHexPrefix(p.commit) {
		return p, badParam{"commit", "must be 1 to 64 hex digits"}
	}
	if p.since, err = parseTime(c, "since"); err != nil {
		return p, err
	}
	if p.until, err = parseTime(c, "until"); err != nil {
		return p, err
	}
	if p.page.Limit, err = parseLimit(c); err != nil {
		return p, err
	}
	if v := c.Query("cursor"); v != "" {
		id, err := decodeCursor(v)
		if err != nil {
			return p, badParam{"cursor", "is not a cursor this API gave out"}
		}
		p.page.Before = id
	}
	return p, nil
}

// parseRepo reads ?repo=, a repository name or "" for all.
func parseRepo(c *gin.Context) (string, error) {
	repo := c.Query("repo")
	if len(repo) > 200 {
		return "", badParam{"repo", "too long"}
	}
	return repo, nil
}

// parseLimit reads ?limit=, the page size: 50 unless given, at most store.MaxLimit.
func parseLimit(c *gin.Context) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > store.MaxLimit {
		return 0, badParam{"limit", fmt.Sprintf("must be a whole number from 1 to %d", store.MaxLimit)}
	}
	return n, nil
}

func parseTime(c *gin.Context, name string) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, badParam{name, "must be an RFC 3339 time such as 2026-11-23T10:00:00Z"}
	}
	return t, nil
}

func isHexPrefix(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Cursors are opaque to clients: the id to continue below, base64url-encoded.
func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + strconv.FormatInt(id, 10)))
}

func decodeCursor(s string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, err
	}
	v, ok := strings.CutPrefix(string(raw), "v1:")
	if !ok {
		return 0, fmt.Errorf("bad cursor")
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("bad cursor")
	}
	return id, nil
}

// nextCursor is null on the last page. One extra row is fetched to know whether more follow.
func nextCursor[T any](rows []T, limit int, id func(T) int64) ([]T, *string) {
	if len(rows) <= limit {
		return rows, nil
	}
	rows = rows[:limit]
	c := encodeCursor(id(rows[len(rows)-1]))
	return rows, &c
}

func (s *Server) writeParamError(c *gin.Context, err error) {
	writeError(c, http.StatusBadRequest, "invalid_parameter", err.Error())
}

// pathID reads the :id parameter; a non-number is a 400.
func pathID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(c, http.StatusBadRequest, "invalid_parameter", "id: must be a positive whole number")
		return 0, false
	}
	return id, true
}
