// serve_test.go owns the tests of serve: its logger, its JSON logs and its signals.

package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
)

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
