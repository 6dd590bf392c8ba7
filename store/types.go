package store

import (
	"time"

	"github.com/hookgate/hookgate/policy"
)

// Delivery statuses: what the gateway made of a request.
const (
	DeliveryAccepted = policy.Accepted // a push to the deployed branch; joined a deploy
	DeliveryIgnored  = policy.Ignored  // valid, but nothing to deploy (other ref, event, ping…)
	DeliveryRejected = "rejected"      // bad signature, oversized or malformed
)

// Signature results.
const (
	SignatureValid     = "valid"
	SignatureInvalid   = "invalid"
	SignatureMissing   = "missing"
	SignatureUnchecked = "unchecked" // the body was never read whole (over max_body)
)

// Deploy statuses.
const (
	DeployQueued      = "queued"
	DeployRunning     = "running"
	DeploySucceeded   = "succeeded"
	DeployFailed      = "failed"
	DeployInterrupted = "interrupted"
	DeployWaiting     = "waiting" // for the commit's checks on the forge (require_checks, issue 22)
	// DeploySkipped: a target with paths whose watched files did not change since the
	// live commit; the checkout was left alone and no command ran. Not live: the live
	// commit stays the last succeeded deploy's.
	DeploySkipped = "skipped"
	// DeployVerifying: the commands succeeded and the health check runs (health.go).
	DeployVerifying = "verifying"
	// DeploySuperseded: a newer deploy was queued while this one was verifying (the check
	// ended there, nothing is rolled back or marked bad), or a newer commit came while it
	// was waiting for its checks.
	DeploySuperseded = "superseded"
)

// Deploy triggers: why a deploy exists.
const (
	TriggerPush       = policy.TriggerPush
	TriggerRedelivery = policy.TriggerRedelivery
	TriggerManual     = "manual"
	TriggerRecovery   = "recovery"           // re-queued after a deploy was interrupted
	TriggerReplay     = policy.TriggerReplay // an operator re-ran a recorded delivery
	TriggerReconcile  = "reconcile"          // origin's branch head differed from what is live
	TriggerRollback   = "rollback"           // an operator moved the checkout back to an earlier commit
	// TriggerAutoRollback: a failed health check moved the checkout back to the last good commit.
	TriggerAutoRollback = "auto_rollback"
)

// Triggers lists every trigger, for validating filters.
var Triggers = []string{TriggerPush, TriggerRedelivery, TriggerManual, TriggerRecovery, TriggerReplay,
	TriggerReconcile, TriggerRollback, TriggerAutoRollback}

// Delivery is one request that reached a configured hook.
type Delivery struct {
	ID   int64
	GUID string // X-GitHub-Delivery
	Repo string // the hook name
	// Hook is the hook the delivery came through ([hooks.NAME], or a [repos.NAME] with its
	// own secret); RecordDelivery sets it to Repo when empty.
	Hook         string
	Event        string
	Ref          string
	Before       string
	After        string
	Commit       string // first 7 characters of After
	Signature    string
	SignatureAlg string // sha256 or sha1
	Status       string
	Reason       string
	HTTPStatus   int
	Redelivery   bool
	ReceivedAt   time.Time
	RemoteAddr   string
	UserAgent    string
	ContentType  string
	BodySize     int64
	Headers      map[string]string
	FullName     string // payload repository.full_name
	RepoURL      string // payload repository.html_url
	Pusher       string
	Message      string // head commit message
	Payload      []byte // the JSON payload, only for valid signatures, bounded
	DeployID     int64  // 0 when the delivery joined no deploy
	ReplayOf     int64  // the delivery this one re-runs, 0 for deliveries from the network

	// Input is what policy decides the delivery on, set by the server for a validly
	// signed, parsed delivery (not recorded): RecordDelivery sets Status, HTTPStatus and
	// Reason from policy.Decide. Nil: the delivery is recorded as its sender decided
	// (rejected; or accepted, then only the state, pin and nodes, can ignore it).
	Input *policy.Delivery

	// DeployStatus and the deploy's times are filled in by queries that join the deploy.
	DeployStatus     string
	DeployStartedAt  time.Time
	DeployFinishedAt time.Time
	DeployNode       string // the node that runs the deploy ("" when none named)
	DeployToCommit   string // the commit the deploy went to ("" until it knows)

	// Deploys are the deploys the delivery joined, one per node that deploys its
	// repository, sorted by node, filled in by the same queries; empty when it joined
	// none. With one gateway a delivery joins at most one deploy, the one DeployID names.
	Deploys []DeployRef

	// Targets are what the delivery did for each target of its hook: set by
	// RecordDelivery for a delivery it decided on (Input set); read back (ListDeliveries, Delivery) only
	// for a [hooks.NAME] delivery, whose outcomes are stored per target.
	Targets []TargetOutcome
}

// Target outcome statuses: a target queued a deploy, or ignored the delivery.
const (
	TargetQueued  = "queued"
	TargetIgnored = "ignored"
)

// TargetOutcome is what a delivery did for one target of its hook.
type TargetOutcome struct {
	Repo     string
	Status   string // TargetQueued or TargetIgnored
	Reason   string
	DeployID int64 // RecordDelivery only: this node's deploy of the target (0: none here)
}

// DeployRef names a deploy a delivery joined: the node that runs it, its id and status,
// and the target (repository) it deploys.
type DeployRef struct {
	Node   string
	ID     int64
	Status string
	Repo   string
}

// Deploy is one run of a repository's update and commands.
type Deploy struct {
	ID         int64
	Repo       string
	Status     string
	Trigger    string
	Ref        string
	FromCommit string
	ToCommit   string
	QueuedAt   time.Time
	StartedAt  time.Time // zero until claimed
	FinishedAt time.Time // zero until done
	Error      string
	Reason     string // why a reconcile or rollback deploy exists; empty for pushes
	// Node is the gateway ([server] node) that runs the deploy (before migration 00009,
	// the one that created it); "" for deploys recorded before deploys named their node,
	// or by a store opened without WithNode.
	Node string
	// Target is the commit the deploy moves the checkout to; empty means the branch head
	// as fetched. A rollback sets it; ClaimDeploy fills in a pinned repository's commit.
	Target string
	// RollbackOf is the deploy whose failed health check queued this automatic rollback; 0: none.
	RollbackOf  int64
	Log         string // filled only by Store.Deploy
	DeliveryIDs []int64

	// DeliveryGUID is the newest joined delivery's GUID, set by ClaimDeploy.
	DeliveryGUID string
}

// Result is how a deploy ended.
type Result struct {
	Status     string // succeeded, failed, interrupted or skipped
	FromCommit string
	ToCommit   string // for skipped: the commit that was not deployed
	Error      string
	Log        string
	// Reason, when set, replaces the deploy's reason: why it was skipped.
	Reason string
	// Ref, when set, replaces the deploy's ref: the tag a tag target's deploy went to when
	// it was not its first push's (a later push joined it, or a manual deploy took origin's
	// newest), so that the live tag is the one deployed.
	Ref string
}
