package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/app"
	"github.com/hookgate/hookgate/store"
)

// deliveryJSON is a delivery as the API shows it: snake_case, RFC 3339 times.
type deliveryJSON struct {
	ID            int64             `json:"id"`
	GUID          string            `json:"guid"`
	Repo          string            `json:"repo"`
	Event         string            `json:"event"`
	Ref           string            `json:"ref"`
	Before        string            `json:"before"`
	After         string            `json:"after"`
	Commit        string            `json:"commit"`
	Signature     string            `json:"signature"`
	SignatureAlg  string            `json:"signature_alg"`
	Status        string            `json:"status"`
	Reason        string            `json:"reason"`
	HTTPStatus    int               `json:"http_status"`
	Redelivery    bool              `json:"redelivery"`
	ReceivedAt    time.Time         `json:"received_at"`
	RemoteAddr    string            `json:"remote_addr"`
	UserAgent     string            `json:"user_agent"`
	ContentType   string            `json:"content_type"`
	BodySize      int64             `json:"body_size"`
	Repository    string            `json:"repository"`
	RepositoryURL string            `json:"repository_url"`
	Pusher        string            `json:"pusher"`
	Message       string            `json:"message"`
	DeployID      *int64            `json:"deploy_id"`
	DeployStatus  *string           `json:"deploy_status"`
	Deploys       []deployRefJSON   `json:"deploys"`
	ReplayOf      *int64            `json:"replay_of"`
	Headers       map[string]string `json:"headers,omitempty"`
}

// deployRefJSON is a deploy a delivery joined, with the node that runs it.
type deployRefJSON struct {
	Node     string `json:"node"`
	DeployID int64  `json:"deploy_id"`
	Status   string `json:"status"`
}

func toDeliveryJSON(d store.Delivery) deliveryJSON {
	out := deliveryJSON{
		ID: d.ID, GUID: d.GUID, Repo: d.Repo, Event: d.Event, Ref: d.Ref, Before: d.Before,
		After: d.After, Commit: d.Commit, Signature: d.Signature, SignatureAlg: d.SignatureAlg,
		Status: d.Status, Reason: d.Reason, HTTPStatus: d.HTTPStatus, Redelivery: d.Redelivery,
		ReceivedAt: d.ReceivedAt, RemoteAddr: d.RemoteAddr, UserAgent: d.UserAgent,
		ContentType: d.ContentType, BodySize: d.BodySize, Repository: d.FullName,
		RepositoryURL: d.RepoURL, Pusher: d.Pusher, Message: d.Message, Headers: d.Headers,
	}
	if d.DeployID != 0 {
		out.DeployID = &d.DeployID
		out.DeployStatus = &d.DeployStatus
	}
	out.Deploys = make([]deployRefJSON, len(d.Deploys))
	for i, r := range d.Deploys {
		out.Deploys[i] = deployRefJSON{Node: r.Node, DeployID: r.ID, Status: r.Status}
	}
	if d.ReplayOf != 0 {
		out.ReplayOf = &d.ReplayOf
	}
	return out
}

// deployJSON is a deploy as the API shows it; Log only on the single-deploy route.
type deployJSON struct {
	ID          int64      `json:"id"`
	Repo        string     `json:"repo"`
	Status      string     `json:"status"`
	Trigger     string     `json:"trigger"`
	Node        string     `json:"node"`
	Ref         string     `json:"ref"`
	FromCommit  string     `json:"from_commit"`
	ToCommit    string     `json:"to_commit"`
	QueuedAt    time.Time  `json:"queued_at"`
	StartedAt   *time.Time `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at"`
	DurationMS  *int64     `json:"duration_ms"`
	Error       string     `json:"error"`
	Reason      string     `json:"reason"`
	DeliveryIDs []int64    `json:"delivery_ids"`
	Log         *string    `json:"log,omitempty"`
}

func toDeployJSON(dp store.Deploy, withLog bool) deployJSON {
	out := deployJSON{
		ID: dp.ID, Repo: dp.Repo, Status: dp.Status, Trigger: dp.Trigger, Node: dp.Node, Ref: dp.Ref,
		FromCommit: dp.FromCommit, ToCommit: dp.ToCommit, QueuedAt: dp.QueuedAt,
		StartedAt: timeOrNil(dp.StartedAt), FinishedAt: timeOrNil(dp.FinishedAt),
		Error: dp.Error, Reason: dp.Reason, DeliveryIDs: dp.DeliveryIDs,
	}
	if out.DeliveryIDs == nil {
		out.DeliveryIDs = []int64{}
	}
	if !dp.StartedAt.IsZero() && !dp.FinishedAt.IsZero() {
		ms := dp.FinishedAt.Sub(dp.StartedAt).Milliseconds()
		out.DurationMS = &ms
	}
	if withLog {
		out.Log = &dp.Log
	}
	return out
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

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
}

// repoNodeJSON is what one node has of a repository: its live commit ("" when nothing
// succeeded there) and its running and queued deploys (null when none).
type repoNodeJSON struct {
	Node            string `json:"node"`
	LiveCommit      string `json:"live_commit"`
	RunningDeployID *int64 `json:"running_deploy_id"`
	QueuedDeployID  *int64 `json:"queued_deploy_id"`
}

func toRepoNodesJSON(nodes []store.RepoNode) []repoNodeJSON {
	out := make([]repoNodeJSON, len(nodes))
	for i, n := range nodes {
		out[i] = repoNodeJSON{Node: n.Node, LiveCommit: n.LiveCommit}
		if n.RunningDeployID != 0 {
			out[i].RunningDeployID = &n.RunningDeployID
		}
		if n.QueuedDeployID != 0 {
			out[i].QueuedDeployID = &n.QueuedDeployID
		}
	}
	return out
}

func (s *Server) registerAPI(g *gin.RouterGroup) {
	g.GET("/deliveries", s.apiDeliveries)
	g.GET("/deliveries/:id", s.apiDelivery)
	g.GET("/deliveries/:id/payload", s.apiPayload)
	g.GET("/deploys", s.apiDeploys)
	g.GET("/deploys/:id", s.apiDeploy)
	g.GET("/repos", s.apiRepos)
	g.GET("/repos/:name", s.apiRepo)
	g.POST("/repos/:name/deploy", s.apiDeployNow)
	g.POST("/repos/:name/reconcile", s.apiReconcile)
	g.POST("/repos/:name/rollback", s.apiRollback)
	g.POST("/repos/:name/pin", s.apiPin)
	g.POST("/repos/:name/unpin", s.apiUnpin)
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

func (s *Server) apiDeliveries(c *gin.Context) {
	statuses := append(slices.Clone(store.DeliveryStatuses), store.DeployStatuses...)
	p, err := parseList(c, statuses)
	if err == nil {
		if sig := c.Query("signature"); sig != "" && !slices.Contains(store.SignatureResults, sig) {
			err = badParam{"signature", "must be one of " + strings.Join(store.SignatureResults, ", ")}
		} else if len(c.Query("event")) > 64 {
			err = badParam{"event", "too long"}
		}
	}
	if err != nil {
		s.writeParamError(c, err)
		return
	}
	limit := p.page.Limit
	p.page.Limit++
	rows, err := s.store.ListDeliveries(c.Request.Context(), store.DeliveryFilter{
		Repo: p.repo, Status: p.status, Event: c.Query("event"), Signature: c.Query("signature"),
		CommitPrefix: p.commit, Since: p.since, Until: p.until, Page: p.page,
	})
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	rows, next := nextCursor(rows, limit, func(d store.Delivery) int64 { return d.ID })
	out := make([]deliveryJSON, len(rows))
	for i, d := range rows {
		out[i] = toDeliveryJSON(d)
	}
	c.JSON(http.StatusOK, gin.H{"deliveries": out, "next_cursor": next})
}

func (s *Server) apiDeploys(c *gin.Context) {
	p, err := parseList(c, store.DeployStatuses)
	trigger := c.Query("trigger")
	if err == nil && trigger != "" && !slices.Contains(store.Triggers, trigger) {
		err = badParam{"trigger", "must be one of " + strings.Join(store.Triggers, ", ")}
	}
	node := c.Query("node")
	if err == nil && node != "" && !store.ValidNodeName(node) {
		err = badParam{"node", "must be a node name: letters, digits, '.', '_', '-'; at most 63"}
	}
	if err != nil {
		s.writeParamError(c, err)
		return
	}
	limit := p.page.Limit
	p.page.Limit++
	rows, err := s.store.ListDeploys(c.Request.Context(), store.DeployFilter{
		Repo: p.repo, Status: p.status, Trigger: trigger, Node: node, CommitPrefix: p.commit,
		Since: p.since, Until: p.until, Page: p.page,
	})
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	rows, next := nextCursor(rows, limit, func(d store.Deploy) int64 { return d.ID })
	out := make([]deployJSON, len(rows))
	for i, dp := range rows {
		out[i] = toDeployJSON(dp, false)
	}
	c.JSON(http.StatusOK, gin.H{"deploys": out, "next_cursor": next})
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

func (s *Server) apiDelivery(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	d, err := s.store.Delivery(c.Request.Context(), id)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	c.JSON(http.StatusOK, toDeliveryJSON(d))
}

// apiPayload answers GET /api/v1/deliveries/:id/payload: the stored payload's exact bytes
// (see writePayload); 404 when the delivery has none.
func (s *Server) apiPayload(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	d, err := s.store.Delivery(c.Request.Context(), id)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	if len(d.Payload) == 0 {
		writeError(c, http.StatusNotFound, "no_payload", fmt.Sprintf("delivery %d has no stored payload (kept only for authenticated deliveries, up to 256 KiB)", id))
		return
	}
	writePayload(c, d)
}

func (s *Server) apiDeploy(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	dp, err := s.store.Deploy(c.Request.Context(), id)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	c.JSON(http.StatusOK, toDeployJSON(dp, true))
}

// toRepoJSON is a repository's status as the API shows it.
func toRepoJSON(st app.Status) repoJSON {
	r := repoJSON{Name: st.Name, Branch: st.Branch, Repository: st.Repository, Path: st.Path,
		Head: st.Checkout.Head, HeadBranch: st.Checkout.OnBranch, LiveCommit: st.Live}
	if st.Checkout.Err != nil {
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
	r.Nodes = toRepoNodesJSON(st.Nodes)
	return r
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

func (s *Server) apiDeployNow(c *gin.Context) {
	dp, err := s.app.DeployNow(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.writeOutcomeError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, toDeployJSON(dp, false))
}

// notReplayable says why a recorded delivery cannot be re-run.
type notReplayable struct{ reason string }

func (e notReplayable) Error() string { return e.reason }

// replay re-runs recorded delivery id from its stored fields as a new delivery that
// deploys: recorded with replay_of, its deploy triggered "replay". The hook's current
// configuration decides again, so a replay cannot deploy what a delivery could not.
func (s *Server) replay(ctx context.Context, id int64, remote string) (store.Delivery, error) {
	orig, err := s.store.Delivery(ctx, id)
	if err != nil {
		return store.Delivery{}, err
	}
	hook, ok := s.hook(orig.Repo)
	switch {
	case !ok:
		return store.Delivery{}, notReplayable{fmt.Sprintf("repository %q is no longer configured", orig.Repo)}
	case orig.Signature != store.SignatureValid || orig.Payload == nil:
		return store.Delivery{}, notReplayable{"only a delivery with a valid signature and a stored payload can be replayed"}
	case orig.Event != "push":
		return store.Delivery{}, notReplayable{fmt.Sprintf("a %q delivery does not deploy; only push does", orig.Event)}
	}
	var p Push
	p.Ref, p.Before, p.After = orig.Ref, orig.Before, orig.After
	p.Repository.FullName = orig.FullName
	if dec := DecidePush(hook, p); dec.Status != store.DeliveryAccepted {
		return store.Delivery{}, notReplayable{dec.Reason}
	}
	d := orig
	d.ID, d.DeployID, d.DeployStatus = 0, 0, ""
	d.GUID, d.Redelivery, d.ReplayOf = "", false, orig.ID
	d.Status, d.HTTPStatus, d.Reason = store.DeliveryAccepted, http.StatusAccepted, fmt.Sprintf("replay of delivery %d", orig.ID)
	d.ReceivedAt, d.RemoteAddr, d.UserAgent = s.now(), remote, "hookgate replay"
	d.DeployStartedAt, d.DeployFinishedAt = time.Time{}, time.Time{}
	if err := s.store.RecordDelivery(ctx, &d); err != nil {
		return store.Delivery{}, err
	}
	s.deployer.Notify(d.Repo)
	s.log.Info("delivery replayed", "id", d.ID, "replay_of", orig.ID, "repo", d.Repo, "deploy_id", d.DeployID)
	return d, nil
}

func (s *Server) apiRedeliver(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	d, err := s.replay(c.Request.Context(), id, c.ClientIP())
	var nr notReplayable
	if errors.As(err, &nr) {
		writeError(c, http.StatusConflict, "not_replayable", nr.reason)
		return
	}
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	// A replay of a pinned repository is recorded but ignored, like a push would be.
	c.JSON(d.HTTPStatus, toDeliveryJSON(d))
}
