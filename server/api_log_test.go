package server_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

const logToken = "log-stream-operator-token-0123456789"

// sseEvent is one server-sent event as a client assembles it.
type sseEvent struct{ id, name, data string }

// sseStream reads the events of GET /api/v1/deploys/:id/log as they come.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent
}

func openLog(t *testing.T, g *gatewaytest.Gateway, id int64, lastID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", g.URL+"/api/v1/deploys/"+itoa(id)+"/log", nil)
	req.Header.Set("Authorization", "Bearer "+logToken)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("log stream answered %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	s := &sseStream{resp: resp, events: make(chan sseEvent, 1024)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					ev.data = strings.Join(data, "\n")
					s.events <- ev
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = append(data, line[6:])
			}
		}
	}()
	return s
}

// until reads events until one satisfies stop (or the stream ends or a deadline passes)
// and returns all read.
func (s *sseStream) until(t *testing.T, what string, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	var got []sseEvent
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("stream ended before %s; got %v", what, got)
			}
			got = append(got, ev)
			if stop(ev) {
				return got
			}
		case <-deadline:
			t.Fatalf("no %s within 30s; got %v", what, got)
		}
	}
}

// pushDeploy sends a push of a new commit to g's site and returns the deploy it queued.
func pushDeploy(t *testing.T, g *gatewaytest.Gateway) int64 {
	t.Helper()
	before := g.Origin["site"].Head()
	after := g.Origin["site"].Commit(map[string]string{"index.html": "v2\n"}, "v2")
	resp, out := g.Send(gatewaytest.Delivery{Body: testkit.Push(t, "refs/heads/main", before, after, gatewaytest.Repository)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push answered %d %v", resp.StatusCode, out)
	}
	return int64(out["deploy_id"].(float64))
}

func outputOf(evs []sseEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		if ev.name == "output" {
			b.WriteString(ev.data)
		}
	}
	return b.String()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestDeployLogStreamsLive: a deploy whose command prints, waits on a file, and prints
// again; its log stream delivers the first output while the deploy still waits, the rest
// once it goes on, then the end with the status; a second watcher resuming from the first
// one's Last-Event-ID gets no byte twice; once finished, the stream is the whole log then
// the end; the commands' environment (printed) holds no secret, nor does the stream.
func TestDeployLogStreamsLive(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "go-on")
	g := gatewaytest.New(t, gatewaytest.Server(`admin_token = "`+logToken+`"`),
		gatewaytest.Repos(gatewaytest.Repo{Commands: []string{
			`echo fir""st-line; env`,
			"while [ ! -f " + gate + " ]; do sleep 0.05; done; echo sec\"\"ond-line",
		}}))
	// Let the deploy end before the gateway stops, whatever the test found.
	t.Cleanup(func() { os.WriteFile(gate, nil, 0o644) })
	id := pushDeploy(t, g)

	live := openLog(t, g, id, "")
	var sofar strings.Builder
	first := live.until(t, "the first output", func(ev sseEvent) bool {
		sofar.WriteString(outputOf([]sseEvent{ev}))
		return strings.Contains(sofar.String(), "\nfirst-line\n")
	})
	if dp, err := g.Store.Deploy(context.Background(), id); err != nil || dp.Status != store.DeployRunning {
		t.Fatalf("deploy %d is %q (%v) when its first output came; want it running", id, dp.Status, err)
	}
	if o := outputOf(first); strings.Contains(o, "\nsecond-line\n") {
		t.Fatalf("second output before the gate opened:\n%s", o)
	}
	lastID := first[len(first)-1].id

	// A second watcher resumes where the first stopped reading.
	resumed := openLog(t, g, id, lastID)
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	isEnd := func(ev sseEvent) bool { return ev.name == "end" }
	rest := live.until(t, "the end", isEnd)
	if end := rest[len(rest)-1]; end.data != store.DeploySucceeded {
		t.Errorf("end event says %q, want %q", end.data, store.DeploySucceeded)
	}
	whole := outputOf(first) + outputOf(rest)
	for _, want := range []string{"\nfirst-line\n", "\nsecond-line\n", "hookgate: deploy succeeded"} {
		if !strings.Contains(whole, want) {
			t.Errorf("stream lacks %q:\n%s", want, whole)
		}
	}
	if got := outputOf(resumed.until(t, "the resumed end", isEnd)); got != outputOf(rest) {
		t.Errorf("resumed from %s, got\n%q\nwant what the first watcher got after it:\n%q", lastID, got, outputOf(rest))
	}

	dp, err := g.Store.Deploy(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if whole != dp.Log {
		t.Errorf("live stream\n%q\ndiffers from the stored log\n%q", whole, dp.Log)
	}
	done := openLog(t, g, id, "").until(t, "the finished deploy's end", isEnd)
	if got := outputOf(done); got != dp.Log {
		t.Errorf("finished deploy's stream\n%q\nwant the stored log\n%q", got, dp.Log)
	}
	if end := done[len(done)-1]; end.data != store.DeploySucceeded {
		t.Errorf("finished deploy's end says %q", end.data)
	}
	for _, secret := range []string{gatewaytest.Secret, logToken} {
		if strings.Contains(whole, secret) {
			t.Errorf("the stream shows a secret %q", secret)
		}
	}
}

// TestDeployLogRefusals: the stream is an operator route like the others, and bad ids and
// offsets get 400, an unknown deploy 404.
func TestDeployLogRefusals(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.Server(`admin_token = "`+logToken+`"`))
	for _, c := range []struct {
		path, token, lastID string
		want                int
	}{
		{"/api/v1/deploys/1/log", "", "", http.StatusUnauthorized},
		{"/api/v1/deploys/1/log", "wrong", "", http.StatusUnauthorized},
		{"/api/v1/deploys/x/log", logToken, "", http.StatusBadRequest},
		{"/api/v1/deploys/999/log", logToken, "", http.StatusNotFound},
		{"/api/v1/deploys/1/log", logToken, "-1", http.StatusBadRequest},
	} {
		req, _ := http.NewRequest("GET", g.URL+c.path, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if c.lastID != "" {
			req.Header.Set("Last-Event-ID", c.lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s (token %q, Last-Event-ID %q) answered %d, want %d", c.path, c.token, c.lastID, resp.StatusCode, c.want)
		}
	}
}

// TestDeployLogStreamEndsOnShutdown: a stream following a deploy that still runs does not
// hold the gateway's HTTP shutdown (which would wait its 10 s and then warn): the stream
// ends as the shutdown starts, and the client resumes later with Last-Event-ID.
func TestDeployLogStreamEndsOnShutdown(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "go-on")
	g := gatewaytest.New(t, gatewaytest.Server(`admin_token = "`+logToken+`"`),
		gatewaytest.Repos(gatewaytest.Repo{Commands: []string{
			"echo waiting; while [ ! -f " + gate + " ]; do sleep 0.05; done",
		}}))
	t.Cleanup(func() { os.WriteFile(gate, nil, 0o644) })
	id := pushDeploy(t, g)
	s := openLog(t, g, id, "")
	var sofar strings.Builder
	s.until(t, "the first output", func(ev sseEvent) bool {
		sofar.WriteString(outputOf([]sseEvent{ev}))
		return strings.Contains(sofar.String(), "\nwaiting\n")
	})
	stopped := make(chan error, 1)
	go func() { stopped <- g.Stop() }()
	testkit.Eventually(t, 30*time.Second, "the stream to end", func() bool {
		select {
		case _, ok := <-s.events:
			return !ok
		default:
			return false
		}
	})
	os.WriteFile(gate, nil, 0o644)
	<-stopped
	if strings.Contains(g.Logs.String(), "http shutdown") {
		t.Errorf("the HTTP shutdown waited for the stream:\n%s", g.Logs.String())
	}
}
