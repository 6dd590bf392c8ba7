// Recording a delivery: RecordDelivery, the payload encoding, the writer's per-batch state,
// and what comes before a delivery's row (prepareDelivery, enqueue).

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

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

// prepareDelivery does what comes before a delivery's row: the redelivery lookup, and for
// an accepted delivery its deploys, one per node that deploys the repository (see
// targetsInBatch), each joined or queued.
func (s *Store) prepareDelivery(ctx context.Context, tx *sql.Tx, st *batchState, r *writeReq) error {
	d := r.d
	r.others = r.others[:0]
	done, err := s.markRedelivery(ctx, tx, st, r)
	if err != nil {
		return err
	}
	if d.Status == DeliveryAccepted {
		pin, err := s.pinInBatch(ctx, tx, st, d.Repo)
		if err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		var targets, pending []string
		if pin == nil {
			if targets, err = s.targetsInBatch(ctx, tx, st, d.Repo); err != nil {
				return fmt.Errorf("record delivery: %w", err)
			}
			for _, n := range targets {
				if done[n] == 0 {
					pending = append(pending, n)
				}
			}
		}
		switch {
		case pin != nil:
			// Recorded, answered 200, and not deployed: the operator holds the checkout.
			d.Status = DeliveryIgnored
			d.HTTPStatus = 200
			d.Reason = PinnedReason(pin)
		case len(targets) == 0:
			d.Status = DeliveryIgnored
			d.HTTPStatus = 200
			d.Reason = noTargetsReason
		case len(pending) == 0:
			d.Status = DeliveryIgnored
			d.HTTPStatus = 200
			d.Reason = "redelivery of a delivery already deployed by " + describeDeployed(done, targets)
		default:
			trigger := TriggerPush
			switch {
			case d.ReplayOf != 0:
				trigger = TriggerReplay
			case d.Redelivery:
				trigger = TriggerRedelivery
			}
			ids := make([]int64, len(pending))
			for i, n := range pending {
				k := nodeRepo{n, d.Repo}
				id, ok := st.queued[k]
				if !ok {
					if id, err = s.enqueue(ctx, tx, d.Repo, n, trigger, d.Ref); err != nil {
						return err
					}
					st.queued[k] = id
				}
				ids[i] = id
			}
			primary := s.primary(pending)
			d.DeployID = ids[primary]
			for i, id := range ids {
				if i != primary {
					r.others = append(r.others, id)
				}
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

// noTargetsReason is why an accepted delivery that no node deploys is ignored.
const noTargetsReason = "no node deploys this repository: none of the nodes running names it " +
	"(see [repos.NAME] nodes); a node that starts later catches up through reconcile"

// describeDeployed words the succeeded deploys of the earlier copies of a redelivery on
// targets: "deploy 7" with one node, "deploys 7 (web1), 8 (web2)" with several.
func describeDeployed(done deployedOn, targets []string) string {
	if len(targets) == 1 {
		return fmt.Sprintf("deploy %d", done[targets[0]])
	}
	parts := make([]string, 0, len(targets))
	for _, n := range targets {
		parts = append(parts, fmt.Sprintf("%d (%s)", done[n], n))
	}
	return "deploys " + strings.Join(parts, ", ")
}

// primary picks, among a delivery's target nodes, the one whose deploy deliveries.deploy_id
// names: this gateway's own when it is one, else the first by name.
func (s *Store) primary(targets []string) int {
	for i, n := range targets {
		if n == s.node {
			return i
		}
	}
	return 0
}

// enqueue returns node's queued deploy of repo, creating it when there is none. This is
// the coalescing: everything that arrives while a deploy waits joins it.
func (s *Store) enqueue(ctx context.Context, tx *sql.Tx, repo, node, trigger, ref string) (int64, error) {
	if err := s.lockRepos(ctx, tx, []string{repo}); err != nil {
		return 0, fmt.Errorf("enqueue deploy: %w", err)
	}
	var id int64
	err := s.queryRow(ctx, tx, queuedDeploySQL, node, repo).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = s.queryRow(ctx, tx, newDeploySQL, repo, trigger, ref, s.now(), node).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			// PostgreSQL: another gateway's transaction queued one meanwhile, which the
			// repository's lock (lockRepos) makes rare; that deploy is the one to join.
			err = s.queryRow(ctx, tx, queuedDeploySQL, node, repo).Scan(&id)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("enqueue deploy: %w", err)
	}
	if err := s.wakeNode(ctx, tx, node, repo); err != nil {
		return 0, fmt.Errorf("enqueue deploy: %w", err)
	}
	return id, nil
}
