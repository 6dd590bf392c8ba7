package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/notify"
)

const notifyRepo = "[repos.site]\nsecret = \"x\"\npath = \"/x\"\n"

// TestNotifyConfig: [[notify]] and [[repos.NAME.notify]] resolve into the notifier's
// targets, URLs and secrets read from the environment when asked.
func TestNotifyConfig(t *testing.T) {
	const slackURL = "https://hooks.slack.example/services/T000/B000/sl4ck-t0ken"
	t.Setenv("TEST_SLACK_URL", slackURL)
	t.Setenv("TEST_HOOK_SECRET", "n0tify-secret")
	cfg, err := Load(writeConfig(t, `
[[notify]]
name = "ops-slack"
type = "slack"
url_env = "TEST_SLACK_URL"
events = ["failure"]

[repos.site]
secret = "x"
path = "/x"

[[repos.site.notify]]
name = "site-team"
type = "webhook"
url = "http://127.0.0.1:9000/deploys"
secret_env = "TEST_HOOK_SECRET"

[repos.api]
secret = "y"
path = "/y"
`))
	if err != nil {
		t.Fatal(err)
	}
	global, perRepo := cfg.NotifyTargets()
	wantGlobal := []notify.Target{{Name: "ops-slack", Kind: "slack", URL: slackURL, Events: []string{"failure"}}}
	if len(global) != 1 || global[0].Name != "ops-slack" || global[0].Kind != "slack" || global[0].URL != slackURL ||
		len(global[0].Secret) != 0 || !slices.Equal(global[0].Events, wantGlobal[0].Events) {
		t.Fatalf("global targets %+v", global)
	}
	site := perRepo["site"]
	if len(site) != 1 || site[0].Name != "site-team" || site[0].Kind != "webhook" ||
		site[0].URL != "http://127.0.0.1:9000/deploys" || string(site[0].Secret) != "n0tify-secret" || len(site[0].Events) != 0 {
		t.Fatalf("site targets %+v", site)
	}
	if len(perRepo["api"]) != 0 {
		t.Fatalf("api has its own targets: %+v", perRepo["api"])
	}
	for _, kv := range cfg.CommandEnv() {
		if strings.Contains(kv, "sl4ck-t0ken") || strings.Contains(kv, "n0tify-secret") {
			t.Fatalf("deploy commands would see a notification secret: %s", kv)
		}
	}
}

func TestNotifyConfigErrors(t *testing.T) {
	const leaky = "https://hooks.slack.example/services/T/B/l3aky"
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"no name", "[[notify]]\ntype = \"slack\"\nurl = \"https://h.example/x\"\n" + notifyRepo, []string{"notify[0]", "name is required"}},
		{"no type", "[[notify]]\nname = \"a\"\nurl = \"https://h.example/x\"\n" + notifyRepo, []string{"notify[0] (a)", "type is required"}},
		{"bad type", "[[notify]]\nname = \"a\"\ntype = \"email\"\nurl = \"https://h.example/x\"\n" + notifyRepo, []string{`type "email"`}},
		{"no url", "[[notify]]\nname = \"a\"\ntype = \"slack\"\n" + notifyRepo, []string{"exactly one of url or url_env"}},
		{"url and url_env", "[[notify]]\nname = \"a\"\ntype = \"slack\"\nurl = \"https://h.example/x\"\nurl_env = \"X\"\n" + notifyRepo, []string{"exactly one of url or url_env"}},
		{"unset url_env", "[[notify]]\nname = \"a\"\ntype = \"slack\"\nurl_env = \"HOOKGATE_TEST_UNSET_URL\"\n" + notifyRepo, []string{"HOOKGATE_TEST_UNSET_URL is empty or unset"}},
		{"not http", "[[notify]]\nname = \"a\"\ntype = \"slack\"\nurl = \"ftp://h.example/l3aky\"\n" + notifyRepo, []string{"not an http:// or https:// URL"}},
		{"slack with secret", "[[notify]]\nname = \"a\"\ntype = \"slack\"\nurl = \"" + leaky + "\"\nsecret = \"s\"\n" + notifyRepo, []string{"slack target takes no secret"}},
		{"webhook without secret", "[[notify]]\nname = \"a\"\ntype = \"webhook\"\nurl = \"https://h.example/x\"\n" + notifyRepo, []string{"needs secret or secret_env"}},
		{"bad event", "[[notify]]\nname = \"a\"\ntype = \"slack\"\nurl = \"https://h.example/x\"\nevents = [\"success\"]\n" + notifyRepo, []string{`events: "success"`}},
		{"unknown key", "[[notify]]\nname = \"a\"\ntype = \"slack\"\nurl = \"https://h.example/x\"\nchannel = \"#ops\"\n" + notifyRepo, []string{`unknown key "notify.channel"`, "line 5"}},
		{"duplicate global", "[[notify]]\nname = \"a\"\ntype = \"slack\"\nurl = \"https://h.example/x\"\n[[notify]]\nname = \"a\"\ntype = \"slack\"\nurl = \"https://h.example/y\"\n" + notifyRepo, []string{`name "a" is used twice`}},
		{"repo target shadows global", "[[notify]]\nname = \"a\"\ntype = \"slack\"\nurl = \"https://h.example/x\"\n" + notifyRepo +
			"[[repos.site.notify]]\nname = \"a\"\ntype = \"slack\"\nurl = \"https://h.example/y\"\n", []string{"repos.site.notify[0]", `name "a" is already used`}},
		{"repo target invalid", notifyRepo + "[[repos.site.notify]]\nname = \"t\"\ntype = \"webhook\"\nurl = \"" + leaky + "\"\n", []string{"repos.site.notify[0] (t)", "needs secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) { assertConfigError(t, tc.body, tc.want, "l3aky") })
	}
}
