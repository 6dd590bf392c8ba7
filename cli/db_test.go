package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/store"
)

// TestDBCopy: hookgate db copy moves a SQLite history into PostgreSQL with every id, every
// field, payload, log and notification as they were; the next delivery gets a new id; a
// second copy into the same database is refused and changes nothing.
func TestDBCopy(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "hookgate.db")
	src, err := store.Open(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	src.SetNow(func() time.Time { return at })
	record := func(d *store.Delivery) *store.Delivery {
		t.Helper()
		at = at.Add(time.Minute)
		if err := src.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	push := func(repo, guid string) *store.Delivery {
		return &store.Delivery{GUID: guid, Repo: repo, Event: "push", Ref: "refs/heads/main",
			After: "fd489864e7642b48eaad6e3f155c10e46810ec72", Commit: "fd48986", Signature: store.SignatureValid,
			SignatureAlg: "sha256", Status: store.DeliveryAccepted, HTTPStatus: 202,
			Headers: map[string]string{"X-Github-Event": "push"}, Payload: bytes.Repeat([]byte(`{"ref":"refs/heads/main"}`), 40),
			Pusher: "octocat", Message: "Fix the thing\nwith a second line"}
	}
	first := record(push("site", "g-1"))
	dp, err := src.ClaimDeploy(ctx, "site")
	if err != nil {
		t.Fatal(err)
	}
	if err := src.FinishDeploy(ctx, dp.ID, store.Result{Status: store.DeploySucceeded, FromCommit: "a", ToCommit: "b", Log: "build ok\n"}); err != nil {
		t.Fatal(err)
	}
	record(push("site", "g-1")) // a redelivery of a deployed delivery: ignored
	record(&store.Delivery{GUID: "g-bad", Repo: "site", Event: "push", Signature: store.SignatureInvalid,
		Status: store.DeliveryRejected, HTTPStatus: 401, Reason: "signature does not match"})
	replay := push("blog", "")
	replay.ReplayOf = first.ID
	record(replay)
	if _, err := src.SetPin(ctx, "blog", "0123456789abcdef0123456789abcdef01234567", store.PinnedByPin); err != nil {
		t.Fatal(err)
	}
	if err := src.RecordNotification(ctx, &store.Notification{DeployID: dp.ID, Repo: "site", Target: "ops",
		Kind: "slack", Event: "recovery", Status: store.NotificationSent, Attempts: 1, HTTPStatus: 200}); err != nil {
		t.Fatal(err)
	}
	all := store.DeliveryFilter{Page: store.Page{Limit: 100}}
	wantList, err := src.ListDeliveries(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	var want []store.Delivery
	for _, d := range wantList {
		full, err := src.Delivery(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, full)
	}
	wantDeploys, _ := src.ListDeploys(ctx, store.DeployFilter{Page: store.Page{Limit: 100}})
	wantLog, _ := src.Deploy(ctx, dp.ID)
	wantNotes, _ := src.Notifications(ctx, "", 100)
	src.Close()

	url := pgtest.Database(t)
	var out, errOut bytes.Buffer
	if code := Run([]string{"db", "copy", "--from", file, "--to", url}, &out, &errOut); code != 0 {
		t.Fatalf("db copy: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "deliveries         4 rows") {
		t.Errorf("db copy's report:\n%s", out.String())
	}
	dst, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	gotList, err := dst.ListDeliveries(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	if len(gotList) != len(want) {
		t.Fatalf("%d deliveries copied, want %d", len(gotList), len(want))
	}
	for i := range want {
		got, err := dst.Delivery(ctx, want[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("delivery %d:\ncopied %+v\nsource %+v", want[i].ID, got, want[i])
		}
	}
	gotDeploys, _ := dst.ListDeploys(ctx, store.DeployFilter{Page: store.Page{Limit: 100}})
	gotLog, _ := dst.Deploy(ctx, dp.ID)
	gotNotes, _ := dst.Notifications(ctx, "", 100)
	for _, n := range append(gotNotes, wantNotes...) {
		n.CreatedAt, n.FinishedAt = n.CreatedAt.UTC(), n.FinishedAt.UTC()
	}
	if !reflect.DeepEqual(gotDeploys, wantDeploys) || !reflect.DeepEqual(gotLog, wantLog) || len(gotNotes) != 1 ||
		gotNotes[0].Target != "ops" || gotNotes[0].DeployID != dp.ID || !gotNotes[0].CreatedAt.Equal(wantNotes[0].CreatedAt) {
		t.Fatalf("deploys or notifications differ:\n%+v\n%+v\n%+v\n%+v\n%+v\n%+v", gotDeploys, wantDeploys, gotLog, wantLog, gotNotes, wantNotes)
	}
	if pin, err := dst.GetPin(ctx, "blog"); err != nil || pin == nil || pin.Commit != "0123456789abcdef0123456789abcdef01234567" {
		t.Fatalf("blog's pin after the copy: %+v %v", pin, err)
	}
	next := push("site", "after-copy")
	if err := dst.RecordDelivery(ctx, next); err != nil {
		t.Fatal(err)
	}
	if next.ID <= want[0].ID || next.DeployID <= dp.ID+1 {
		t.Fatalf("after the copy a delivery got id %d (deploy %d); the copied ones go up to %d", next.ID, next.DeployID, want[0].ID)
	}

	out.Reset()
	errOut.Reset()
	if code := Run([]string{"db", "copy", "--from", file, "--to", url}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "already holds") {
		t.Fatalf("a second copy: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if n, _ := dst.ListDeliveries(ctx, all); len(n) != len(want)+1 {
		t.Fatalf("the refused copy changed the destination: %d deliveries", len(n))
	}
}
