// Package notify tells people when a deploy fails and when a repository recovers: a
// generic JSON webhook signed with HMAC-SHA256, or a Slack-compatible incoming webhook.
// Sending happens on its own goroutine with retries and a timeout, so it never holds up a
// deploy, and every outcome is recorded in the store.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hookgate/hookgate/store"
)

// Target kinds.
const (
	KindWebhook = "webhook"
	KindSlack   = "slack"
)

// Events a target can ask for.
const (
	EventFailure  = "failure"  // a deploy failed
	EventRecovery = "recovery" // a deploy succeeded after one that failed
)

// Target is one place notifications go.
type Target struct {
	Name   string // shown in the history and logs instead of the URL
	Kind   string
	URL    string // a secret in its own right for Slack: never logged or stored
	Secret []byte // webhook only: signs the body (X-Hookgate-Signature-256)
	Events []string
}

// wants reports whether t asked for event (all events when it named none).
func (t Target) wants(event string) bool {
	return len(t.Events) == 0 || slices.Contains(t.Events, event)
}

// Options tune sending; zero values take the defaults.
type Options struct {
	Attempts int           // default 3
	Backoff  time.Duration // before the second attempt, doubling after (default 1s)
	Timeout  time.Duration // per attempt (default 10s)
	Queue    int           // notifications waiting to be sent before new ones are dropped (default 256)
	Logger   *slog.Logger
}

// Notifier sends notifications for finished deploys.
type Notifier struct {
	store *store.Store
	opts  Options

	mu      sync.Mutex // guards the targets, which a configuration reload replaces
	global  []Target
	perRepo map[string][]Target

	client *http.Client
	log    *slog.Logger

	jobs chan store.Deploy
	quit chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// New prepares a notifier; Start runs it.
func New(st *store.Store, global []Target, perRepo map[string][]Target, opts Options) *Notifier {
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Queue <= 0 {
		opts.Queue = 256
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Notifier{
		store: st, global: global, perRepo: perRepo, opts: opts, log: opts.Logger,
		// No redirects: a notification target that redirects is misconfigured, and
		// following it would send the body somewhere not configured.
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		jobs:   make(chan store.Deploy, opts.Queue),
		quit:   make(chan struct{}),
	}
}

// SetTargets replaces the targets, as a configuration reload does. A notification already
// being sent finishes with the targets it started with.
func (n *Notifier) SetTargets(global []Target, perRepo map[string][]Target) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.global, n.perRepo = global, perRepo
}

// Start runs the sending goroutine.
func (n *Notifier) Start() {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			select {
			case dp := <-n.jobs:
				n.handle(dp)
			case <-n.quit:
				// Send what is already waiting, then stop.
				for {
					select {
					case dp := <-n.jobs:
						n.handle(dp)
					default:
						return
					}
				}
			}
		}
	}()
}

// Stop sends what is queued and returns when done.
func (n *Notifier) Stop() {
	n.once.Do(func() { close(n.quit) })
	n.wg.Wait()
}

// DeployFinished hands a finished deploy to the notifier. It never blocks: when the queue
// is full the notification is recorded as dropped.
func (n *Notifier) DeployFinished(dp store.Deploy) {
	if dp.Status != store.DeploySucceeded && dp.Status != store.DeployFailed {
		return
	}
	targets := n.targets(dp.Repo)
	if len(targets) == 0 {
		return
	}
	select {
	case n.jobs <- dp:
	default:
		n.log.Warn("notification queue full; dropping", "deploy_id", dp.ID, "repo", dp.Repo)
		for _, t := range targets {
			n.record(dp, t, eventOf(dp.Status), store.NotificationDropped, 0, 0, "the notification queue was full", time.Now())
		}
	}
}

func eventOf(status string) string {
	if status == store.DeployFailed {
		return EventFailure
	}
	return EventRecovery
}

// targets are the global targets and repo's own, as configured now.
func (n *Notifier) targets(repo string) []Target {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append(slices.Clone(n.global), n.perRepo[repo]...)
}

// handle decides whether dp is news (every failure; a success only after a failure) and
// sends it to each target that asked for it.
func (n *Notifier) handle(dp store.Deploy) {
	event := eventOf(dp.Status)
	if event == EventRecovery {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		prev, err := n.store.PreviousOutcome(ctx, dp.Repo, dp.ID)
		cancel()
		if err != nil {
			n.log.Error("notify: previous deploy", "repo", dp.Repo, "err", err)
			return
		}
		if prev != store.DeployFailed {
			return
		}
	}
	for _, t := range n.targets(dp.Repo) {
		if t.wants(event) {
			n.send(dp, t, event)
		}
	}
}

func (n *Notifier) send(dp store.Deploy, t Target, event string) {
	created := time.Now()
	body, err := n.body(dp, t, event)
	if err != nil {
		n.record(dp, t, event, store.NotificationFailed, 0, 0, err.Error(), created)
		return
	}
	var status int
	var lastErr error
	attempt := 0
	backoff := n.opts.Backoff
	for attempt < n.opts.Attempts {
		if attempt > 0 {
			select {
			case <-time.After(backoff):
			case <-n.quit:
				// Shutting down: one more try at most, without waiting.
			}
			backoff *= 2
		}
		attempt++
		status, lastErr = n.post(t, body, event)
		if lastErr == nil {
			n.record(dp, t, event, store.NotificationSent, attempt, status, "", created)
			n.log.Info("notification sent", "deploy_id", dp.ID, "repo", dp.Repo, "target", t.Name, "event", event, "attempts", attempt)
			return
		}
		if status >= 400 && status < 500 && status != http.StatusTooManyRequests && status != http.StatusRequestTimeout {
			break // the receiver refuses this request; sending it again will not help
		}
	}
	n.record(dp, t, event, store.NotificationFailed, attempt, status, lastErr.Error(), created)
	n.log.Warn("notification failed", "deploy_id", dp.ID, "repo", dp.Repo, "target", t.Name, "event", event, "attempts", attempt, "err", lastErr)
}

// post sends one attempt. Errors name the target, never its URL.
func (n *Notifier) post(t Target, body []byte, event string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("target %s: bad url", t.Name)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hookgate-notify/1")
	if t.Kind == KindWebhook {
		req.Header.Set("X-Hookgate-Event", "deploy."+event)
		req.Header.Set("X-Hookgate-Delivery", newID())
		if len(t.Secret) > 0 {
			req.Header.Set("X-Hookgate-Signature-256", Sign(body, t.Secret))
		}
	}
	resp, err := n.client.Do(req)
	if err != nil {
		var ue interface{ Timeout() bool }
		if errors.As(err, &ue) && ue.Timeout() {
			return 0, fmt.Errorf("target %s: no answer within %s", t.Name, n.opts.Timeout)
		}
		return 0, fmt.Errorf("target %s: %s", t.Name, describeTransportError(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("target %s answered %s", t.Name, resp.Status)
	}
	return resp.StatusCode, nil
}

// describeTransportError keeps the cause of a failed request without the URL, which
// net/http puts in its errors and which may carry a token.
func describeTransportError(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		err = ue.Unwrap()
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg[:i], "://") {
		msg = msg[i+2:]
	}
	return msg
}

func (n *Notifier) record(dp store.Deploy, t Target, event, status string, attempts, httpStatus int, errMsg string, created time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := n.store.RecordNotification(ctx, &store.Notification{
		DeployID: dp.ID, Repo: dp.Repo, Target: t.Name, Kind: t.Kind, Event: event, Status: status,
		Attempts: attempts, HTTPStatus: httpStatus, Error: errMsg, CreatedAt: created,
	})
	if err != nil {
		n.log.Error("record notification", "deploy_id", dp.ID, "target", t.Name, "err", err)
	}
}

// Message is the JSON body of a webhook notification.
type Message struct {
	Event  string        `json:"event"` // deploy.failure or deploy.recovery
	Repo   string        `json:"repo"`
	Deploy DeployMessage `json:"deploy"`
	SentAt time.Time     `json:"sent_at"`
}

// DeployMessage is the deploy a Message is about.
type DeployMessage struct {
	ID      int64  `json:"id"`
	Status  string `json:"status"`
	Trigger string `json:"trigger"`
	// Node is the gateway that ran the deploy ([server] node): in a fleet, the one
	// machine the outcome is about.
	Node       string    `json:"node"`
	FromCommit string    `json:"from_commit"`
	ToCommit   string    `json:"to_commit"`
	Error      string    `json:"error"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

func (n *Notifier) body(dp store.Deploy, t Target, event string) ([]byte, error) {
	if t.Kind == KindSlack {
		return json.Marshal(map[string]string{"text": slackText(dp, event)})
	}
	return json.Marshal(Message{
		Event: "deploy." + event, Repo: dp.Repo, SentAt: time.Now().UTC(),
		Deploy: DeployMessage{ID: dp.ID, Status: dp.Status, Trigger: dp.Trigger, Node: dp.Node, FromCommit: dp.FromCommit,
			ToCommit: dp.ToCommit, Error: dp.Error, StartedAt: dp.StartedAt, FinishedAt: dp.FinishedAt},
	})
}

func slackText(dp store.Deploy, event string) string {
	to := dp.ToCommit
	if len(to) > 7 {
		to = to[:7]
	}
	on := ""
	if dp.Node != "" {
		on = " on " + dp.Node
	}
	if event == EventFailure {
		return fmt.Sprintf("hookgate: deploy %d of %s%s FAILED at %s: %s", dp.ID, dp.Repo, on, to, dp.Error)
	}
	return fmt.Sprintf("hookgate: %s recovered%s: deploy %d succeeded at %s", dp.Repo, on, dp.ID, to)
}

// Sign returns the X-Hookgate-Signature-256 value for body: the same scheme as GitHub's
// X-Hub-Signature-256, so receivers can reuse their verification code.
func Sign(body, secret []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
