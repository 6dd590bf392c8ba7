package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/config"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

func TestProviderConfig(t *testing.T) {
	cfg, err := config.Load(writeConfig(t, `
[repos.a]
secret = "x"
path = "/a"
[repos.b]
secret = "x"
path = "/b"
provider = "gitea"
[repos.c]
secret = "x"
path = "/c"
provider = "gitlab"
`))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range cfg.Hooks() {
		got[h.Name] = h.Provider
	}
	if got["a"] != "github" || got["b"] != "gitea" || got["c"] != "gitlab" {
		t.Fatalf("providers %v", got)
	}

	bad := writeConfig(t, "[repos.site]\nsecret = \"x\"\npath = \"/x\"\nprovider = \"bitbucket\"\n")
	if _, err := config.Load(bad); err == nil || !strings.Contains(err.Error(), `repos.site: provider "bitbucket"`) {
		t.Fatalf("unknown provider: %v", err)
	}
	var stdout, stderr bytes.Buffer
	if code := Run([]string{"check", "--config", bad}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), `repos.site: provider "bitbucket"`) {
		t.Fatalf("check with an unknown provider: exit %d, %s", code, stderr.String())
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	logger, err := newLogger(&buf, "json", "warn")
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("hidden")
	logger.Warn("shown", "guid", "g-1", "deploy_id", 7)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q", buf.String())
	}
	if line["msg"] != "shown" || line["level"] != "WARN" || line["guid"] != "g-1" || line["deploy_id"] != 7.0 {
		t.Fatalf("line %v", line)
	}

	buf.Reset()
	logger, _ = newLogger(&buf, "text", "debug")
	logger.Debug("detail", "guid", "g-2")
	if s := buf.String(); !strings.Contains(s, "level=DEBUG") || !strings.Contains(s, "guid=g-2") {
		t.Fatalf("text line %q", s)
	}

	for _, args := range [][]string{{"--log-format", "yaml"}, {"--log-level", "verbose"}} {
		var stdout, stderr bytes.Buffer
		if code := Run(append([]string{"serve"}, args...), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), args[0]) {
			t.Errorf("serve %v: exit %d, %q", args, code, stderr.String())
		}
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Run([]string{"version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	if !strings.HasPrefix(out, "hookgate ") || !strings.Contains(out, "commit ") || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("version output %q", out)
	}

	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want []string
	}{
		{"release with vcs", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-23T10:04:05Z"}, {Key: "vcs.modified", Value: "true"}}},
			[]string{"hookgate v1.4.0\n", "commit 0123abcd (2026-11-23T10:04:05Z, modified)\n", "go1.26.8 "}},
		{"-buildvcs=false", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			[]string{"hookgate (devel)\n", "commit unknown", "go1.26.8 "}},
		{"no build info", nil, []string{"hookgate unknown\n", "commit unknown", runtime.Version()}},
	} {
		got := versionText(tc.bi)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", tc.name, got, w)
			}
		}
	}
}

type countingDeployer struct{}

func (countingDeployer) Notify(string)        {}
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

// TestServeJSONLogsAndSIGHUP runs `hookgate serve --log-format json` in process: every
// line it writes is JSON, a SIGHUP (systemctl reload) reloads the configuration and leaves
// it serving, and SIGTERM stops it cleanly.
func TestServeJSONLogsAndSIGHUP(t *testing.T) {
	origin := testkit.NewOrigin(t)
	checkout := origin.Clone()
	addr := freeAddr(t)
	cfg := writeConfig(t, fmt.Sprintf("[server]\nlisten = %q\ndatabase = %q\nshutdown_timeout = \"5s\"\n[repos.site]\nsecret = \"serve-secret\"\npath = %q\n",
		addr, filepath.Join(t.TempDir(), "hookgate.db"), checkout))
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run([]string{"serve", "--config", cfg, "--log-format", "json", "--log-level", "debug"}, &bytes.Buffer{}, &logs)
	}()
	healthy := func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	testkit.Eventually(t, 30*time.Second, "the gateway to answer /healthz", healthy)
	// The handlers are registered before the listener opens, so the signals are caught.
	syscall.Kill(syscall.Getpid(), syscall.SIGHUP)
	testkit.Eventually(t, 10*time.Second, "the SIGHUP reload to be logged", func() bool {
		return strings.Contains(logs.String(), `"msg":"configuration reloaded"`)
	})
	if !healthy() {
		t.Fatal("the gateway stopped answering after SIGHUP")
	}
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
	}
	if strings.Contains(logs.String(), "serve-secret") {
		t.Fatal("the secret reached the log")
	}
}
