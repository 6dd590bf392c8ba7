// This file owns the history half of the API: deliveries and deploys as JSON, listed and
// one by one.
package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/store"
)

// deliveryJSON is a delivery as the API shows it: snake_case, RFC 3339 times.
type deliveryJSON struct {
	ID            int64             `json:"id"`
	GUID          string            `json:"guid"`
	Repo          string            `json:"repo"`
	Hook          string            `json:"hook"`
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
	// Targets are a [hooks.NAME] delivery's outcome for each target; absent for a hook
	// that is its own one target, whose status and reason are its target's.
	Targets []targetJSON `json:"targets,omitempty"`
}

// deployRefJSON is a deploy a delivery joined, with the node that runs it and the target
// it deploys.
type deployRefJSON struct {
	Node     string `json:"node"`
	DeployID int64  `json:"deploy_id"`
	Status   string `json:"status"`
	Repo     string `json:"repo"`
}

func toDeliveryJSON(d store.Delivery) deliveryJSON {
	out := deliveryJSON{
		ID: d.ID, GUID: d.GUID, Repo: d.Repo, Hook: d.Hook, Event: d.Event, Ref: d.Ref, Before: d.Before,
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
		out.Deploys[i] = deployRefJSON{Node: r.Node, DeployID: r.ID, Status: r.Status, Repo: r.Repo}
	}
	for _, t := range d.Targets {
		out.Targets = append(out.Targets, targetJSON{Repo: t.Repo, Status: t.Status, Reason: t.Reason})
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
	// Reports are the deploy's forge reports, only on the single-deploy route.
	Reports *[]reportJSON `json:"reports,omitempty"`
	// RollbackOf names the deploy whose failed health check queued this automatic rollback.
	RollbackOf *int64 `json:"rollback_of,omitempty"`
	// Health is the deploy's health check, on the single-deploy route; absent without one.
	Health *healthJSON `json:"health,omitempty"`
	// WaitingFor is what a waiting deploy waits for (require_checks), only on the
	// single-deploy route.
	WaitingFor string `json:"waiting_for,omitempty"`
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
	if dp.RollbackOf != 0 {
		out.RollbackOf = &dp.RollbackOf
	}
	return out
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) apiDeliveries(c *gin.Context) {
	statuses := append(slices.Clone(store.DeliveryStatuses), store.DeployStatuses...)
	p, err := parseList(c, statuses)
	if err == nil {
		if sig := c.Query("signature"); sig != "" && !slices.Contains(store.SignatureResults, sig) {
			err = badParam{"signature", "must be one of " + strings.Join(store.SignatureResults, ", ")}
		} else if len(c.Query("event")) > 64 {
			err = badParam{"event", "too long"}
		} else if len(c.Query("hook")) > 200 {
			err = badParam{"hook", "too long"}
		}
	}
	if err != nil {
		s.writeParamError(c, err)
		return
	}
	limit := p.page.Limit
	p.page.Limit++
	rows, err := s.store.ListDeliveries(c.Request.Context(), store.DeliveryFilter{
		Repo: p.repo, Hook: c.Query("hook"), Status: p.status, Event: c.Query("event"), Signature: c.Query("signature"),
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
	reports, err := s.store.DeployReports(c.Request.Context(), id)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	probes, err := s.store.Probes(c.Request.Context(), id)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	out := toDeployJSON(dp, true)
	list := make([]reportJSON, len(reports))
	for i, r := range reports {
		list[i] = reportJSON{Status: r.Status, Result: r.Result, Forge: r.Forge, Endpoint: r.Endpoint, State: r.State,
			HTTPStatus: r.HTTPStatus, Error: r.Error, Attempts: r.Attempts, Node: r.Node, CreatedAt: r.CreatedAt,
			FinishedAt: timeOrNil(r.FinishedAt), Commit: r.Commit, SupersededBy: r.SupersededBy}
		if r.Result == store.ReportPending {
			list[i].NextAt = timeOrNil(r.NextAt)
		}
	}
	out.Reports = &list
	out.Health = toHealthJSON(dp, probes)
	if dp.Status == store.DeployWaiting {
		if out.WaitingFor, err = s.store.WaitingFor(c.Request.Context(), id); err != nil {
			s.writeStoreError(c, err)
			return
		}
	}
	c.JSON(http.StatusOK, out)
}

// reportJSON is one forge report of a deploy (GET /api/v1/deploys/:id): the deploy status
// it tells, how sending it went, and its last attempt. Never a token.
type reportJSON struct {
	Status     string     `json:"status"`
	Result     string     `json:"result"` // pending, sent, skipped or failed
	Forge      string     `json:"forge"`
	Endpoint   string     `json:"endpoint"`
	State      string     `json:"state"`
	HTTPStatus int        `json:"http_status"`
	Error      string     `json:"error"`
	Attempts   int        `json:"attempts"`
	Node       string     `json:"node"`
	CreatedAt  time.Time  `json:"created_at"`
	NextAt     *time.Time `json:"next_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at"`
	// Commit is the commit the report went to ("" until it is sent, or when there was none).
	Commit string `json:"commit"`
	// SupersededBy is set on a report that the forge's status of Commit was left behind
	// when the deploy moved to this commit (status "superseded").
	SupersededBy string `json:"superseded_by,omitempty"`
}
