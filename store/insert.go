// Writing a prepared batch's rows: the multi-row INSERTs of deliveries, their payloads and
// their links to the deploys they joined.

package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

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
				d.Pusher, d.Message, nullID(d.DeployID), nullID(d.ReplayOf), d.Hook)
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
	if len(rows) > 0 {
		if _, err := s.run(ctx, tx, dynamic(`INSERT INTO delivery_deploys (delivery_id, deploy_id) VALUES `+
			strings.Join(rows, ", ")), args...); err != nil {
			return fmt.Errorf("record delivery: deploys: %w", err)
		}
	}
	return s.insertTargets(ctx, tx, batch)
}

// insertTargets records what each [hooks.NAME] delivery of the batch did for each of its
// targets. A hook that is its own one target writes nothing: the delivery's status and
// reason are its target's, so existing configurations write what they always did.
func (s *Store) insertTargets(ctx context.Context, tx *sql.Tx, batch []*writeReq) error {
	var rows []string
	var args []any
	for _, r := range batch {
		if r.d.Input == nil || len(r.d.Input.Targets) == 0 {
			continue
		}
		for _, t := range r.d.Targets {
			rows = append(rows, "(?, ?, ?, ?)")
			args = append(args, r.d.ID, t.Repo, t.Status, t.Reason)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if _, err := s.run(ctx, tx, dynamic(`INSERT INTO delivery_targets (delivery_id, repo, status, reason) VALUES `+
		strings.Join(rows, ", ")), args...); err != nil {
		return fmt.Errorf("record delivery: targets: %w", err)
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

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}
