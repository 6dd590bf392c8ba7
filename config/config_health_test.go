package config

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/repos"
)

const healthRepo = "[repos.site]\nsecret = \"x\"\npath = \"/x\"\n[repos.site.health]\n"

func TestHealthDefaultsReachTheWorkers(t *testing.T) {
	cfg, err := Load(writeConfig(t, healthRepo+"url = \"http://127.0.0.1:3000/healthz\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.DeployedRepoList()[0].Health
	want := repos.Health{URL: "http://127.0.0.1:3000/healthz", ProbeTimeout: 5 * time.Second, Interval: 2 * time.Second,
		Deadline: 60 * time.Second, HealthyAfter: 1, OnFailure: "rollback"}
	if h == nil || h.URL != want.URL || h.ProbeTimeout != want.ProbeTimeout || h.StartDelay != 0 || h.Interval != want.Interval ||
		h.Deadline != want.Deadline || h.HealthyAfter != 1 || h.OnFailure != "rollback" || len(h.ExpectStatus) != 0 {
		t.Fatalf("health defaults: %+v", h)
	}
	cfg, err = Load(writeConfig(t, healthRepo+"command = \"./bin/check\"\ninterval = \"100ms\"\nstart_delay = \"1s\"\nhealthy_after = 3\non_failure = \"fail\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	h = cfg.DeployedRepoList()[0].Health
	if h.Command != "./bin/check" || h.Interval != 100*time.Millisecond || h.StartDelay != time.Second || h.HealthyAfter != 3 || h.OnFailure != "fail" {
		t.Fatalf("health values: %+v", h)
	}
	cfg, err = Load(writeConfig(t, "[repos.site]\nsecret = \"x\"\npath = \"/x\"\n"))
	if err != nil || cfg.DeployedRepoList()[0].Health != nil {
		t.Fatalf("no [health] table must mean no check: %v", err)
	}
}

func TestHealthConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"neither", "", []string{"repos.site.health: set url"}},
		{"both", "url = \"http://a/\"\ncommand = \"true\"\n", []string{"repos.site.health: set url or command, not both"}},
		{"bad scheme", "url = \"ftp://a/x\"\n", []string{"repos.site.health.url:", "not an http or https URL"}},
		{"no host", "url = \"http:///x\"\n", []string{"repos.site.health.url:"}},
		{"bad status", "url = \"http://a/\"\nexpect_status = [200, 42]\n", []string{"repos.site.health.expect_status[1]: 42"}},
		{"status for a command", "command = \"true\"\nexpect_status = [200]\n", []string{"apply to url only"}},
		{"bad interval", "url = \"http://a/\"\ninterval = \"soon\"\n", []string{"repos.site.health.interval:", "soon"}},
		{"zero timeout", "url = \"http://a/\"\nprobe_timeout = \"0s\"\n", []string{"repos.site.health.probe_timeout:"}},
		{"bad deadline", "url = \"http://a/\"\ndeadline = \"-1s\"\n", []string{"repos.site.health.deadline:"}},
		{"delay past deadline", "url = \"http://a/\"\nstart_delay = \"2m\"\n", []string{"repos.site.health.start_delay:", "deadline"}},
		{"healthy_after 0", "url = \"http://a/\"\nhealthy_after = 0\n", []string{"repos.site.health.healthy_after: 0"}},
		{"on_failure", "url = \"http://a/\"\non_failure = \"retry\"\n", []string{"repos.site.health.on_failure:", "retry"}},
		{"unknown key", "url = \"http://a/\"\ntimeout = \"5s\"\n", []string{`unknown key "repos.site.health.timeout"`, "line 6"}},
		{"host", "url = \"http://a/\"\nhost = \"a b\"\n", []string{"repos.site.health.host:"}},
	} {
		t.Run(tc.name, func(t *testing.T) { assertConfigError(t, healthRepo+tc.body, tc.want) })
	}
}
