package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/store"
)

// notificationJSON is one notification as the API shows it: which target (by its name,
// never its URL), about which deploy, and how sending it ended.
type notificationJSON struct {
	ID         int64     `json:"id"`
	DeployID   int64     `json:"deploy_id"`
	Repo       string    `json:"repo"`
	Target     string    `json:"target"`
	Kind       string    `json:"kind"`
	Event      string    `json:"event"`
	Status     string    `json:"status"`
	Attempts   int       `json:"attempts"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// apiNotifications answers GET /api/v1/notifications?repo=&limit=: the newest
// notifications first, so "did anyone hear about that failure?" has an answer; with
// deploy_id, those about one deploy, oldest first.
func (s *Server) apiNotifications(c *gin.Context) {
	if v := c.Query("deploy_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id < 1 {
			s.writeParamError(c, badParam{"deploy_id", "must be a deploy id"})
			return
		}
		rows, err := s.store.DeployNotifications(c.Request.Context(), id)
		s.writeNotifications(c, rows, err)
		return
	}
	repo, err := parseRepo(c)
	if err != nil {
		s.writeParamError(c, err)
		return
	}
	limit, err := parseLimit(c)
	if err != nil {
		s.writeParamError(c, err)
		return
	}
	rows, err := s.store.Notifications(c.Request.Context(), repo, limit)
	s.writeNotifications(c, rows, err)
}

func (s *Server) writeNotifications(c *gin.Context, rows []store.Notification, err error) {
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	out := make([]notificationJSON, 0, len(rows))
	for _, n := range rows {
		out = append(out, notificationJSON{ID: n.ID, DeployID: n.DeployID, Repo: n.Repo, Target: n.Target,
			Kind: n.Kind, Event: n.Event, Status: n.Status, Attempts: n.Attempts, HTTPStatus: n.HTTPStatus,
			Error: n.Error, CreatedAt: n.CreatedAt, FinishedAt: n.FinishedAt})
	}
	c.JSON(http.StatusOK, gin.H{"notifications": out})
}
