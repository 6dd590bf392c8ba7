package store

import (
	"context"
	"strings"
	"testing"
)

// unsigned is a request to repo's hook that carried guid but no valid signature: the
// gateway records it, rejected.
func unsigned(repo, guid string) *Delivery {
	d := push(repo, guid)
	d.Signature, d.SignatureAlg, d.Status, d.HTTPStatus, d.Reason = SignatureMissing, "", DeliveryRejected, 401, "no signature"
	return d
}

// deployed records d and runs its deploy to success.
func deployed(t *testing.T, s *Store, d *Delivery) {
	t.Helper()
	ctx := context.Background()
	if err := s.RecordDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	dp, err := s.ClaimDeploy(ctx, d.Repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishDeploy(ctx, dp.ID, Result{Status: DeploySucceeded}); err != nil {
		t.Fatal(err)
	}
}

// TestRedeliveryScope: a GUID is a redelivery only of a delivery to the same repository
// whose signature was valid. A GUID that another repository already deployed, or one an
// unsigned request used first, neither marks the genuine delivery a redelivery nor stops
// its deploy. Both write paths are checked: one delivery at a time (writeEach, a lookup per
// delivery) and a whole batch (writeAll, one lookup for the batch).
func TestRedeliveryScope(t *testing.T) {
	for _, path := range []string{"one at a time", "batch"} {
		t.Run(path, func(t *testing.T) {
			s := openTest(t)
			ctx := context.Background()
			deployed(t, s, push("site", "shared"))
			if err := s.RecordDelivery(ctx, unsigned("site", "forged")); err != nil {
				t.Fatal(err)
			}

			var ds []*Delivery
			record := func(d *Delivery) *Delivery {
				ds = append(ds, d)
				return d
			}
			other := record(push("blog", "shared"))     // the GUID site deployed, to another repository
			early := record(unsigned("blog", "blog-1")) // an unsigned request takes the GUID first
			genuine := record(push("blog", "blog-1"))   // then the forge's delivery arrives
			forged := record(push("site", "forged"))    // an earlier unsigned row in the database
			again := record(push("site", "shared"))     // a real redelivery, already deployed
			if path == "batch" {
				for i, err := range s.batch.write(writeReqs(t, s, ds...)) {
					if err != nil {
						t.Fatalf("delivery %d: %v", i, err)
					}
				}
			} else {
				for _, d := range ds {
					if err := s.RecordDelivery(ctx, d); err != nil {
						t.Fatal(err)
					}
				}
			}

			for _, c := range []struct {
				name string
				d    *Delivery
			}{{"a GUID another repository deployed", other}, {"a GUID an unsigned request used in the same batch", genuine},
				{"a GUID an unsigned request used before", forged}} {
				if c.d.Redelivery || c.d.Status != DeliveryAccepted || c.d.DeployID == 0 {
					t.Errorf("%s: redelivery %v, status %s (%s), deploy %d; want a new delivery, accepted and queued",
						c.name, c.d.Redelivery, c.d.Status, c.d.Reason, c.d.DeployID)
				}
			}
			if early.Redelivery || early.Status != DeliveryRejected {
				t.Errorf("the unsigned request: redelivery %v, status %s", early.Redelivery, early.Status)
			}
			if !again.Redelivery || again.Status != DeliveryIgnored || again.DeployID != 0 {
				t.Errorf("a redelivery of site's deployed delivery: redelivery %v, status %s, deploy %d; want ignored",
					again.Redelivery, again.Status, again.DeployID)
			}
			// What the history shows is the stored row, not only the values returned.
			for _, d := range []*Delivery{other, genuine, forged, again} {
				got, err := s.Delivery(ctx, d.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Redelivery != d.Redelivery || got.Status != d.Status {
					t.Errorf("delivery %d stored as redelivery %v, %s; returned %v, %s", d.ID, got.Redelivery, got.Status, d.Redelivery, d.Status)
				}
			}
		})
	}
}

// TestRedeliveryLookupUsesIndex (SQLite's plans): the lookup, which runs for every batch in
// the one writer every delivery waits for, searches the partial index of validly signed
// GUIDs rather than scanning the deliveries (or every unsigned row an attacker can add);
// the follow-up for the rare redelivery reads deliveries and links by key, never every
// succeeded deploy.
func TestRedeliveryLookupUsesIndex(t *testing.T) {
	s := openTest(t)
	plan := func(q string, args ...any) string {
		t.Helper()
		rows, err := s.rdb.Query(`EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, detail)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	if p := plan(guidsSeenSQL, `["g"]`); !strings.Contains(p, "INDEX deliveries_guid_valid (guid=?)") {
		t.Errorf("the GUID lookup does not search deliveries_guid_valid:\n%s", p)
	}
	p := plan(succeededDeploysSQL("?,?"), 1, 2, 1, 2)
	for _, scan := range []string{"SCAN d", "SCAN dp", "SCAN l", "deploys_status_id"} {
		if strings.Contains(p, scan) {
			t.Errorf("the succeeded-deploys lookup walks a table (%s):\n%s", scan, p)
		}
	}
}

// TestQueueChecksUseTheirIndexes (SQLite's plans): a claim's check that nothing of the
// repository runs on the node, and reconcile's check that nothing is queued or running,
// read the partial indexes of queued and running deploys, not the repository's history.
func TestQueueChecksUseTheirIndexes(t *testing.T) {
	s := openTest(t)
	for _, q := range []struct {
		sql  string
		args []any
		want []string
	}{
		{claimDeploySQL, []any{"t", "n", "r", "n", "r"}, []string{"deploys_one_queued", "deploys_running"}},
		{busySQL, []any{"n", "r", "n", "r", "o"}, []string{"deploys_one_queued", "deploys_running"}},
	} {
		rows, err := s.rdb.Query(`EXPLAIN QUERY PLAN `+q.sql, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		all := strings.Join(plan, "\n")
		for _, index := range q.want {
			if !strings.Contains(all, "INDEX "+index+" ") {
				t.Errorf("the plan of %s does not use %s:\n%s", q.sql, index, all)
			}
		}
		if strings.Contains(all, "deploys_node_repo_id") || strings.Contains(all, "SCAN deploys") {
			t.Errorf("the plan of %s walks the history:\n%s", q.sql, all)
		}
	}
}
