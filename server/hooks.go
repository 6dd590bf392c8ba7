package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/policy"
	"github.com/hookgate/hookgate/store"
)

// Bounds on what a delivery record keeps of the request.
const (
	maxStoredPayload = 256 << 10 // larger payloads are recorded without their body
	maxHeaderValue   = 1024
	maxHeaders       = 64
)

// recordTimeout bounds recording one delivery, which no longer waits on its client.
const recordTimeout = 30 * time.Second

// secretHeaders are never recorded: they carry credentials rather than describe a delivery.
var secretHeaders = map[string]bool{
	"Authorization":       true,
	"Proxy-Authorization": true,
	"Cookie":              true,
	"X-Gitlab-Token":      true,
}

// hookResponse is the JSON answer to a delivery, recorded or (an unauthenticated rejection
// past the unsigned budget) not.
type hookResponse struct {
	// DeliveryID is absent when an unauthenticated rejection was not recorded (see
	// UnsignedBudget).
	DeliveryID int64        `json:"delivery_id,omitempty"`
	DeployID   int64        `json:"deploy_id,omitempty"`
	Status     string       `json:"status"`
	Reason     string       `json:"reason,omitempty"`
	Error      *errorDetail `json:"error,omitempty"`
	// Targets are what a decided delivery did for each target of its hook (one, for a
	// hook that is its own target); absent for a rejection.
	Targets []targetJSON `json:"targets,omitempty"`
}

// targetJSON is one target's outcome of a delivery: queued, with this node's deploy of
// it (0, left out: none here; other nodes' are in the API), or ignored, with the reason.
type targetJSON struct {
	Repo     string `json:"repo"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
	DeployID int64  `json:"deploy_id,omitempty"`
}

// handleHook takes one delivery: bounded read, signature, parse, decide, record, answer.
// Nothing here touches git: an accepted push is queued in the store and its worker woken.
func (s *Server) handleHook(c *gin.Context) {
	name := c.Param("name")
	hook, ok := s.hook(name)
	if !ok {
		s.unknownHooks.Add(1)
		writeError(c, http.StatusNotFound, "unknown_hook", "no hook is configured under this name")
		return
	}
	r := c.Request
	f := forge.For(hook.Provider)
	d := &store.Delivery{
		GUID:        limit(forge.FirstHeader(r.Header, f.GUIDHeaders), 128),
		Repo:        hook.Name,
		Event:       limit(f.Event(forge.FirstHeader(r.Header, f.EventHeaders)), 64),
		ReceivedAt:  s.now(),
		RemoteAddr:  c.ClientIP(),
		UserAgent:   limit(r.UserAgent(), 256),
		ContentType: limit(r.Header.Get("Content-Type"), 128),
		Signature:   store.SignatureUnchecked,
	}

	if !hook.allows(d.RemoteAddr) {
		s.reject(c, d, http.StatusForbidden, "source_not_allowed",
			"this address is not in the hook's allow_cidrs")
		return
	}

	b, err := s.readBody(c.Writer, r)
	defer b.release()
	body := b.buf.Bytes()
	d.BodySize = int64(len(body))
	if err != nil {
		s.rejectBody(c, d, err)
		return
	}

	// Only the hook's own forge's scheme counts: a GitLab token on a GitHub hook (or the
	// reverse) is no credential at all.
	sig := f.Verify(r.Header, d.ContentType, body, hook.Secret)
	d.Signature, d.SignatureAlg = sig.Result, sig.Alg
	switch sig.Result {
	case store.SignatureMissing:
		s.metrics.sigFailures.WithLabelValues(d.Repo, sig.Result).Inc()
		s.reject(c, d, http.StatusUnauthorized, "signature_missing", f.Missing)
		return
	case store.SignatureInvalid:
		s.metrics.sigFailures.WithLabelValues(d.Repo, sig.Result).Inc()
		msg := "signature does not match the body; check the webhook's secret"
		if f.Name == forge.ProviderGitLab {
			msg = "X-Gitlab-Token does not match; check the webhook's secret token"
		}
		s.reject(c, d, http.StatusUnauthorized, "signature_invalid", msg)
		return
	}
	// Authenticated: the delivery's headers are recorded as sent (within maxHeaders of
	// maxHeaderValue); before this point only trimUnsigned's few are.
	d.Headers = recordedHeaders(r.Header)

	payload, err := forge.ExtractPayload(d.ContentType, body)
	if err != nil {
		status, code := http.StatusBadRequest, "malformed_body"
		if errors.Is(err, forge.ErrUnsupportedMediaType) {
			status, code = http.StatusUnsupportedMediaType, "unsupported_content_type"
		}
		s.reject(c, d, status, code, err.Error())
		return
	}
	if len(payload) <= maxStoredPayload {
		d.Payload = payload
	}
	if d.Event == "" {
		s.reject(c, d, http.StatusBadRequest, "event_missing", "no "+strings.Join(f.EventHeaders, " or ")+" header")
		return
	}

	// The server parses and records; policy decides, in the store, on what it is told here.
	in := &policy.Delivery{Event: d.Event,
		Hook: policy.Hook{Repo: hook.Name, Branch: hook.Branch, Repository: hook.Repository, Tags: hook.Tags}}
	for _, t := range hook.Targets {
		in.Targets = append(in.Targets, policy.Target{Repo: t.Name, Branch: t.Branch, Tags: t.Tags})
	}
	switch d.Event {
	case "ping":
		if !forge.JSONObject(payload) {
			s.reject(c, d, http.StatusBadRequest, "malformed_payload", "ping payload is not a JSON object")
			return
		}
	case "push":
		p, err := f.ParsePush(payload)
		if err != nil {
			s.reject(c, d, http.StatusBadRequest, "malformed_payload", err.Error())
			return
		}
		recordPush(d, p)
		// The payload's ref and repository as sent: the reasons name them unbounded.
		in.Ref, in.After, in.Deleted, in.FullName = p.Ref, p.After, p.Deleted, p.Repository.FullName
		in.Message = d.Message
		in.ProjectID = p.ProjectID
	case "tag_push":
		// GitLab sends tags as their own event; recorded like a push, never deployed.
		if !forge.JSONObject(payload) {
			s.reject(c, d, http.StatusBadRequest, "malformed_payload", "payload is not a JSON object")
			return
		}
		if p, err := f.ParsePush(payload); err == nil {
			recordPush(d, p)
			in.Parsed, in.Recorded = true, d.Ref
			// A tag target deploys it like a push of the tag.
			in.Ref, in.After, in.Deleted, in.FullName = p.Ref, p.After, p.Deleted, p.Repository.FullName
			in.Message = d.Message
		}
	default:
		if !forge.JSONObject(payload) {
			s.reject(c, d, http.StatusBadRequest, "malformed_payload", "payload is not a JSON object")
			return
		}
		if d.Event == "create" || d.Event == "delete" {
			in.Ref, in.RefType = recordRefEvent(d, payload)
		}
	}
	d.Input = in
	if !s.record(c, d) {
		return
	}
	resp := hookResponse{DeliveryID: d.ID, DeployID: d.DeployID, Status: d.Status, Reason: d.Reason}
	for _, t := range d.Targets {
		resp.Targets = append(resp.Targets, targetJSON{Repo: t.Repo, Status: t.Status, Reason: t.Reason, DeployID: t.DeployID})
		s.metrics.target(hook.Name, t.Repo, t.Status)
	}
	c.JSON(d.HTTPStatus, resp)
}

// recordPush copies what the history shows of a push into its delivery record.
func recordPush(d *store.Delivery, p forge.Push) {
	d.Ref, d.Before, d.After = limit(p.Ref, 256), p.Before, p.After
	// An annotated tag's push names the tag object as "after"; the commit it points to is
	// what the history should show, when the payload names it.
	if strings.HasPrefix(p.Ref, "refs/tags/") && p.HeadCommit != nil && forge.IsHash(p.HeadCommit.ID) {
		d.After = p.HeadCommit.ID
	}
	d.Commit = d.After[:7]
	d.FullName, d.RepoURL = limit(p.Repository.FullName, 256), limit(p.Repository.HTMLURL, 512)
	d.Pusher = limit(p.Pusher.Name, 256)
	if p.HeadCommit != nil {
		d.Message = limit(p.HeadCommit.Message, 4096)
	}
}

// recordRefEvent records the ref a create or delete event names, as a full ref name
// ("refs/tags/v1.2"), and its commit when the payload has one. It returns the ref as sent
// and its type, "" when the payload names none.
func recordRefEvent(d *store.Delivery, payload []byte) (ref, refType string) {
	ref, refType, sha := forge.ParseRefEvent(payload)
	if ref == "" {
		return "", ""
	}
	full := ref
	if !strings.HasPrefix(full, "refs/") {
		switch refType {
		case "branch":
			full = "refs/heads/" + ref
		case "tag":
			full = "refs/tags/" + ref
		}
	}
	d.Ref = limit(full, 256)
	if forge.IsHash(sha) {
		d.After, d.Commit = sha, sha[:7]
	}
	return limit(ref, 256), limit(refType, 32)
}

// rejectBody records and answers a delivery whose body could not be read whole. The
// client may be gone (it closed the connection, or the read timed out): the answer is
// then lost, but the delivery is recorded all the same.
func (s *Server) rejectBody(c *gin.Context, d *store.Delivery, err error) {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		d.BodySize = max(c.Request.ContentLength, tooLarge.Limit+1)
		s.reject(c, d, http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("body is larger than max_body (%d bytes)", tooLarge.Limit))
	case errors.Is(err, errOverloaded):
		c.Header("Retry-After", "5")
		s.reject(c, d, http.StatusServiceUnavailable, "overloaded",
			"the request bodies being read already fill max_body_memory; retry shortly")
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.reject(c, d, http.StatusRequestTimeout, "body_timeout",
			fmt.Sprintf("the body did not arrive within the read timeout (%s); %d bytes were received", s.readTO, d.BodySize))
	case errors.Is(err, io.ErrUnexpectedEOF):
		s.reject(c, d, http.StatusBadRequest, "body_incomplete",
			fmt.Sprintf("the connection closed before the body was complete; %d bytes were received", d.BodySize))
	default:
		s.log.Debug("request body unreadable", "repo", d.Repo, "err", err)
		s.reject(c, d, http.StatusBadRequest, "unreadable_body",
			fmt.Sprintf("the request body could not be read; %d bytes were received", d.BodySize))
	}
}

// reject records a refused delivery and answers with its error. A rejection before
// authentication records only trimUnsigned's few bytes, and only within the client's rate
// (else 429) and the unsigned budget (else it is answered the same and counted).
func (s *Server) reject(c *gin.Context, d *store.Delivery, status int, code, msg string) {
	d.Status, d.HTTPStatus, d.Reason = store.DeliveryRejected, status, msg
	if d.Signature != store.SignatureValid {
		// An unauthenticated request is the sender's word only; keep little of it.
		trimUnsigned(d, c.Request.Header)
		now := s.now()
		if !s.rejects.allow(d.RemoteAddr, now) {
			s.metrics.delivery(d.Repo, d.Event, outcomeRateLimited)
			s.log.Debug("rejection not recorded: rate limited", "repo", d.Repo, "guid", d.GUID,
				"event", d.Event, "http_status", status, "reason", msg, "remote", d.RemoteAddr)
			c.Header("Retry-After", "2")
			writeError(c, http.StatusTooManyRequests, "rate_limited",
				"too many rejected deliveries from this address; they are no longer recorded for now")
			return
		}
		if !s.budget.take(now) {
			s.metrics.delivery(d.Repo, d.Event, outcomeUnrecorded)
			s.log.Debug("rejection not recorded: past the unsigned budget", "repo", d.Repo, "guid", d.GUID,
				"event", d.Event, "http_status", status, "reason", msg, "remote", d.RemoteAddr)
			c.AbortWithStatusJSON(status, hookResponse{Status: d.Status, Error: &errorDetail{Code: code, Message: msg}})
			return
		}
	}
	if !s.record(c, d) {
		return
	}
	c.AbortWithStatusJSON(status, hookResponse{DeliveryID: d.ID, Status: d.Status,
		Error: &errorDetail{Code: code, Message: msg}})
}

// record commits the delivery before any answer; when that fails the sender gets a 500,
// so GitHub shows the failure and the delivery can be redelivered. It has a context of its
// own: a client that closed the connection or ran out of read time is gone, and its
// request's context with it, but what it sent reached a hook and is recorded.
func (s *Server) record(c *gin.Context, d *store.Delivery) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), recordTimeout)
	defer cancel()
	if err := s.app.Record(ctx, d); err != nil {
		s.log.Error("delivery not recorded", "repo", d.Repo, "guid", d.GUID, "event", d.Event, "err", err)
		writeError(c, http.StatusInternalServerError, "internal", "internal error: the delivery was not recorded")
		return false
	}
	s.metrics.delivery(d.Repo, d.Event, d.Status)
	// A signature that does not match is most often a secret changed on one side only:
	// a warning, where the operator looks. A missing one is a scanner, not news.
	level := slog.LevelInfo
	if d.Signature == store.SignatureInvalid {
		level = slog.LevelWarn
	}
	s.log.Log(ctx, level, "delivery",
		"id", d.ID, "guid", d.GUID, "repo", d.Repo, "provider", forge.For(hookProvider(s, d.Repo)).Name,
		"event", d.Event, "ref", d.Ref,
		"commit", d.Commit, "signature", d.Signature, "signature_alg", d.SignatureAlg, "status", d.Status,
		"http_status", d.HTTPStatus, "reason", d.Reason, "deploy_id", d.DeployID,
		"redelivery", d.Redelivery, "remote", d.RemoteAddr)
	return true
}

func recordedHeaders(h http.Header) map[string]string {
	out := make(map[string]string, min(len(h), maxHeaders))
	for k, v := range h {
		if len(out) == maxHeaders {
			break
		}
		if secretHeaders[k] {
			continue
		}
		out[k] = limit(strings.Join(v, ", "), maxHeaderValue)
	}
	return out
}

// limit cuts s to at most n bytes without splitting a UTF-8 sequence.
func limit(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// hookProvider is the provider of the hook named repo, "" (GitHub) when it is gone.
func hookProvider(s *Server, repo string) string {
	h, _ := s.hook(repo)
	return h.Provider
}

// allows reports whether a delivery from ip may reach the hook; with no allow_cidrs, any may.
func (h Hook) allows(ip string) bool {
	if len(h.AllowCIDRs) == 0 {
		return true
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range h.AllowCIDRs {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
