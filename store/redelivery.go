// Redeliveries: which earlier, validly signed delivery a GUID names, and which of its
// deploys succeeded, on which nodes.

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
)

// guidKey is what a redelivery matches: the same GUID sent to the same repository.
type guidKey struct{ repo, guid string }

// deployedOn maps a node and target to a succeeded deploy there of an earlier copy of a
// delivery.
type deployedOn map[nodeRepo]int64

// on is the succeeded deploys of target repo, by node (policy.State.Deployed).
func (o deployedOn) on(repo string) map[string]int64 {
	var m map[string]int64
	for k, id := range o {
		if k.repo == repo {
			if m == nil {
				m = map[string]int64{}
			}
			m[k.node] = id
		}
	}
	return m
}

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
		if err := s.succeededDeploys(ctx, tx, rest[:n], func(delivery int64, k nodeRepo, deploy int64) {
			if on := seen[earlier[delivery]]; deploy > on[k] {
				on[k] = deploy
			}
		}); err != nil {
			return nil, fmt.Errorf("record delivery: look up guids: %w", err)
		}
		rest = rest[n:]
	}
	return seen, nil
}

// succeededDeploys calls found with each succeeded deploy that one of the deliveries ids
// joined, and its node.
func (s *Store) succeededDeploys(ctx context.Context, tx *sql.Tx, ids []int64, found func(delivery int64, k nodeRepo, deploy int64)) error {
	in, args := inList(ids, 2)
	rows, err := s.rows(ctx, tx, dynamic(succeededDeploysSQL(in)), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var delivery, deploy int64
		var k nodeRepo
		if err := rows.Scan(&delivery, &k.node, &k.repo, &deploy); err != nil {
			return err
		}
		found(delivery, k, deploy)
	}
	return rows.Err()
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
