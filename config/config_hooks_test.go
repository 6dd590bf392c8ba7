package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/server"
)

// TestHooksAndTargets: one [hooks.NAME] with three targets loads into one hook with its
// targets (sorted), no endpoint of a target's own, and the workers' Tags and Paths; a
// [repos.NAME] with its own secret stays a hook of its own, as before.
func TestHooksAndTargets(t *testing.T) {
	cfg, err := Load(writeConfig(t, `
[hooks.shop]
secret = "hush-hook-secret"
repository = "octo/shop"
allow_cidrs = ["10.0.0.0/8"]

[repos.staging]
hook = "shop"
path = "staging"
branch = "develop"

[repos.prod]
hook = "shop"
path = "prod"
tags = "v*"

[repos.docs]
hook = "shop"
path = "docs"
paths = ["docs/**", "mkdocs.yml"]

[repos.blog]
secret = "hush-blog"
path = "blog"
`))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var shop server.Hook
	for _, h := range cfg.Hooks() {
		names = append(names, h.Name)
		if h.Name == "shop" {
			shop = h
		}
	}
	if !reflect.DeepEqual(names, []string{"blog", "shop"}) {
		t.Fatalf("hooks %v, want blog and shop (no endpoint for a bound target)", names)
	}
	var targets []string
	for _, tg := range shop.Targets {
		targets = append(targets, tg.Name+":"+tg.Branch+":"+tg.Tags)
	}
	if string(shop.Secret) != "hush-hook-secret" || shop.Repository != "octo/shop" || shop.Provider != "github" || len(shop.AllowCIDRs) != 1 ||
		!reflect.DeepEqual(targets, []string{"docs:main:", "prod::v*", "staging:develop:"}) {
		t.Fatalf("hook shop: %+v, targets %v", shop, targets)
	}
	for _, r := range cfg.RepoList() {
		switch r.Name {
		case "prod":
			if r.Tags != "v*" || r.Branch != "" {
				t.Fatalf("prod: tags %q branch %q, want a tag target with no default branch", r.Tags, r.Branch)
			}
		case "docs":
			if !reflect.DeepEqual(r.Paths, []string{"docs/**", "mkdocs.yml"}) || r.Branch != "main" {
				t.Fatalf("docs: paths %v branch %q", r.Paths, r.Branch)
			}
		}
	}
}

// TestHooksAndTargetsErrors: each mistake is an error naming the keys as TOML spells them.
func TestHooksAndTargetsErrors(t *testing.T) {
	hook := "\n[hooks.shop]\nsecret = \"hush-hook\"\n"
	for _, c := range []struct {
		name, body string
		want       []string
	}{
		{"branch and tags", hook + "[repos.prod]\nhook = \"shop\"\npath = \"p\"\nbranch = \"main\"\ntags = \"v*\"\n",
			[]string{"repos.prod", "set branch or tags, not both"}},
		{"hook that does not exist", "[repos.prod]\nhook = \"nope\"\npath = \"p\"\n",
			[]string{"repos.prod", `hook "nope"`, "no [hooks.nope] table"}},
		{"hook and its own secret", hook + "[repos.prod]\nhook = \"shop\"\nsecret = \"hush-own\"\npath = \"p\"\n",
			[]string{"repos.prod", "set hook or secret, not both"}},
		{"hook and provider", hook + "[repos.prod]\nhook = \"shop\"\nprovider = \"gitlab\"\npath = \"p\"\n",
			[]string{"repos.prod", "set hook or provider, not both"}},
		{"hook and allow_cidrs", hook + "[repos.prod]\nhook = \"shop\"\nallow_cidrs = [\"10.0.0.0/8\"]\npath = \"p\"\n",
			[]string{"repos.prod", "set hook or allow_cidrs, not both"}},
		{"the same hook both ways", hook + "[repos.shop]\nsecret = \"hush-own\"\npath = \"p\"\n[repos.prod]\nhook = \"shop\"\npath = \"q\"\n",
			[]string{"hooks.shop and repos.shop both define hook \"shop\""}},
		{"two targets on one path", hook + "[repos.a]\nhook = \"shop\"\npath = \"same\"\n[repos.b]\nhook = \"shop\"\npath = \"same\"\nbranch = \"develop\"\n",
			[]string{"repos.a and repos.b: both have path"}},
		{"two targets on one path of one node", hook + "[repos.a]\nhook = \"shop\"\npath = \"same\"\nnodes = [\"web1\", \"web2\"]\n[repos.b]\nhook = \"shop\"\npath = \"same\"\nnodes = [\"web2\"]\n",
			[]string{"repos.a and repos.b: both have path"}},
		{"bad tag glob", hook + "[repos.prod]\nhook = \"shop\"\npath = \"p\"\ntags = \"v[\"\n",
			[]string{"repos.prod", `tags "v["`}},
		{"bad paths pattern", hook + "[repos.docs]\nhook = \"shop\"\npath = \"p\"\npaths = [\"docs/[\", \"/abs\"]\n",
			[]string{"repos.docs", `paths[0] "docs/["`, `paths[1] "/abs"`}},
		{"hook without a secret", "[hooks.shop]\nrepository = \"octo/shop\"\n[repos.prod]\nhook = \"shop\"\npath = \"p\"\n",
			[]string{"hooks.shop", "set exactly one of secret, secret_env or secret_file"}},
		{"hook nobody names", hook + "[repos.site]\nsecret = \"hush-own\"\npath = \"p\"\n",
			[]string{"hooks.shop", `no [repos.NAME] table has hook = "shop"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			assertConfigError(t, c.body, c.want, "hush-hook", "hush-own")
		})
	}
	// Where nodes differ, one path serves two targets: each node has one of them.
	if _, err := Load(writeConfig(t, hook+"[repos.a]\nhook = \"shop\"\npath = \"same\"\nnodes = [\"web1\"]\n[repos.b]\nhook = \"shop\"\npath = \"same\"\nnodes = [\"web2\"]\n")); err != nil {
		t.Fatalf("one path on disjoint nodes: %v", err)
	}
	// A [repos.NAME] with its own secret is a hook others may name.
	cfg, err := Load(writeConfig(t, "[repos.site]\nsecret = \"hush-own\"\npath = \"p\"\n[repos.preview]\nhook = \"site\"\npath = \"q\"\nbranch = \"preview\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	hooks := cfg.Hooks()
	if len(hooks) != 1 || len(hooks[0].Targets) != 2 || !strings.Contains(hooks[0].Targets[1].Name, "preview") {
		t.Fatalf("a repository's hook with another target: %+v", hooks)
	}
}

// TestCommandEnvDropsHookSecrets: a [hooks.NAME] secret_env is a secret like a
// repository's: deploy commands do not see it.
func TestCommandEnvDropsHookSecrets(t *testing.T) {
	t.Setenv("SHOP_SECRET", "hush-shop")
	t.Setenv("KEEP_ME", "yes")
	assertCommandEnvHidesHush(t, "[hooks.shop]\nsecret_env = \"SHOP_SECRET\"\n[repos.a]\nhook = \"shop\"\npath = \"/x\"\n")
}
