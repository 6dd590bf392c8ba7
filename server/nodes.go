package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hookgate/hookgate/store"
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

// apiRemoveNode answers DELETE /api/v1/nodes/:name: it takes a node that is down out of the
// fleet (store.RemoveNode). 200 with the deploys it ended; 404 "unknown_node"; 409
// "node_up" while the node has been seen within three heartbeat intervals.
func (s *Server) apiRemoveNode(c *gin.Context) {
	name := c.Param("name")
	ids, err := s.store.RemoveNode(c.Request.Context(), name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(c, http.StatusNotFound, "unknown_node", fmt.Sprintf("no node named %q is registered", limit(name, 64)))
		return
	case errors.Is(err, store.ErrNodeUp):
		writeError(c, http.StatusConflict, "node_up", fmt.Sprintf(
			"node %q was seen within the last %s: stop it first (a node is down after three silent heartbeats)",
			name, 3*store.HeartbeatEvery))
		return
	case err != nil:
		s.writeStoreError(c, err)
		return
	}
	s.log.Warn("node removed from the fleet", "node", name, "interrupted_deploys", ids)
	c.JSON(http.StatusOK, gin.H{"node": name, "interrupted_deploys": ids})
}
