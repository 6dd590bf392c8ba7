package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
)

// BenchmarkWrite records signed 7 KB push deliveries (the real GitHub payload, stored as
// the gateway stores it) from 64 goroutines, two ways:
//
//   - tx-per-delivery: each delivery in its own transaction, one after the other on the
//     write connection, as a store without group commit would;
//   - group-commit: through RecordDelivery, where the deliveries waiting at the same moment
//     share one transaction.
//
// Both answer only once the delivery is committed.
//
//	go test -run '^$' -bench Write -benchtime 5s -count 3 ./store/
func BenchmarkWrite(b *testing.B) {
	payload := testkit.Push(b, "refs/heads/main", strings.Repeat("0", 39)+"1",
		"1f9c2a3b4d5e6f708192a3b4c5d6e7f8091a2b3c", "acme/app")
	for _, bc := range []struct {
		name  string
		write func(s *Store, d *Delivery) error
	}{
		{"tx-per-delivery", func(s *Store, d *Delivery) error {
			d.ReceivedAt = s.now()
			r, err := newWriteReq(d)
			if err != nil {
				return err
			}
			return s.batch.write([]*writeReq{r})[0]
		}},
		{"group-commit", func(s *Store, d *Delivery) error {
			return s.RecordDelivery(context.Background(), d)
		}},
	} {
		for _, status := range []string{DeliveryAccepted, DeliveryIgnored} {
			b.Run(bc.name+"/"+status, func(b *testing.B) {
				s, err := Open(context.Background(), filepath.Join(b.TempDir(), "hookgate.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var seq atomic.Int64
				b.SetParallelism(32) // × GOMAXPROCS (2 here): 64 writers
				b.SetBytes(int64(len(payload)))
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						d := benchPush(payload, status, seq.Add(1))
						if err := bc.write(s, d); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
			})
		}
	}
}

// benchPush is a delivery as the hook handler records a GitHub push.
func benchPush(payload []byte, status string, n int64) *Delivery {
	d := &Delivery{
		GUID: fmt.Sprintf("0b5e1dad-%04x-4%03x-8%03x-%012x", n>>40&0xffff, n>>28&0xfff, n>>16&0xfff, n&0xffffffffffff),
		Repo: "bench", Event: "push", Ref: "refs/heads/main",
		Before: strings.Repeat("0", 39) + "1", After: "1f9c2a3b4d5e6f708192a3b4c5d6e7f8091a2b3c", Commit: "1f9c2a3",
		Signature: SignatureValid, SignatureAlg: "sha256", Status: status, HTTPStatus: 202,
		Reason: "queued for deploy", RemoteAddr: "140.82.115.1", UserAgent: "GitHub-Hookshot/7b6c1ad",
		ContentType: "application/json", BodySize: int64(len(payload)),
		Headers: map[string]string{
			"Accept": "*/*", "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/7b6c1ad",
			"X-Github-Event": "push", "X-Github-Hook-Id": "492039781",
			"X-Github-Hook-Installation-Target-Id": "719385402", "X-Github-Hook-Installation-Target-Type": "repository",
			"X-Hub-Signature-256": "sha256=" + strings.Repeat("ab", 32),
		},
		FullName: "acme/app", RepoURL: "https://github.com/acme/app", Pusher: "octocat",
		Message: "Fix the thing", Payload: payload,
	}
	if status == DeliveryIgnored {
		d.Ref, d.HTTPStatus, d.Reason = "refs/heads/feature", 200, "push to refs/heads/feature; this hook deploys refs/heads/main"
	}
	return d
}

// BenchmarkWriteBatch measures the one writer's own cost per delivery: batches of 32 signed
// 7 KB pushes (the batch size the group commit reaches under the load test's 64
// connections) written one after the other from one goroutine, each batch one transaction
// as the group commit writes it. Nothing else competes for the writer, so the figure is
// the serial cost that bounds ingest, apart from what the HTTP side costs.
//
//	go test -run '^$' -bench WriteBatch -benchtime 20000x -count 5 ./store/
func BenchmarkWriteBatch(b *testing.B) {
	payload := testkit.Push(b, "refs/heads/main", strings.Repeat("0", 39)+"1",
		"1f9c2a3b4d5e6f708192a3b4c5d6e7f8091a2b3c", "acme/app")
	for _, status := range []string{DeliveryAccepted, DeliveryIgnored} {
		b.Run(status, func(b *testing.B) {
			s, err := Open(context.Background(), filepath.Join(b.TempDir(), "hookgate.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const size = 32
			var seq int64
			batch := make([]*writeReq, 0, size)
			flush := func() {
				for i, err := range s.batch.write(batch) {
					if err != nil {
						b.Fatalf("delivery %d: %v", i, err)
					}
				}
				batch = batch[:0]
			}
			b.SetBytes(int64(len(payload)))
			b.ResetTimer()
			cpu0 := cpuTime(b)
			for range b.N {
				seq++
				d := benchPush(payload, status, seq)
				d.ReceivedAt = s.now()
				r, err := newWriteReq(d)
				if err != nil {
					b.Fatal(err)
				}
				batch = append(batch, r)
				if len(batch) == size {
					flush()
				}
			}
			if len(batch) > 0 {
				flush()
			}
			// CPU time (user and system, the whole process) moves less than wall time
			// when other work shares the machine.
			b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
