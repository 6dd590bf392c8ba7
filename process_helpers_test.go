// process_helpers_test.go owns what the tests that run the built binary share: building it,
// starting and stopping `hookgate serve`, signed deliveries to it, its API and a receiver
// of its notifications.

package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/notify"
)

// buildBinary builds hookgate once per test run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "hookgate-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "hookgate")
	// go test puts its own toolchain's bin first in PATH, so this is the go running the tests.
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// The gateway's test helpers, under the names these tests have always used.
var (
	freeAddr = gatewaytest.FreeAddr
	newGUID  = gatewaytest.NewGUID
	deliver  = gatewaytest.Deliver
	api      = gatewaytest.API
)

type (
	syncBuffer = gatewaytest.SyncBuffer
	hookAnswer = gatewaytest.HookAnswer
)

// gatewayProc is the built binary running `serve` on a config.
type gatewayProc struct {
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan error
	addr   string
}

// startGateway runs `hookgate serve` and waits until /healthz answers.
func startGateway(t *testing.T, bin, cfgPath, addr string, env ...string) *gatewayProc {
	t.Helper()
	return startGatewayAs(t, bin, cfgPath, addr, nil, env...)
}

// startGatewayAs is startGateway with the gateway running as cred's user (nil: ours).
func startGatewayAs(t *testing.T, bin, cfgPath, addr string, cred *syscall.Credential, env ...string) *gatewayProc {
	t.Helper()
	g := &gatewayProc{logs: &syncBuffer{}, exited: make(chan error, 1), addr: addr}
	g.cmd = exec.Command(bin, "serve", "--config", cfgPath)
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	g.cmd.Env = append(os.Environ(), env...)
	if cred != nil {
		g.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.exited <- g.cmd.Wait() }()
	t.Cleanup(func() {
		g.cmd.Process.Kill()
		err := <-g.exited
		g.exited <- err
	})
	testkit.Eventually(t, 30*time.Second, "the gateway to answer /healthz", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return g
}

// stop sends sig and waits for the process to end.
func (g *gatewayProc) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := g.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-g.exited:
		g.exited <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("gateway did not end within 30s of %v\n%s", sig, g.logs.String())
		return nil
	}
}

func short(hash string) string {
	if len(hash) > 7 {
		return hash[:7]
	}
	return hash
}

// receiver is a real HTTP endpoint on loopback that keeps the notifications it is sent.
type receiver struct {
	mu   sync.Mutex
	got  []notify.Message
	bad  []string // why a request was refused
	hits chan struct{}
}

func newReceiver(t *testing.T, secret []byte) (*receiver, string) {
	r := &receiver{hits: make(chan struct{}, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if !hmac.Equal([]byte(req.Header.Get("X-Hookgate-Signature-256")), []byte(notify.Sign(body, secret))) {
			r.bad = append(r.bad, "bad signature")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m notify.Message
		if err := json.Unmarshal(body, &m); err != nil {
			r.bad = append(r.bad, err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.got = append(r.got, m)
		r.hits <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL + "/deploys"
}

// next waits for the next notification.
func (r *receiver) next(t *testing.T) notify.Message {
	t.Helper()
	select {
	case <-r.hits:
	case <-time.After(30 * time.Second):
		r.mu.Lock()
		defer r.mu.Unlock()
		t.Fatalf("no notification within 30s (refused: %v)", r.bad)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[len(r.got)-1]
}

func randomHex(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// runCLI runs the built binary and returns its exit code and output.
func runCLI(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}
