package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"regexp"
	"testing"
	"time"
)

// TestBatchMatchesPerRowWrites writes the same random batches through the batch path
// (multi-row INSERTs, falling back to a savepoint per delivery when one fails) into one
// database and one delivery at a time (writeEach) into another, and requires the same
// answers, the same Delivery values and the same rows: repeated and empty GUIDs, accepted
// and ignored pushes, missing, compressible and incompressible payloads, rows the schema
// refuses, replays of earlier (and of deleted) deliveries, deploys claimed and finished
// between batches, and the newest rows deleted so that ids are given out again.
func TestBatchMatchesPerRowWrites(t *testing.T) {
	forEachDatabase(t, testBatchMatchesPerRowWrites)
}

func testBatchMatchesPerRowWrites(t *testing.T, newDatabase func() string) {
	for seed := range int64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			batched, perRow := openAt(t, newDatabase()), openAt(t, newDatabase())
			at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
			for _, s := range []*Store{batched, perRow} {
				s.SetNow(func() time.Time { return at })
			}
			rng := rand.New(rand.NewSource(seed))
			var recorded [2][]*Delivery
			ids := idPairs{}
			for round := range 8 {
				var reqs [2][]*writeReq
				for range 2 + rng.Intn(40) {
					d := randomDelivery(rng)
					replay := -1
					if len(recorded[0]) > 0 && rng.Intn(8) == 0 {
						replay = rng.Intn(len(recorded[0]))
					}
					for k, st := range []*Store{batched, perRow} {
						d := *d
						if replay >= 0 {
							d.ReplayOf, d.GUID = recorded[k][replay].ID, ""
						}
						reqs[k] = append(reqs[k], writeReqs(t, st, &d)...)
					}
				}
				errsBatched := batched.batch.write(reqs[0])
				errsPerRow := perRow.batch.writeEach(reqs[1])
				for i := range errsBatched {
					if (errsBatched[i] == nil) != (errsPerRow[i] == nil) {
						t.Fatalf("round %d, delivery %d: error %v batched, %v per row", round, i, errsBatched[i], errsPerRow[i])
					}
					a, b := reqs[0][i].d, reqs[1][i].d
					ac := *a
					if batched.pg {
						// A sequence gives no id twice, even to a rolled-back batch, so
						// the two databases number their rows differently: the ids must
						// correspond one to one instead.
						for _, p := range [][2]*int64{{&ac.ID, &b.ID}, {&ac.DeployID, &b.DeployID}, {&ac.ReplayOf, &b.ReplayOf}} {
							if !ids.match(*p[0], *p[1], p[0] == &ac.DeployID) {
								t.Fatalf("round %d, delivery %d: id %d batched stands for %d per row, elsewhere not", round, i, *p[0], *p[1])
							}
							*p[0] = *p[1]
						}
						ac.Reason = deployInReason.ReplaceAllStringFunc(ac.Reason, func(m string) string {
							var id int64
							fmt.Sscanf(m, "deploy %d", &id)
							return fmt.Sprintf("deploy %d", ids[[2]int64{1, id}])
						})
					}
					if !reflect.DeepEqual(ac, *b) {
						t.Fatalf("round %d, delivery %d:\nbatched %+v\nper row %+v", round, i, ac, *b)
					}
					if errsBatched[i] == nil {
						recorded[0], recorded[1] = append(recorded[0], a), append(recorded[1], b)
					}
				}
				for _, s := range []*Store{batched, perRow} {
					finishDeploys(t, s)
					if round%3 == 2 {
						if _, err := s.wdb.Exec(`DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries ORDER BY id DESC LIMIT 3)`); err != nil {
							t.Fatal(err)
						}
					}
				}
				a, b := dumpRows(t, batched), dumpRows(t, perRow)
				if !reflect.DeepEqual(a, b) {
					for i := range min(len(a), len(b)) {
						if a[i] != b[i] {
							t.Fatalf("round %d: first different row\nbatched %s\nper row %s", round, a[i], b[i])
						}
					}
					t.Fatalf("round %d: %d rows batched, %d per row", round, len(a), len(b))
				}
			}
		})
	}
}

// randomDelivery is a push to one of three repositories with one of 30 GUIDs (or none),
// sometimes ignored, without a payload, with an incompressible one (stored as is), or
// with a status the schema refuses.
func randomDelivery(rng *rand.Rand) *Delivery {
	guid := fmt.Sprintf("guid-%d", rng.Intn(30))
	if rng.Intn(6) == 0 {
		guid = ""
	}
	d := push([]string{"site", "blog", "api"}[rng.Intn(3)], guid)
	switch rng.Intn(5) {
	case 0:
		d.Status, d.HTTPStatus = DeliveryIgnored, 200
	case 1:
		d.Payload = nil
	case 2:
		d.Payload = make([]byte, 40+rng.Intn(40))
		rng.Read(d.Payload)
	}
	if rng.Intn(25) == 0 {
		d.Status = "bogus"
	}
	return d
}

// finishDeploys claims and finishes the queued deploy of each repository, if any.
func finishDeploys(t *testing.T, s *Store) {
	t.Helper()
	for _, repo := range []string{"site", "blog", "api"} {
		dp, err := s.ClaimDeploy(context.Background(), repo)
		if errors.Is(err, ErrNotFound) {
			continue // nothing queued
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishDeploy(context.Background(), dp.ID, Result{Status: DeploySucceeded}); err != nil {
			t.Fatal(err)
		}
	}
}

// dumpRows returns every row of deliveries, delivery_payloads and deploys as text, in key
// order.
func dumpRows(t *testing.T, s *Store) []string {
	t.Helper()
	hex, reason := "hex(payload)", "reason"
	delivery := func(col string) string { return col }
	deploy := delivery
	if s.pg {
		hex = "encode(payload, 'hex')"
		reason = "regexp_replace(reason, 'deploy [0-9]+', 'deploy N')" // compared with ids mapped above
		// Ids as ranks: see the comment on ids in TestBatchMatchesPerRowWrites.
		delivery = func(col string) string {
			return "(SELECT count(*) FROM deliveries x WHERE x.id <= " + col + ")"
		}
		deploy = func(col string) string { return "(SELECT count(*) FROM deploys x WHERE x.id <= " + col + ")" }
	}
	var out []string
	for _, q := range []string{
		`SELECT ` + delivery("d.id") + `, guid, repo, event, ref, status, ` + reason + `, http_status, redelivery, received_at,
			headers, body_size, ` + deploy("d.deploy_id") + `, ` + delivery("d.replay_of") + `, signature
			FROM deliveries d ORDER BY id`,
		`SELECT ` + delivery("delivery_id") + `, encoding, ` + hex + ` FROM delivery_payloads ORDER BY delivery_id`,
		`SELECT ` + deploy("d.id") + `, repo, status, triggered_by, ref FROM deploys d ORDER BY id`,
	} {
		rows, err := s.rdb.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(vals...))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

var deployInReason = regexp.MustCompile(`deploy [0-9]+`)

// idPairs pairs the ids of one database with those of another, deliveries and deploys
// apart.
type idPairs map[[2]int64]int64

// match records that a (of a delivery, or of a deploy) stands for b, and reports whether
// that agrees with every pair recorded before.
func (p idPairs) match(a, b int64, deploy bool) bool {
	kind := int64(0)
	if deploy {
		kind = 1
	}
	if a == 0 || b == 0 {
		return a == b
	}
	if got, ok := p[[2]int64{kind, a}]; ok {
		return got == b
	}
	if got, ok := p[[2]int64{kind + 2, b}]; ok {
		return got == a
	}
	p[[2]int64{kind, a}], p[[2]int64{kind + 2, b}] = b, a
	return true
}
