// helpers_test.go owns what the server package's tests share: the test gateway (built
// through internal/gatewaytest), its constructors and the requests every test makes of it.

package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/forge"
	hookgateway "github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/repos"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

const (
	secret  = "It's a Secret to Everybody"
	maxBody = 64 << 10
)

// gateway is the real thing in one process: a SQLite file, a git origin and checkout, the
// deploy workers and the Gin router behind real HTTP.
type gateway struct {
	t        *testing.T
	store    *store.Store
	database string // the store's database, for a second store on it (another node)
	origin   *testkit.Origin
	checkout string
	url      string
	mgr      *repos.Manager
	srv      *server.Server
}

// testNode is the node ([server] node) the test gateway's store records on its deploys.
const testNode = "gw-test"

func newGateway(t *testing.T, configure ...func(*server.Options)) *gateway {
	t.Helper()
	g := newIdleGateway(t, configure...)
	g.mgr.Start()
	return g
}

// newIdleGateway is newGateway with its deploy workers not started: a deploy queued stays
// queued, so a test can set up the queue exactly; g.mgr.Start() starts them.
func newIdleGateway(t *testing.T, configure ...func(*server.Options)) *gateway {
	t.Helper()
	return startGateway(t, nil, nil, configure...)
}

// startGateway builds the test gateway through gatewaytest.New: its workers not started
// (Manual), its node not registered, logging to logger (nil: nowhere), its server given the
// options a test gateway had when the tests wired it by hand, then configure's; more adds
// gatewaytest options.
func startGateway(t *testing.T, logger *slog.Logger, more []gatewaytest.Option, configure ...func(*server.Options)) *gateway {
	t.Helper()
	return gatewayOf(t, startTestGateway(t, logger, more, configure...), "site")
}

// startTestGateway is startGateway's gatewaytest.Gateway, for the tests that configure
// several repositories.
func startTestGateway(t testing.TB, logger *slog.Logger, more []gatewaytest.Option, configure ...func(*server.Options)) *gatewaytest.Gateway {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	opts := []gatewaytest.Option{gatewaytest.Manual(), gatewaytest.Node(testNode),
		gatewaytest.Options(func(o *hookgateway.Options) {
			o.Unregistered = true
			o.Logger = logger
			o.Server = func(so *server.Options) {
				*so = server.Options{Hooks: so.Hooks, MaxBody: maxBody, Logger: logger}
				for _, f := range configure {
					f(so)
				}
			}
		})}
	if strings.HasPrefix(t.Name(), "TestOnPostgres/") {
		opts = append(opts, gatewaytest.Postgres())
	}
	return gatewaytest.New(t, append(opts, more...)...)
}

// gatewayOf is gw as the tests' gateway, its origin and checkout repository name's.
func gatewayOf(t *testing.T, gw *gatewaytest.Gateway, name string) *gateway {
	return &gateway{t: t, store: gw.Store, database: gw.Database, origin: gw.Origin[name], checkout: gw.Checkout[name],
		url: gw.URL, mgr: gw.G.Manager(), srv: gw.G.Server()}
}

type delivery struct {
	path    string
	method  string
	event   string
	guid    string
	ctype   string
	body    []byte
	headers map[string]string // set as given; "" deletes
}

func (g *gateway) send(d delivery) (*http.Response, map[string]any) {
	g.t.Helper()
	if d.method == "" {
		d.method = http.MethodPost
	}
	if d.path == "" {
		d.path = "/hooks/site"
	}
	if d.ctype == "" {
		d.ctype = "application/json"
	}
	req, err := http.NewRequest(d.method, g.url+d.path, bytes.NewReader(d.body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", d.ctype)
	req.Header.Set("User-Agent", "GitHub-Hookshot/test")
	forge.SetDeliveryHeaders(req.Header, forge.ProviderGitHub, d.event, d.guid, d.body, []byte(secret))
	for k, v := range d.headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return g.do(req)
}

// do sends req and decodes the JSON answer, which every hook answer is.
func (g *gateway) do(req *http.Request) (*http.Response, map[string]any) {
	g.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			g.t.Fatalf("response is not JSON: %q", raw)
		}
	}
	return resp, out
}

func (g *gateway) waitDeploy(id int64) store.Deploy {
	g.t.Helper()
	var dp store.Deploy
	testkit.Eventually(g.t, 30*time.Second, "deploy to finish", func() bool {
		var err error
		dp, err = g.store.Deploy(context.Background(), id)
		if err != nil {
			g.t.Fatal(err)
		}
		return dp.Status != store.DeployQueued && dp.Status != store.DeployRunning && dp.Status != store.DeployVerifying
	})
	return dp
}

func id(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// lockedBuffer is a log destination the test can read while workers write to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// forgeGateway is the real gateway with its one hook ("site") set to provider, naming the
// repository of that forge's test payload; the server's log goes to the returned buffer.
func forgeGateway(t *testing.T, provider, fullName string) (*gateway, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	g := startGateway(t, nil, []gatewaytest.Option{gatewaytest.Repos(gatewaytest.Repo{Provider: provider, Repository: fullName})},
		func(o *server.Options) { o.Logger = slog.New(slog.NewJSONHandler(logs, nil)) })
	g.mgr.Start()
	return g, logs
}

// observedGateway is newGateway wired the way main wires it: the deploy workers report
// finished deploys to the server's metrics, and server and workers log JSON to one buffer.
// With start false the workers never run, so accepted deliveries stay queued.
func observedGateway(t *testing.T, start bool, configure ...func(*server.Options)) (*gateway, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g := startGateway(t, logger, []gatewaytest.Option{gatewaytest.Workers(1)}, configure...)
	if start {
		g.mgr.Start()
	}
	return g, logs
}
