package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// scrape fetches /metrics and returns each sample ("name{labels}" as written) with its value.
func (g *gateway) scrape(set func(*http.Request)) (int, map[string]float64) {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.url+"/metrics", nil)
	if set != nil {
		set(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			g.t.Fatalf("metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return resp.StatusCode, samples
}

// TestMetrics: after a deploy, rejected deliveries and an unknown hook, /metrics shows each
// series with its value.
func TestMetrics(t *testing.T) {
	g, _ := observedGateway(t, true)
	before := testkit.CheckoutHead(t, g.checkout)
	after := g.origin.Commit(map[string]string{"m.txt": "m\n"}, "metrics")
	good := testkit.Push(t, "refs/heads/main", before, after, "binkkatal/sample_app")

	resp, out := g.send(delivery{event: "push", guid: "m-accepted", body: good})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d %v", resp.StatusCode, out)
	}
	dp := g.waitDeploy(id(out["deploy_id"]))
	if dp.Status != store.DeploySucceeded {
		t.Fatalf("deploy %s: %s", dp.Status, dp.Error)
	}
	for _, d := range []delivery{
		{event: "push", guid: "m-invalid", body: good, headers: map[string]string{"X-Hub-Signature-256": forge.Sign(good, []byte("guess"))}},
		{event: "push", guid: "m-missing", body: good, headers: map[string]string{"X-Hub-Signature-256": ""}},
		{event: "x-made-up-event-" + strings.Repeat("z", 20), guid: "m-label", body: good, headers: map[string]string{"X-Hub-Signature-256": ""}},
		{event: "ping", guid: "m-ping", body: testkit.Payload(t, "github/ping.json")},
	} {
		g.send(d)
	}
	g.send(delivery{path: "/hooks/nope", event: "push", body: good})

	// The deploy is recorded before it is observed: wait for the counter, not for time.
	var m map[string]float64
	testkit.Eventually(t, 10*time.Second, "the deploy to be counted", func() bool {
		_, m = g.scrape(nil)
		return m[`hookgate_deploys_total{repo="site",status="succeeded"}`] == 1
	})
	for series, want := range map[string]float64{
		`hookgate_deliveries_total{event="push",outcome="accepted",repo="site"}`:  1,
		`hookgate_deliveries_total{event="push",outcome="rejected",repo="site"}`:  2,
		`hookgate_deliveries_total{event="other",outcome="rejected",repo="site"}`: 1,
		`hookgate_deliveries_total{event="ping",outcome="ignored",repo="site"}`:   1,
		`hookgate_signature_failures_total{reason="invalid",repo="site"}`:         1,
		`hookgate_signature_failures_total{reason="missing",repo="site"}`:         2,
		`hookgate_unknown_hook_requests_total`:                                    1,
		`hookgate_deploys_total{repo="site",status="succeeded"}`:                  1,
		`hookgate_deploys_total{repo="site",status="failed"}`:                     0,
		`hookgate_deploys_total{repo="site",status="skipped"}`:                    0,
		`hookgate_deploy_duration_seconds_count{repo="site"}`:                     1,
		`hookgate_deploy_queue_depth{repo="site"}`:                                0,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if d := m[`hookgate_deploy_duration_seconds_sum{repo="site"}`]; d <= 0 || d > 60 {
		t.Errorf("deploy duration sum %v", d)
	}
	dp, err := g.store.Deploy(context.Background(), dp.ID)
	if err != nil {
		t.Fatal(err)
	}
	ts := m[`hookgate_last_successful_deploy_timestamp_seconds{repo="site"}`]
	if want := float64(dp.FinishedAt.UnixNano()) / 1e9; math.Abs(ts-want) > 0.001 {
		t.Errorf("last successful deploy at %v, want %v (the deploy's finish)", ts, want)
	}
	if _, ok := m[`go_goroutines`]; !ok {
		t.Error("no Go runtime metrics")
	}
	for k := range m {
		if strings.Contains(k, "made-up") {
			t.Errorf("a sender-chosen event name became a label: %s", k)
		}
	}
}

// TestMetricsQueueDepthAndRateLimited: deliveries waiting in a queued deploy are the queue
// depth; rejections past the limit count as rate_limited.
func TestMetricsQueueDepthAndRateLimited(t *testing.T) {
	g, _ := observedGateway(t, false) // no workers: the deploy stays queued
	before := testkit.CheckoutHead(t, g.checkout)
	for i, msg := range []string{"one", "two", "three"} {
		after := g.origin.Commit(map[string]string{"q.txt": msg + "\n"}, msg)
		if resp, out := g.send(delivery{event: "push", guid: "q" + strconv.Itoa(i), body: testkit.Push(t, "refs/heads/main", before, after, "binkkatal/sample_app")}); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("push %d: %d %v", i, resp.StatusCode, out)
		}
	}
	limited := 0
	for i := 0; i < 40 && limited < 2; i++ {
		if resp, _ := g.send(delivery{event: "push", guid: "flood", body: []byte("{}"), headers: map[string]string{"X-Hub-Signature-256": ""}}); resp.StatusCode == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited != 2 {
		t.Fatalf("never rate limited")
	}
	_, m := g.scrape(nil)
	for series, want := range map[string]float64{
		`hookgate_deploy_queue_depth{repo="site"}`:                                   3,
		`hookgate_deliveries_total{event="push",outcome="accepted",repo="site"}`:     3,
		`hookgate_deliveries_total{event="push",outcome="rate_limited",repo="site"}`: 2,
		`hookgate_signature_failures_total{reason="missing",repo="site"}`:            m[`hookgate_deliveries_total{event="push",outcome="rejected",repo="site"}`] + 2,
	} {
		if got := m[series]; got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if _, ok := m[`hookgate_last_successful_deploy_timestamp_seconds{repo="site"}`]; ok {
		t.Error("a last successful deploy time without any deploy")
	}
}

// TestMetricsAccess: /metrics is for operators, like the API.
func TestMetricsAccess(t *testing.T) {
	t.Run("with admin token", func(t *testing.T) {
		g, _ := observedGateway(t, false, func(o *server.Options) { o.AdminToken = adminToken })
		for name, set := range map[string]func(*http.Request){
			"none":         nil,
			"wrong bearer": func(q *http.Request) { q.Header.Set("Authorization", "Bearer wrong") },
			"basic":        func(q *http.Request) { q.SetBasicAuth("admin", adminToken) },
		} {
			if code, _ := g.scrape(set); code != http.StatusUnauthorized {
				t.Errorf("%s: %d, want 401", name, code)
			}
		}
		if code, m := g.scrape(func(q *http.Request) { q.Header.Set("Authorization", "Bearer "+adminToken) }); code != 200 || len(m) == 0 {
			t.Errorf("with the token: %d", code)
		}
	})
	t.Run("without admin token", func(t *testing.T) {
		g, _ := observedGateway(t, false)
		if code, _ := g.scrape(nil); code != http.StatusOK {
			t.Errorf("from loopback: %d, want 200", code)
		}
		// A request a proxy forwards for someone else is not a loopback client.
		if code, _ := g.scrape(func(q *http.Request) { q.Header.Set("X-Forwarded-For", "203.0.113.7") }); code != http.StatusForbidden {
			t.Errorf("forwarded: %d, want 403", code)
		}
	})
}

// TestJSONLogLines: with a JSON handler every delivery and every deploy is one line that
// parses, names the delivery GUID and the deploy id, and carries no secret.
func TestJSONLogLines(t *testing.T) {
	g, logs := observedGateway(t, true)
	before := testkit.CheckoutHead(t, g.checkout)
	after := g.origin.Commit(map[string]string{"l.txt": "l\n"}, "logs")
	body := testkit.Push(t, "refs/heads/main", before, after, "binkkatal/sample_app")
	const guid = "5f2e1d0c-json-log"
	resp, out := g.send(delivery{event: "push", guid: guid, body: body})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d %v", resp.StatusCode, out)
	}
	deployID := id(out["deploy_id"])
	g.waitDeploy(deployID)
	g.send(delivery{event: "push", guid: "bad-sig", body: body, headers: map[string]string{"X-Hub-Signature-256": forge.Sign(body, []byte("guess"))}})

	find := func(msg, guid string) map[string]any {
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line is not JSON: %q", line)
			}
			if rec["msg"] == msg && (guid == "" || rec["guid"] == guid || rec["delivery"] == guid) {
				return rec
			}
		}
		return nil
	}
	var finished map[string]any
	testkit.Eventually(t, 10*time.Second, "the deploy finished line", func() bool {
		finished = find("deploy finished", guid)
		return finished != nil
	})
	accepted := find("delivery", guid)
	if accepted == nil || id(accepted["deploy_id"]) != deployID || accepted["status"] != store.DeliveryAccepted ||
		accepted["level"] != "INFO" || accepted["provider"] != "github" || id(accepted["id"]) != id(out["delivery_id"]) {
		t.Fatalf("delivery line: %v", accepted)
	}
	if id(finished["deploy_id"]) != deployID || finished["status"] != store.DeploySucceeded || finished["repo"] != "site" {
		t.Fatalf("deploy line: %v", finished)
	}
	if rejected := find("delivery", "bad-sig"); rejected == nil || rejected["signature"] != store.SignatureInvalid || id(rejected["deploy_id"]) != 0 {
		t.Fatalf("rejected delivery line: %v", rejected)
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("the secret reached the log")
	}
}

// TestMetricsCountASkippedDeployOutsideTheDurations: a skipped deploy (paths) counts under
// status "skipped" and leaves the deploy duration histogram alone: it ran no update and
// no command, so it would pull the deploy times down.
func TestMetricsCountASkippedDeployOutsideTheDurations(t *testing.T) {
	g, _ := observedGateway(t, false)
	g.srv.ObserveDeploy("site", store.DeploySkipped, 3*time.Second)
	_, m := g.scrape(nil)
	if got := m[`hookgate_deploys_total{repo="site",status="skipped"}`]; got != 1 {
		t.Errorf("skipped deploys = %v, want 1", got)
	}
	if got := m[`hookgate_deploy_duration_seconds_count{repo="site"}`]; got != 0 {
		t.Errorf("deploy durations observed = %v, want 0", got)
	}
}
