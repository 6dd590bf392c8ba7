package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestNodesKey: [repos.NAME] nodes names the gateways that deploy the repository. This
// node deploys the repositories without the key and those whose list names it; every
// repository keeps its hook, whoever deploys it.
func TestNodesKey(t *testing.T) {
	repo := func(name, nodes string) string {
		return fmt.Sprintf("\n[repos.%s]\nsecret = \"x\"\npath = %q\n%s\n", name, name, nodes)
	}
	cfg, err := Load(writeConfig(t, "[server]\nnode = \"web1\"\n"+
		repo("both", `nodes = ["web2", "web1"]`)+
		repo("other", `nodes = ["web2"]`)+
		repo("every", ``)))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"both": true, "other": false, "every": true, "unknown": false} {
		if got := cfg.Deploys(name); got != want {
			t.Errorf("Deploys(%q) = %v, want %v", name, got, want)
		}
	}
	if got := cfg.DeployedRepoNames(); !slices.Equal(got, []string{"both", "every"}) {
		t.Errorf("DeployedRepoNames() = %v, want [both every]", got)
	}
	var workers, hooks []string
	for _, r := range cfg.DeployedRepoList() {
		workers = append(workers, r.Name)
	}
	for _, h := range cfg.Hooks() {
		hooks = append(hooks, h.Name)
	}
	if !slices.Equal(workers, []string{"both", "every"}) || !slices.Equal(hooks, []string{"both", "every", "other"}) {
		t.Errorf("workers for %v and hooks for %v; want workers for [both every] and hooks for all three", workers, hooks)
	}
	if !slices.Equal(cfg.Repos["both"].Nodes, []string{"web2", "web1"}) {
		t.Errorf("nodes of both: %v", cfg.Repos["both"].Nodes)
	}

	for _, tc := range []struct{ name, nodes, want string }{
		{"invalid name", `nodes = ["web1", "web 2"]`, `repos.site: nodes[1]: "web 2" is not a node name`},
		{"leading dot", `nodes = [".web"]`, `repos.site: nodes[0]: ".web" is not a node name`},
		{"too long", `nodes = ["` + strings.Repeat("w", 64) + `"]`, `repos.site: nodes[0]: "` + strings.Repeat("w", 64) + `" is not a node name`},
		{"duplicate", `nodes = ["web1", "web2", "web1"]`, `repos.site: nodes[2]: "web1" is listed twice`},
		{"empty", `nodes = []`, `repos.site: nodes is empty`},
		{"not a list", `nodes = "web1"`, `line 7, column 9`}, // the decoder names the line, as for every key
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, "[server]\nnode = \"web1\"\n"+repo("site", tc.nodes)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("nodes %s: error %v, want one saying %q", tc.nodes, err, tc.want)
			}
		})
	}
}
