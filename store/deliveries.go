package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

// The write path's statements, prepared once when the store opens (see prepared.go).
const (
	// A GUID names a redelivery only of a delivery to the same repository whose signature
	// was valid: forges do not promise GUIDs unique across hooks, and anyone can send an
	// unsigned request with a GUID they have seen. The conditions "guid != ''" and
	// "signature = 'valid'" repeat the partial index's (migration 00006) so SQLite uses it;
	// without them every insert scans the table.
	//
	// guidsSeenSQL takes the batch's GUIDs as a JSON array and answers each earlier
	// delivery with one of them, with the deploy its deploy_id names (0: none). Only when
	// there are some (a redelivery: rare) does succeededDeploys look up which of their
	// deploys succeeded, on which nodes: one query that joins deploys and delivery_deploys
	// here let PostgreSQL's planner scan the whole deliveries table for every batch.
	guidsSeenSQL = `
		SELECT d.repo, d.guid, d.id FROM deliveries d
		WHERE d.guid IN (SELECT value FROM json_each(?)) AND d.guid != '' AND d.signature = 'valid'`
	queuedDeploySQL = `SELECT id FROM deploys WHERE node = ? AND repo = ? AND status = 'queued'`
	newDeploySQL    = `
		INSERT INTO deploys (repo, status, triggered_by, ref, queued_at, node)
		VALUES (?, 'queued', ?, ?, ?, ?) RETURNING id`
	maxDeliveryIDSQL = `SELECT coalesce(max(id), 0) FROM deliveries`
)

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

// guidKey is what a redelivery matches: the same GUID sent to the same repository.
type guidKey struct{ repo, guid string }

// deployedOn maps a node to a succeeded deploy there of an earlier copy of a delivery.
type deployedOn map[string]int64

// redeliveryCandidate tells whether d takes part in the redelivery lookup: only a
// delivery whose signature was valid can be, or have, a redelivery.
func redeliveryCandidate(d *Delivery) bool {
	return d.GUID != "" && d.Signature == SignatureValid
}

// lookUpGUIDs fills st.seen for batch with one query instead of one per delivery.
func (s *Store) lookUpGUIDs(ctx context.Context, tx *sql.Tx, st *batchState, batch []*writeReq) error {
	var err error
	st.seen, err = s.seenGUIDs(ctx, tx, batch)
	return err
}

// seenGUIDs runs guidsSeenSQL for the validly signed deliveries of batch.
func (s *Store) seenGUIDs(ctx context.Context, tx *sql.Tx, batch []*writeReq) (map[guidKey]deployedOn, error) {
	guids := make([]string, 0, len(batch))
	want := make(map[guidKey]bool, len(batch))
	for _, r := range batch {
		if redeliveryCandidate(r.d) {
			guids = append(guids, r.d.GUID)
			want[guidKey{r.d.Repo, r.d.GUID}] = true
		}
	}
	seen := make(map[guidKey]deployedOn, len(guids))
	if len(guids) == 0 {
		return seen, nil
	}
	b, err := json.Marshal(guids)
	if err != nil {
		return nil, fmt.Errorf("record delivery: look up guids: %w", err)
	}
	rows, err := s.query(ctx, tx, guidsSeenSQL, string(b))
	if err != nil {
		return nil, fmt.Errorf("record delivery: look up guids: %w", err)
	}
	earlier := map[int64]guidKey{} // earlier deliveries with a GUID of the batch
	for rows.Next() {
		var k guidKey
		var id int64
		if err := rows.Scan(&k.repo, &k.guid, &id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("record delivery: look up guids: %w", err)
		}
		if want[k] {
			if seen[k] == nil {
				seen[k] = deployedOn{}
			}
			earlier[id] = k
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("record delivery: look up guids: %w", err)
	}
	if len(earlier) == 0 {
		return seen, nil
	}
	ids := make([]int64, 0, len(earlier))
	for id := range earlier {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for rest := ids; len(rest) > 0; {
		n := min(len(rest), 500)
		if err := s.succeededDeploys(ctx, tx, rest[:n], func(delivery int64, node string, deploy int64) {
			if on := seen[earlier[delivery]]; deploy > on[node] {
				on[node] = deploy
			}
		}); err != nil {
			return nil, fmt.Errorf("record delivery: look up guids: %w", err)
		}
		rest = rest[n:]
	}
	return seen, nil
}

// succeededDeploysSQL finds the succeeded deploys the deliveries whose ids fill its two
// lists (the same ids twice) joined: through deploy_id, and through delivery_deploys.
// CROSS JOIN keeps SQLite's join order, the deliveries' keys first: left to itself it
// starts from every succeeded deploy.
func succeededDeploysSQL(in string) string {
	return `SELECT d.id, dp.node, dp.id FROM deliveries d CROSS JOIN deploys dp
		WHERE d.id IN (` + in + `) AND dp.id = d.deploy_id AND dp.status = 'succeeded'
		UNION ALL
		SELECT l.delivery_id, dp.node, dp.id FROM delivery_deploys l CROSS JOIN deploys dp
		WHERE l.delivery_id IN (` + in + `) AND dp.id = l.deploy_id AND dp.status = 'succeeded'`
}

// succeededDeploys calls found with each succeeded deploy that one of the deliveries ids
// joined, and its node.
func (s *Store) succeededDeploys(ctx context.Context, tx *sql.Tx, ids []int64, found func(delivery int64, node string, deploy int64)) error {
	in, args := inList(ids, 2)
	rows, err := tx.QueryContext(ctx, s.sql(succeededDeploysSQL(in)), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var delivery, deploy int64
		var node string
		if err := rows.Scan(&delivery, &node, &deploy); err != nil {
			return err
		}
		found(delivery, node, deploy)
	}
	return rows.Err()
}

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

// insertDeliveries writes the rows of a prepared batch (see prepareDelivery) with
// multi-row INSERTs, and their payloads likewise. One statement per delivery spent as
// much in database/sql, binding and SQLite's per-statement work (opening a cursor on
// the table and each index, the foreign-key check) as in the B-tree inserts.
//
// The ids are given, not left to the database (see nextDeliveryIDs): known before the
// statement runs, they number the payloads' rows too.
func (s *Store) insertDeliveries(ctx context.Context, tx *sql.Tx, batch []*writeReq) error {
	ids, err := s.nextDeliveryIDs(ctx, tx, len(batch))
	if err != nil {
		return fmt.Errorf("record delivery: ids: %w", err)
	}
	for i, r := range batch {
		r.d.ID = ids[i]
	}
	args := make([]any, 0, min(len(batch), insertChunks[0])*deliveryInsertCols)
	for rest := batch; len(rest) > 0; {
		n := chunkSize(len(rest))
		args = args[:0]
		for _, r := range rest[:n] {
			d := r.d
			args = append(args, d.ID,
				d.GUID, d.Repo, d.Event, d.Ref, d.Before, d.After, d.Commit,
				d.Signature, d.SignatureAlg, d.Status, d.Reason, d.HTTPStatus, d.Redelivery, d.ReceivedAt,
				d.RemoteAddr, d.UserAgent, d.ContentType, d.BodySize, r.headers, d.FullName, d.RepoURL,
				d.Pusher, d.Message, nullID(d.DeployID), nullID(d.ReplayOf))
		}
		if _, err := s.exec(ctx, tx, insertDeliveriesSQL[n], args...); err != nil {
			return fmt.Errorf("record delivery: insert: %w", err)
		}
		rest = rest[n:]
	}
	withPayload := make([]*writeReq, 0, len(batch))
	for _, r := range batch {
		if r.payload != nil {
			withPayload = append(withPayload, r)
		}
	}
	for rest := withPayload; len(rest) > 0; {
		n := chunkSize(len(rest))
		args = args[:0]
		for _, r := range rest[:n] {
			args = append(args, r.d.ID, r.encoding, r.payload)
		}
		if _, err := s.exec(ctx, tx, insertPayloadsSQL[n], args...); err != nil {
			return fmt.Errorf("record delivery: payload: %w", err)
		}
		rest = rest[n:]
	}
	return s.insertLinks(ctx, tx, batch)
}

// insertLinks records the deploys the batch's deliveries joined beyond the one their
// deploy_id names: only in a fleet, where a delivery is deployed by several nodes.
func (s *Store) insertLinks(ctx context.Context, tx *sql.Tx, batch []*writeReq) error {
	var rows []string
	var args []any
	for _, r := range batch {
		for _, id := range r.others {
			rows = append(rows, "(?, ?)")
			args = append(args, r.d.ID, id)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.sql(`INSERT INTO delivery_deploys (delivery_id, deploy_id) VALUES `+
		strings.Join(rows, ", ")), args...); err != nil {
		return fmt.Errorf("record delivery: deploys: %w", err)
	}
	return nil
}

// insertChunks are the row counts of the multi-row INSERTs prepared at Open, largest
// first; a batch is written in chunks of these sizes (19 deliveries: 16, 2, 1). Larger
// statements would be prepared, and kept, for the rare large batch.
var insertChunks = []int{16, 8, 4, 2, 1}

// chunkSize is the largest of insertChunks that is at most n (n > 0).
func chunkSize(n int) int {
	for _, c := range insertChunks {
		if c <= n {
			return c
		}
	}
	return 1
}

// The columns the write path fills, and the multi-row INSERTs of insertChunks rows
// that fill them, by row count.
const (
	deliveryInsertColumns = `id, guid, repo, event, ref, before_commit, after_commit, commit_short,
		signature, signature_alg, status, reason, http_status, redelivery, received_at,
		remote_addr, user_agent, content_type, body_size, headers, full_name, repo_url,
		pusher, message, deploy_id, replay_of`
	payloadInsertColumns = `delivery_id, encoding, payload`
)

var (
	insertDeliveriesSQL, deliveryInsertCols = multiRowInserts("deliveries", deliveryInsertColumns)
	insertPayloadsSQL, _                    = multiRowInserts("delivery_payloads", payloadInsertColumns)
)

// multiRowInserts returns an INSERT of each row count in insertChunks into columns of
// table, and the number of columns.
func multiRowInserts(table, columns string) (map[int]string, int) {
	cols := strings.Count(columns, ",") + 1
	row := "(" + strings.Repeat("?, ", cols-1) + "?)"
	q := make(map[int]string, len(insertChunks))
	for _, n := range insertChunks {
		q[n] = "INSERT INTO " + table + " (" + columns + ") VALUES " + strings.Repeat(row+", ", n-1) + row
	}
	return q, cols
}

// markRedelivery sets d.Redelivery when a validly signed delivery with d's GUID was
// recorded for d's repository before, and returns the nodes where a deploy an earlier copy
// joined succeeded. A delivery without a valid signature is never a redelivery.
func (s *Store) markRedelivery(ctx context.Context, tx *sql.Tx, st *batchState, r *writeReq) (deployedOn, error) {
	d := r.d
	if !redeliveryCandidate(d) {
		return nil, nil
	}
	seen := st.seen
	if seen == nil {
		var err error
		if seen, err = s.seenGUIDs(ctx, tx, []*writeReq{r}); err != nil {
			return nil, err
		}
	}
	done, ok := seen[guidKey{d.Repo, d.GUID}]
	d.Redelivery = ok
	return done, nil
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

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// deliveryColumns is what every delivery query selects, in scanDelivery's order.
const deliveryColumns = `d.id, d.guid, d.repo, d.event, d.ref, d.before_commit, d.after_commit,
	d.commit_short, d.signature, d.signature_alg, d.status, d.reason, d.http_status,
	d.redelivery, d.received_at, d.remote_addr, d.user_agent, d.content_type, d.body_size,
	d.full_name, d.repo_url, d.pusher, d.message, COALESCE(d.deploy_id, 0),
	COALESCE(d.replay_of, 0), COALESCE(dp.status, ''), dp.started_at, dp.finished_at, COALESCE(dp.node, '')`

type scanner interface{ Scan(dest ...any) error }

func scanDelivery(row scanner, extra ...any) (Delivery, error) {
	var d Delivery
	var started, finished sql.NullTime
	dest := []any{&d.ID, &d.GUID, &d.Repo, &d.Event, &d.Ref, &d.Before, &d.After,
		&d.Commit, &d.Signature, &d.SignatureAlg, &d.Status, &d.Reason, &d.HTTPStatus,
		&d.Redelivery, &d.ReceivedAt, &d.RemoteAddr, &d.UserAgent, &d.ContentType, &d.BodySize,
		&d.FullName, &d.RepoURL, &d.Pusher, &d.Message, &d.DeployID,
		&d.ReplayOf, &d.DeployStatus, &started, &finished, &d.DeployNode}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return Delivery{}, err
	}
	d.ReceivedAt = d.ReceivedAt.UTC()
	d.DeployStartedAt = started.Time.UTC()
	d.DeployFinishedAt = finished.Time.UTC()
	d.Deploys = []DeployRef{}
	if d.DeployID != 0 {
		d.Deploys = append(d.Deploys, DeployRef{Node: d.DeployNode, ID: d.DeployID, Status: d.DeployStatus})
	}
	return d, nil
}

// Delivery returns one delivery with its headers and payload.
func (s *Store) Delivery(ctx context.Context, id int64) (Delivery, error) {
	var headers string
	var payload, stored []byte
	var encoding sql.NullString
	// Deliveries recorded before delivery_payloads existed keep their payload in their row.
	row := s.rdb.QueryRowContext(ctx, s.sql(`SELECT `+deliveryColumns+`, d.headers, d.payload, p.encoding, p.payload
		FROM deliveries d LEFT JOIN deploys dp ON dp.id = d.deploy_id
		LEFT JOIN delivery_payloads p ON p.delivery_id = d.id WHERE d.id = ?`), id)
	d, err := scanDelivery(row, &headers, &payload, &encoding, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("get delivery %d: %w", id, err)
	}
	if err := json.Unmarshal([]byte(headers), &d.Headers); err != nil {
		return Delivery{}, fmt.Errorf("get delivery %d: headers: %w", id, err)
	}
	if encoding.Valid {
		if payload, err = decodePayload(encoding.String, stored); err != nil {
			return Delivery{}, fmt.Errorf("get delivery %d: payload: %w", id, err)
		}
	}
	d.Payload = payload
	one := []Delivery{d}
	if err := s.attachDeployRefs(ctx, one); err != nil {
		return Delivery{}, fmt.Errorf("get delivery %d: %w", id, err)
	}
	return one[0], nil
}
