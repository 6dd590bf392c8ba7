// send_test.go owns the test of send.

package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/config"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

type countingDeployer struct{}

func (countingDeployer) Notify(string) {}

func (countingDeployer) Running(string) int64 { return 0 }

// TestSendSignsForEachForge: `hookgate send` signs the way the hook's forge does, so a
// Gitea or GitLab hook accepts it.
func TestSendSignsForEachForge(t *testing.T) {
	origin := testkit.NewOrigin(t)
	checkout := origin.Clone()
	head := origin.Commit(map[string]string{"s.txt": "s\n"}, "send")
	for _, provider := range server.Providers() {
		t.Run(provider, func(t *testing.T) {
			st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hookgate.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			srv, err := server.New(server.Options{MaxBody: 1 << 20, Hooks: []server.Hook{{
				Name: "site", Secret: []byte("send-secret"), Branch: "main", Provider: provider, Path: checkout,
			}}}, st, countingDeployer{})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(srv.Handler())
			defer ts.Close()
			cfg := writeConfig(t, fmt.Sprintf("[repos.site]\nsecret = \"send-secret\"\npath = %q\nprovider = %q\n", checkout, provider))
			var stdout, stderr bytes.Buffer
			if code := Run([]string{"send", "site", "--url", ts.URL + "/hooks/site", "--config", cfg}, &stdout, &stderr); code != 0 ||
				!strings.Contains(stdout.String(), "202 Accepted") {
				t.Fatalf("send: exit %d\n%s%s", code, stdout.String(), stderr.String())
			}
			page, err := st.ListDeliveries(context.Background(), store.DeliveryFilter{Page: store.Page{Limit: 1}})
			if err != nil || len(page) != 1 || page[0].After != head || page[0].Event != "push" || page[0].GUID == "" {
				t.Fatalf("recorded %+v %v", page, err)
			}
		})
	}
}

// sendServer is the real router of the hooks cfg names, on a SQLite store of its own,
// for send to deliver to.
func sendServer(t *testing.T, cfg string) (*store.Store, *httptest.Server) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hookgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	loaded, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{MaxBody: 1 << 20, Hooks: loaded.Hooks()}, st, countingDeployer{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return st, ts
}

// TestSendTagThroughASharedHook: `hookgate send shop --ref refs/tags/v1.2.0` signs with
// [hooks.shop]'s secret and pushes the tag (an annotated tag: the commit it points to is
// what the delivery records), which the tag target queues and the branch target ignores;
// for GitLab it is a tag_push.
func TestSendTagThroughASharedHook(t *testing.T) {
	origin := testkit.NewOrigin(t)
	checkout := origin.Clone()
	head := origin.Commit(map[string]string{"s.txt": "s\n"}, "release")
	testkit.Git(t, origin.Seed, "tag", "-a", "-m", "v1.2.0", "v1.2.0")
	testkit.Git(t, origin.Seed, "push", "-q", "origin", "v1.2.0")
	for _, provider := range []string{"github", "gitlab"} {
		t.Run(provider, func(t *testing.T) {
			cfg := writeConfig(t, fmt.Sprintf("[hooks.shop]\nsecret = \"send-secret\"\nprovider = %q\n"+
				"[repos.prod]\nhook = \"shop\"\npath = %q\ntags = \"v*\"\n[repos.staging]\nhook = \"shop\"\npath = %q\nbranch = \"develop\"\n",
				provider, checkout, checkout+"-staging"))
			st, ts := sendServer(t, cfg)
			var stdout, stderr bytes.Buffer
			if code := Run([]string{"send", "shop", "--ref", "refs/tags/v1.2.0", "--url", ts.URL + "/hooks/shop", "--config", cfg}, &stdout, &stderr); code != 0 ||
				!strings.Contains(stdout.String(), "202 Accepted") || !strings.Contains(stdout.String(), `"repo":"prod","status":"queued"`) {
				t.Fatalf("send: exit %d\n%s%s", code, stdout.String(), stderr.String())
			}
			page, err := st.ListDeliveries(context.Background(), store.DeliveryFilter{Page: store.Page{Limit: 1}})
			if err != nil || len(page) != 1 || page[0].Ref != "refs/tags/v1.2.0" || page[0].After != head || page[0].Hook != "shop" {
				t.Fatalf("recorded %+v %v", page, err)
			}
		})
	}
}

// TestSendTagTargetWithoutRef: `hookgate send prod` for a tag target (tags v*) without
// --ref pushes origin's newest matching tag, by semantic version (v1.10.0 above v1.9.0),
// says so, and the target queues it; with no matching tag on origin it sends nothing
// and says what to do.
func TestSendTagTargetWithoutRef(t *testing.T) {
	origin := testkit.NewOrigin(t)
	checkout := origin.Clone()
	newest := origin.Commit(map[string]string{"s.txt": "10\n"}, "release 1.10")
	origin.AnnotatedTag("v1.10.0", newest, "1.10")
	origin.Tag("v1.9.0", origin.Commit(map[string]string{"s.txt": "9\n"}, "release 1.9"))
	cfg := writeConfig(t, fmt.Sprintf("[repos.prod]\nsecret = \"send-secret\"\npath = %q\ntags = \"v*\"\n"+
		"[repos.rc]\nsecret = \"send-secret\"\npath = %q\ntags = \"rc-*\"\n", checkout, origin.Clone()))
	st, ts := sendServer(t, cfg)

	var stdout, stderr bytes.Buffer
	if code := Run([]string{"send", "prod", "--url", ts.URL + "/hooks/prod", "--config", cfg}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), `prod deploys tags matching "v*": sending a push of origin's newest, refs/tags/v1.10.0`) ||
		!strings.Contains(stdout.String(), "202 Accepted") {
		t.Fatalf("send prod: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	page, err := st.ListDeliveries(context.Background(), store.DeliveryFilter{Page: store.Page{Limit: 1}})
	if err != nil || len(page) != 1 || page[0].Ref != "refs/tags/v1.10.0" || page[0].After != newest || page[0].DeployID == 0 {
		t.Fatalf("recorded %+v %v; want a queued push of refs/tags/v1.10.0 at %s", page, err, newest)
	}

	stdout.Reset()
	if code := Run([]string{"send", "rc", "--url", ts.URL + "/hooks/rc", "--config", cfg}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), `hookgate send: rc deploys tags matching "rc-*" and origin has none: push one, or give --ref refs/tags/TAG`) {
		t.Fatalf("send rc (no matching tag): exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if n, _ := st.ListDeliveries(context.Background(), store.DeliveryFilter{Page: store.Page{Limit: 5}}); len(n) != 1 {
		t.Fatalf("send rc sent a delivery: %d recorded", len(n))
	}
}
