// This file owns the repositories half of the API: their status as JSON, deploy now,
// replay, rollback, pin, unpin and reconcile.
package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/app"
	"github.com/hookgate/hookgate/store"
)

// repoJSON is a configured repository and what is live on it.
type repoJSON struct {
	Name              string      `json:"name"`
	Branch            string      `json:"branch"`
	Repository        string      `json:"repository"`
	Path              string      `json:"path"`
	Head              string      `json:"head"`
	HeadBranch        string      `json:"head_branch"`
	HeadError         string      `json:"head_error,omitempty"`
	LiveCommit        string      `json:"live_commit"`
	RunningDeployID   *int64      `json:"running_deploy_id"`
	QueuedDeployID    *int64      `json:"queued_deploy_id"`
	PendingDeliveries int         `json:"pending_deliveries"`
	LastDeploy        *deployJSON `json:"last_deploy"`
	// OriginCommit is origin's branch head at the last look-up (null before the first, or
	// when it failed: OriginError says why).
	OriginCommit    *string    `json:"origin_commit"`
	OriginCheckedAt *time.Time `json:"origin_checked_at"`
	OriginError     string     `json:"origin_error,omitempty"`
	Pinned          *pinJSON   `json:"pinned"`
	// Nodes are the nodes that deploy the repository or ran a deploy of it, by name;
	// [] when none.
	Nodes []repoNodeJSON `json:"nodes"`
	// DeployedHere is false on a node of a fleet that leaves the repository to others:
	// head and head_error are then empty, as the page's "not deployed here".
	DeployedHere bool `json:"deployed_here"`
	// BadCommits are the target's commits whose health check failed: not deployed again
	// by pushes, polls or replays until cleared.
	BadCommits []badCommitJSON `json:"bad_commits"`
	// Hook is the hook the target takes its deliveries from: its own name for a
	// repository with its own secret. Tags is its tag glob ("" for a branch target),
	// Paths its paths globs ([] when it deploys every push), LiveTag the tag of its live
	// deploy ("" for a branch target, or before a tag was deployed).
	Hook    string   `json:"hook"`
	Tags    string   `json:"tags"`
	Paths   []string `json:"paths"`
	LiveTag string   `json:"live_tag"`
	// BadCommitsCount is how many bad commits the target has; bad_commits lists the newest
	// app.MaxBadShown of them.
	BadCommitsCount int `json:"bad_commits_count"`
}

// repoNodeJSON is what one node has of a repository: its live commit ("" when nothing
// succeeded there) and its running and queued deploys (null when none).
type repoNodeJSON struct {
	Node            string `json:"node"`
	LiveCommit      string `json:"live_commit"`
	RunningDeployID *int64 `json:"running_deploy_id"`
	QueuedDeployID  *int64 `json:"queued_deploy_id"`
	// DownSince is the node's last heartbeat when it is down (its queued deploy waits
	// for it), else null.
	DownSince *time.Time `json:"down_since"`
}

func toRepoNodesJSON(nodes []store.RepoNode) []repoNodeJSON {
	out := make([]repoNodeJSON, len(nodes))
	for i, n := range nodes {
		out[i] = repoNodeJSON{Node: n.Node, LiveCommit: n.LiveCommit}
		if n.Down {
			out[i].DownSince = timeOrNil(n.LastSeen)
		}
		if n.RunningDeployID != 0 {
			out[i].RunningDeployID = &n.RunningDeployID
		}
		if n.QueuedDeployID != 0 {
			out[i].QueuedDeployID = &n.QueuedDeployID
		}
	}
	return out
}

// toRepoJSON is a repository's status as the API shows it.
func toRepoJSON(st app.Status) repoJSON {
	r := repoJSON{Name: st.Name, Branch: st.Branch, Repository: st.Repository, Path: st.Path,
		Head: st.Checkout.Head, HeadBranch: st.Checkout.OnBranch, LiveCommit: st.Live, DeployedHere: st.DeploysHere}
	if !st.DeploysHere {
		r.Head, r.HeadBranch = "", ""
	} else if st.Checkout.Err != nil {
		r.HeadError = st.Checkout.Err.Error()
	}
	if st.Running != 0 {
		r.RunningDeployID = &st.Running
	}
	if st.State.Queued != nil {
		r.QueuedDeployID = &st.State.Queued.ID
		r.PendingDeliveries = st.State.Pending
	}
	if st.State.Last != nil {
		dj := toDeployJSON(*st.State.Last, false)
		r.LastDeploy = &dj
	}
	if st.OriginKnown {
		if st.Origin.Commit != "" {
			r.OriginCommit = &st.Origin.Commit
		}
		r.OriginCheckedAt = timeOrNil(st.Origin.CheckedAt)
		r.OriginError = st.Origin.Error
	}
	r.Pinned = toPinJSON(st.Pin)
	if r.Pinned != nil {
		r.Pinned.Reason, r.Pinned.DeployID = st.PinReason, st.PinDeployID
	}
	r.Nodes = toRepoNodesJSON(st.Nodes)
	r.BadCommits = toBadCommitsJSON(st.Bad)
	r.Hook, r.Tags, r.Paths, r.LiveTag = hookOf(st.Repo), st.Tags, st.Paths, liveTag(st)
	if r.Paths == nil {
		r.Paths = []string{}
	}
	r.BadCommitsCount = st.BadCount
	return r
}

// hookOf is the name of the hook a target takes its deliveries from.
func hookOf(r app.Repo) string {
	if r.Hook == "" {
		return r.Name
	}
	return r.Hook
}

// liveTag is a tag target's live tag: the tag of its last succeeded deploy (the round's
// rule: that deploy's ref, when it names a tag). A branch target has none, even when a
// manual deploy once recorded a tag ref.
func liveTag(st app.Status) string {
	if st.Tags == "" || st.State.LastOK == nil {
		return ""
	}
	if tag, ok := strings.CutPrefix(st.State.LastOK.Ref, "refs/tags/"); ok {
		return tag
	}
	return ""
}

func (s *Server) apiRepos(c *gin.Context) {
	list, err := s.app.Statuses(c.Request.Context())
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	out := make([]repoJSON, 0, len(list))
	for _, st := range list {
		out = append(out, toRepoJSON(st))
	}
	c.JSON(http.StatusOK, gin.H{"repos": out})
}

// apiRepo answers GET /api/v1/repos/:name: one configured repository, as in the list.
func (s *Server) apiRepo(c *gin.Context) {
	st, err := s.app.Status(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.writeOutcomeError(c, err)
		return
	}
	c.JSON(http.StatusOK, toRepoJSON(st))
}

// deployBody is the optional body of a manual deploy.
func (s *Server) apiDeployNow(c *gin.Context) {
	force, err := readForceBody(c)
	if err != nil {
		s.writeOutcomeError(c, err)
		return
	}
	dp, err := s.app.DeployManual(c.Request.Context(), c.Param("name"), force)
	if err != nil {
		s.writeOutcomeError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, toDeployJSON(dp, false))
}

func (s *Server) apiRedeliver(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	d, err := s.app.Replay(c.Request.Context(), id, c.ClientIP())
	var nr *app.Error
	if errors.As(err, &nr) && nr.Kind == app.NotReplayable {
		writeError(c, http.StatusConflict, "not_replayable", nr.Msg)
		return
	}
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	// A replay of a pinned repository is recorded but ignored, like a push would be.
	c.JSON(d.HTTPStatus, toDeliveryJSON(d))
}

// commitBody is the optional body of rollback and pin. Force deploys a bad commit
// (rollback only).
type commitBody struct {
	Commit string `json:"commit"`
	Force  bool   `json:"force"`
}

// readCommitBody reads {"commit": "..."}; no body at all means no commit.
func readCommitBody(c *gin.Context) (string, error) {
	b, err := readCommitForce(c)
	return b.Commit, err
}

// readCommitForce reads {"commit": "...", "force": bool}; no body at all means neither.
func readCommitForce(c *gin.Context) (commitBody, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, 4<<10))
	if err != nil {
		return commitBody{}, &outcomeError{http.StatusBadRequest, "invalid_body", "the body could not be read (at most 4 KB)"}
	}
	if strings.TrimSpace(string(raw)) == "" {
		return commitBody{}, nil
	}
	var b commitBody
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return commitBody{}, &outcomeError{http.StatusBadRequest, "invalid_body", `the body must be {"commit": "<full hash or a prefix of at least 7>"} or empty`}
	}
	b.Commit = strings.TrimSpace(b.Commit)
	return b, nil
}

// pinJSON is a pin as the API shows it.
type pinJSON struct {
	Commit string    `json:"commit"`
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	// Reason and DeployID: for a pin by health, the automatic rollback that failed and why.
	Reason   string `json:"reason,omitempty"`
	DeployID int64  `json:"deploy_id,omitempty"`
}

func toPinJSON(p *store.Pin) *pinJSON {
	if p == nil {
		return nil
	}
	return &pinJSON{Commit: p.Commit, At: p.At, By: p.By}
}

func (s *Server) apiRollback(c *gin.Context) {
	b, err := readCommitForce(c)
	if err == nil {
		var dp store.Deploy
		if dp, err = s.app.RollbackForced(c.Request.Context(), c.Param("name"), b.Commit, b.Force); err == nil {
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
