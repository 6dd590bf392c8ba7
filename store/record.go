// Recording a delivery: RecordDelivery, the payload encoding, the writer's per-batch state,
// and what comes before a delivery's row (prepareDelivery, enqueue).

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/hookgate/hookgate/policy"
	"github.com/klauspost/compress/s2"
)

// RecordDelivery commits d before returning. An accepted delivery joins its repository's
// queued deploy, or queues a new one, in the same transaction; d.DeployID tells which.
//
// A delivery whose GUID was seen before is marked as a redelivery. An accepted redelivery
// whose earlier delivery's deploy succeeded is not deployed again: RecordDelivery turns it
// into an ignored delivery (HTTP 200) and says why in d.Reason.
func (s *Store) RecordDelivery(ctx context.Context, d *Delivery) error {
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = s.now()
	}
	d.ReceivedAt = s.storedTime(d.ReceivedAt)
	r, err := newWriteReq(d)
	if err != nil {
		return err
	}
	defer r.release()
	return s.batch.submit(ctx, r)
}

// Payload encodings in delivery_payloads.
const (
	encodingIdentity = "identity"
	encodingS2       = "s2" // github.com/klauspost/compress/s2, block format
)

// newWriteReq prepares what the writer stores of d besides its fields: the headers as JSON
// and the payload compressed. It runs in the caller's goroutine, so the one writer that
// every delivery waits for spends nothing on it; S2 compresses a 7 KB push to about 2 KB
// in a few microseconds.
func newWriteReq(d *Delivery) (*writeReq, error) {
	headers, err := marshalHeaders(d.Headers)
	if err != nil {
		return nil, fmt.Errorf("record delivery: headers: %w", err)
	}
	r := &writeReq{d: d, headers: headers, err: make(chan error, 1)}
	if len(d.Payload) > 0 {
		r.buf = encodeBufs.Get().(*[]byte)
		*r.buf = s2.Encode((*r.buf)[:cap(*r.buf)], d.Payload)
		r.payload, r.encoding = *r.buf, encodingS2
		if len(r.payload) >= len(d.Payload) {
			r.payload, r.encoding = d.Payload, encodingIdentity
		}
	}
	return r, nil
}

// encodeBufs recycles the buffers payloads are compressed into: S2 needs room for its
// worst case (a little more than the payload), which for every delivery was a 9 KB
// allocation, as much as the body itself, for the garbage collector to sweep.
var encodeBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBuf keeps the buffers of the rare large payloads out of the pool.
const maxPooledBuf = 64 << 10

// release returns r's buffer to the pool once the writer is done with r.
func (r *writeReq) release() {
	if r.buf == nil {
		return
	}
	if cap(*r.buf) <= maxPooledBuf {
		encodeBufs.Put(r.buf)
	}
	r.buf, r.payload = nil, nil
}

// decodePayload undoes newWriteReq's encoding.
func decodePayload(encoding string, b []byte) ([]byte, error) {
	switch encoding {
	case encodingIdentity:
		return b, nil
	case encodingS2:
		return s2.Decode(nil, b)
	}
	return nil, fmt.Errorf("unknown payload encoding %q", encoding)
}

// writeStatements are prepared on the write connection by Open.
var writeStatements = func() []string {
	q := []string{guidsSeenSQL, queuedDeploySQL, newDeploySQL, maxDeliveryIDSQL, pinSQL, nodesSQL}
	for _, n := range insertChunks {
		q = append(q, insertDeliveriesSQL[n], insertPayloadsSQL[n])
	}
	return q
}()

// batchState is what the writer remembers within one batch's transaction.
type batchState struct {
	// queued maps a node and repository to its queued deploy: within the transaction no
	// one else can create or claim one (the repository's lock, lockRepos, on PostgreSQL),
	// so each is looked up once per batch.
	queued map[nodeRepo]int64
	// seen, when not nil, answers the redelivery lookup for the batch's validly signed
	// deliveries: each repository and GUID recorded before with a valid signature, with
	// the nodes where a deploy an earlier copy joined succeeded (see guidsSeenSQL).
	// lookUpGUIDs fills it with one query; prepareDelivery adds each validly signed
	// delivery of the batch, which is written whole or not at all (writeEach, a savepoint
	// per delivery, runs without seen and looks each delivery up on its own).
	seen map[guidKey]deployedOn
	// pins caches each repository's pin (nil: not pinned) for the batch.
	pins map[string]*Pin
	// bad caches each repository's bad commits for the batch (badInBatch): looked up once
	// per delivery, the query cost a tenth of an accepted delivery's write.
	bad map[string]map[string]BadCommit
	// nodes caches the registered nodes and the repositories each deploys; nil until the
	// batch's first accepted delivery reads it (see targetsInBatch).
	nodes map[string][]string
	// live caches each tag target's live tag for the batch (see liveTagInBatch).
	live map[string]string
}

func newBatchState() *batchState {
	return &batchState{queued: map[nodeRepo]int64{}}
}

// nodeRepo names one node's queue of one repository.
type nodeRepo struct{ node, repo string }

// recordDelivery writes one delivery, as writeEach does after a batch failed.
func (s *Store) recordDelivery(ctx context.Context, tx *sql.Tx, st *batchState, r *writeReq) error {
	if err := s.prepareDelivery(ctx, tx, st, r); err != nil {
		return err
	}
	return s.insertDeliveries(ctx, tx, []*writeReq{r})
}

// prepareDelivery does what comes before a delivery's row: the redelivery lookup, the
// decision (policy.Decide, on the state read here for each target: the pin, the nodes that
// deploy it, see targetsInBatch, earlier copies' deploys, a tag target's live tag), and
// for each target that queues, its deploys, one per node the decision queues on, each
// joined or queued.
func (s *Store) prepareDelivery(ctx context.Context, tx *sql.Tx, st *batchState, r *writeReq) error {
	d := r.d
	r.others = r.others[:0]
	d.Targets = nil
	if d.Hook == "" {
		d.Hook = d.Repo
	}
	done, err := s.markRedelivery(ctx, tx, st, r)
	if err != nil {
		return err
	}
	dec, ok := screen(d)
	tags := targetTags(d)
	if ok {
		state := func(repo string) (policy.State, error) {
			state := policy.State{Deployed: done.on(repo), Redelivery: d.Redelivery, Self: s.node}
			pin, err := s.pinInBatch(ctx, tx, st, repo)
			if err != nil {
				return state, fmt.Errorf("record delivery: %w", err)
			}
			if pin != nil {
				state.Pin = &policy.Pin{Commit: pin.Commit, By: pin.By, At: pin.At}
				return state, nil
			}
			if tags[repo] != "" {
				state.Ref = d.Ref
				if state.Live, err = s.liveTagInBatch(ctx, tx, st, repo); err != nil {
					return state, fmt.Errorf("record delivery: %w", err)
				}
			}
			if state.Targets, err = s.targetsInBatch(ctx, tx, st, repo); err != nil {
				return state, fmt.Errorf("record delivery: %w", err)
			}
			return state, nil
		}
		// A commit whose health check failed for a target is not deployed there again by a
		// delivery: a redelivery, a replay, or a push that names it again.
		notBad := func(repo string, dec policy.Decision) (policy.Decision, error) {
			if dec.Status != DeliveryAccepted || d.After == "" {
				return dec, nil
			}
			bads, err := s.badInBatch(ctx, tx, st, repo)
			if err != nil {
				return dec, fmt.Errorf("record delivery: %w", err)
			}
			if bad, ok := bads[d.After]; ok {
				out := policy.Decision{Status: DeliveryIgnored, HTTPStatus: http.StatusOK, Reason: bad.Reason}
				out.Repo = dec.Repo
				return out, nil
			}
			return dec, nil
		}
		if dec.Targets == nil {
			stt, err := state(d.Repo)
			if err != nil {
				return err
			}
			if dec, err = notBad(d.Repo, policy.Settle(dec, d.ReplayOf, stt)); err != nil {
				return err
			}
		} else {
			for i, t := range dec.Targets {
				if t.Status != DeliveryAccepted {
					continue
				}
				stt, err := state(t.Repo)
				if err != nil {
					return err
				}
				if dec.Targets[i], err = notBad(t.Repo, policy.Settle(t, d.ReplayOf, stt)); err != nil {
					return err
				}
			}
			dec = policy.Combine(dec)
		}
	}
	d.Status, d.HTTPStatus, d.Reason = dec.Status, dec.HTTPStatus, dec.Reason
	each := dec.Targets
	if each == nil {
		each = []policy.Decision{dec}
		each[0].Repo = d.Repo
	}
	primarySet := false
	for _, t := range each {
		out := TargetOutcome{Repo: t.Repo, Status: TargetIgnored, Reason: t.Reason}
		if t.Status == DeliveryAccepted {
			out.Status = TargetQueued
			for _, n := range t.Queue {
				var id int64
				var err error
				if s.waitsForChecks(t.Repo, dec.Trigger) && d.After != "" {
					// Each delivery's own commit: a newer one in the batch supersedes, the
					// same one joins (enqueueWaiting); never the queue's cache.
					id, err = s.enqueueWaiting(ctx, tx, t.Repo, n, dec.Trigger, d.Ref, d.After, "")
				} else {
					id, err = s.queueIn(ctx, tx, st, t.Repo, n, dec.Trigger, d.Ref, tags[t.Repo] != "")
				}
				if err != nil {
					return err
				}
				if err := s.noteForgeRepo(ctx, tx, d, t.Repo, id); err != nil {
					return err
				}
				if n == s.node {
					out.DeployID = id
				}
				if !primarySet && n == t.Primary {
					d.DeployID, primarySet = id, true
				} else {
					r.others = append(r.others, id)
				}
			}
		}
		if d.Input != nil {
			d.Targets = append(d.Targets, out)
		}
	}
	if k := (guidKey{d.Repo, d.GUID}); st.seen != nil && redeliveryCandidate(d) {
		if _, ok := st.seen[k]; !ok {
			// A later copy in the same batch is a redelivery of this one, whose deploys
			// (queued, if any) have not succeeded.
			st.seen[k] = deployedOn{}
		}
	}
	return nil
}

// targetTags maps each of d's targets that deploys tags to its glob.
func targetTags(d *Delivery) map[string]string {
	if d.Input == nil {
		return nil
	}
	var m map[string]string
	for _, t := range d.Input.TargetList() {
		if t.Tags != "" {
			if m == nil {
				m = map[string]string{}
			}
			m[t.Repo] = t.Tags
		}
	}
	return m
}

// queueIn is enqueue with the batch's memory of the queued deploys. A tag target's queued
// deploy that a push of a newer tag joins moves to that tag: the newest pushed tag is what
// the deploy brings (a semantic version older than the queued one leaves it).
func (s *Store) queueIn(ctx context.Context, tx *sql.Tx, st *batchState, repo, node, trigger, ref string, tag bool) (int64, error) {
	k := nodeRepo{node, repo}
	id, ok := st.queued[k]
	if !ok {
		var created bool
		var err error
		if id, created, err = s.enqueueRef(ctx, tx, repo, node, trigger, ref); err != nil {
			return 0, err
		}
		st.queued[k] = id
		if created || !tag {
			return id, nil
		}
	} else if !tag {
		return id, nil
	}
	var queued string
	if err := s.row(ctx, tx, queuedRefSQL, id).Scan(&queued); err != nil {
		return 0, fmt.Errorf("enqueue deploy: ref: %w", err)
	}
	if queued == ref {
		return id, nil
	}
	if c, ok := policy.CompareVersions(strings.TrimPrefix(ref, "refs/tags/"), strings.TrimPrefix(queued, "refs/tags/")); ok && c < 0 {
		return id, nil
	}
	if _, err := s.run(ctx, tx, moveQueuedRefSQL, ref, id); err != nil {
		return 0, fmt.Errorf("enqueue deploy: move to %s: %w", ref, err)
	}
	return id, nil
}

// badInBatch is repo's bad commits by hash, read once per batch: bad commits are few, and
// every accepted delivery of the repository is checked against them.
func (s *Store) badInBatch(ctx context.Context, tx *sql.Tx, st *batchState, repo string) (map[string]BadCommit, error) {
	if m, ok := st.bad[repo]; ok {
		return m, nil
	}
	rows, err := s.rows(ctx, tx, badCommitsSQL, repo)
	if err != nil {
		return nil, fmt.Errorf("bad commits of %s: %w", repo, err)
	}
	defer rows.Close()
	m := map[string]BadCommit{}
	for rows.Next() {
		var b BadCommit
		if err := rows.Scan(&b.Repo, &b.Commit, &b.DeployID, &b.At, &b.Reason); err != nil {
			return nil, fmt.Errorf("bad commits of %s: %w", repo, err)
		}
		m[b.Commit] = b
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("bad commits of %s: %w", repo, err)
	}
	if st.bad == nil {
		st.bad = map[string]map[string]BadCommit{}
	}
	st.bad[repo] = m
	return m, nil
}

// liveTagInBatch is repo's live tag (policy.State.Live), read once per batch.
func (s *Store) liveTagInBatch(ctx context.Context, tx *sql.Tx, st *batchState, repo string) (string, error) {
	if ref, ok := st.live[repo]; ok {
		return ref, nil
	}
	var ref string
	err := s.row(ctx, tx, liveRefSQL, repo).Scan(&ref)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("live tag of %s: %w", repo, err)
	}
	if !strings.HasPrefix(ref, "refs/tags/") {
		ref = ""
	}
	if st.live == nil {
		st.live = map[string]string{}
	}
	st.live[repo] = ref
	return ref, nil
}

// screen is policy.Screen for a delivery the server decided on (d.Input), and for one
// recorded as decided (no Input: rejected, or accepted by a test or tool), its status:
// ok when it may deploy and the state must be read.
func screen(d *Delivery) (dec policy.Decision, ok bool) {
	if d.Input != nil {
		return policy.Screen(*d.Input)
	}
	dec = policy.Decision{Status: d.Status, HTTPStatus: d.HTTPStatus, Reason: d.Reason}
	return dec, d.Status == DeliveryAccepted
}

// noTargetsReason is why an accepted delivery that no node deploys is ignored.
const noTargetsReason = policy.NoTargetsReason

// primary picks, among a deploy's target nodes, the one whose deploy deliveries.deploy_id
// names (policy.Primary).
func (s *Store) primary(targets []string) int {
	return slices.Index(targets, policy.Primary(targets, s.node))
}

// enqueue returns node's queued deploy of repo, creating it when there is none. This is
// the coalescing: everything that arrives while a deploy waits joins it.
func (s *Store) enqueue(ctx context.Context, tx *sql.Tx, repo, node, trigger, ref string) (int64, error) {
	id, _, err := s.enqueueRef(ctx, tx, repo, node, trigger, ref)
	return id, err
}

// enqueueRef is enqueue, telling whether the deploy was created (not joined).
func (s *Store) enqueueRef(ctx context.Context, tx *sql.Tx, repo, node, trigger, ref string) (int64, bool, error) {
	if err := s.lockRepos(ctx, tx, []string{repo}); err != nil {
		return 0, false, fmt.Errorf("enqueue deploy: %w", err)
	}
	var id int64
	err := s.queryRow(ctx, tx, queuedDeploySQL, node, repo).Scan(&id)
	created := false
	if errors.Is(err, sql.ErrNoRows) {
		err = s.queryRow(ctx, tx, newDeploySQL, repo, trigger, ref, s.now(), node).Scan(&id)
		created = err == nil
		if errors.Is(err, sql.ErrNoRows) {
			// PostgreSQL: another gateway's transaction queued one meanwhile, which the
			// repository's lock (lockRepos) makes rare; that deploy is the one to join.
			created = false
			err = s.queryRow(ctx, tx, queuedDeploySQL, node, repo).Scan(&id)
		}
	}
	if err != nil {
		return 0, false, fmt.Errorf("enqueue deploy: %w", err)
	}
	if created {
		if err := s.report(ctx, tx, id, repo); err != nil {
			return 0, false, fmt.Errorf("enqueue deploy: %w", err)
		}
	}
	if err := s.noteQueued(ctx, tx, node, repo); err != nil {
		return 0, false, fmt.Errorf("enqueue deploy: %w", err)
	}
	return id, created, nil
}
