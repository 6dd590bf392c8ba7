package server

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// nodeJSON is a gateway in GET /api/v1/nodes.
type nodeJSON struct {
	Name      string    `json:"name"`
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	LastSeen  time.Time `json:"last_seen"`
	Status    string    `json:"status"` // up, or down after three heartbeats' silence
	Repos     []string  `json:"repos"`
}

// apiNodes answers GET /api/v1/nodes: the gateways that work this database, by name.
func (s *Server) apiNodes(c *gin.Context) {
	nodes, err := s.store.Nodes(c.Request.Context())
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	out := make([]nodeJSON, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, nodeJSON{Name: n.Name, Version: n.Version, StartedAt: n.StartedAt,
			LastSeen: n.LastSeen, Status: n.Status, Repos: n.Repos})
	}
	c.JSON(http.StatusOK, gin.H{"nodes": out})
}
