// This file owns configuration reloads as the API sees them: what a reload reports and
// POST /api/v1/reload.
package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
)

// ReloadReport says what a configuration reload changed.
type ReloadReport struct {
	Added   []string `json:"added"`   // repositories now configured that were not
	Removed []string `json:"removed"` // repositories no longer configured; a running deploy finishes
	Changed []string `json:"changed"` // repositories whose settings changed
	// RestartRequired names the settings that changed in the file but keep their old value
	// until hookgate restarts (server.listen, server.database, ...).
	RestartRequired []string `json:"restart_required"`
}

// ErrInvalidConfig wraps the reason a reload refused the configuration file.
var ErrInvalidConfig = errors.New("invalid configuration")

// Reloader re-reads the configuration and applies it; it returns an error wrapping
// ErrInvalidConfig when the file does not validate (the old configuration stays).
type Reloader func(ctx context.Context) (ReloadReport, error)

// apiReload answers POST /api/v1/reload: 200 with what changed, 422 when the file is
// refused (the error names the key and line), 501 when the gateway was started without a
// file to reload.
func (s *Server) apiReload(c *gin.Context) {
	if s.reload == nil {
		writeError(c, http.StatusNotImplemented, "not_supported", "this gateway has no configuration file to reload")
		return
	}
	rep, err := s.reload(c.Request.Context())
	switch {
	case errors.Is(err, ErrInvalidConfig):
		writeError(c, http.StatusUnprocessableEntity, "invalid_config", err.Error())
		return
	case err != nil:
		s.log.Error("reload failed", "err", err)
		writeError(c, http.StatusInternalServerError, "internal", "internal error: the configuration was not reloaded")
		return
	}
	c.JSON(http.StatusOK, gin.H{"reloaded": true, "changes": rep})
}
