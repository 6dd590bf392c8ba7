// Recording a delivery: RecordDelivery, the payload encoding, the writer's per-batch state,
// and what comes before a delivery's row (prepareDelivery, enqueue).

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
	// nodes caches the registered nodes and the repositories each deploys; nil until the
	// batch's first accepted delivery reads it (see targetsInBatch).
	nodes map[string][]string
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
// decision (policy.Decide, on the state read here: the pin, the nodes that deploy the
// repository, see targetsInBatch, and earlier copies' deploys), and for an accepted delivery
// its deploys, one per node the decision queues on, each joined or queued.
func (s *Store) prepareDelivery(ctx context.Context, tx *sql.Tx, st *batchState, r *writeReq) error {
	d := r.d
	r.others = r.others[:0]
	done, err := s.markRedelivery(ctx, tx, st, r)
	if err != nil {
		return err
	}
	dec, ok := screen(d)
	if ok {
		state := policy.State{Deployed: done, Redelivery: d.Redelivery, Self: s.node}
		pin, err := s.pinInBatch(ctx, tx, st, d.Repo)
		if err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		if pin != nil {
			state.Pin = &policy.Pin{Commit: pin.Commit, By: pin.By, At: pin.At}
		} else if state.Targets, err = s.targetsInBatch(ctx, tx, st, d.Repo); err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		dec = policy.Settle(dec, d.ReplayOf, state)
	}
	d.Status, d.HTTPStatus, d.Reason = dec.Status, dec.HTTPStatus, dec.Reason
	if d.Status == DeliveryAccepted {
		for _, n := range dec.Queue {
			k := nodeRepo{n, d.Repo}
			id, ok := st.queued[k]
			if s.waitsForChecks(d.Repo, dec.Trigger) && d.After != "" {
				// Each delivery's own commit: a newer one in the batch supersedes, the
				// same one joins (enqueueWaiting); never the queue's cache.
				if id, err = s.enqueueWaiting(ctx, tx, d.Repo, n, dec.Trigger, d.Ref, d.After, ""); err != nil {
					return err
				}
			} else if !ok {
				if id, err = s.enqueue(ctx, tx, d.Repo, n, dec.Trigger, d.Ref); err != nil {
					return err
				}
				st.queued[k] = id
			}
			if err := s.noteForgeRepo(ctx, tx, d, id); err != nil {
				return err
			}
			if n == dec.Primary {
				d.DeployID = id
			} else {
				r.others = append(r.others, id)
			}
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
	if err := s.lockRepos(ctx, tx, []string{repo}); err != nil {
		return 0, fmt.Errorf("enqueue deploy: %w", err)
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
			err = s.queryRow(ctx, tx, queuedDeploySQL, node, repo).Scan(&id)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("enqueue deploy: %w", err)
	}
	if created {
		if err := s.report(ctx, tx, id, repo); err != nil {
			return 0, fmt.Errorf("enqueue deploy: %w", err)
		}
	}
	if err := s.noteQueued(ctx, tx, node, repo); err != nil {
		return 0, fmt.Errorf("enqueue deploy: %w", err)
	}
	return id, nil
}
