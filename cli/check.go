// check.go owns `hookgate check`: the config, the database and each repository's
// checkout, one line each.

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookgate/hookgate/config"
	"github.com/hookgate/hookgate/internal/scrub"
	"github.com/hookgate/hookgate/notify"
	"github.com/hookgate/hookgate/repos"
	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

// cmdCheck validates the config and each repository's checkout, one line per repository.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.toml", "path to the configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate check: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	failed := 0
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Inspect reads without creating or migrating anything (a SQLite file is opened
	// read-only), so check can run beside a gateway, or before the first one starts.
	// known are the node names a nodes list may use without a warning: this node and the
	// gateways registered in the database; nil when the database could not be read.
	var known map[string]bool
	if e, err := store.Inspect(ctx, cfg.Database()); err != nil {
		failed++
		// Where is redacted; the driver's message is scrubbed of the password too, in case.
		fmt.Fprintf(tw, "error\tdatabase\t%s %s\t%v\n", e.Kind, e.Where, scrub.Error(err, databasePassword(cfg.Database())...))
	} else if e.Missing {
		fmt.Fprintf(tw, "ok\tdatabase\t%s %s\tnot created yet (serve creates it)\n", e.Kind, e.Where)
	} else {
		fmt.Fprintf(tw, "ok\tdatabase\t%s %s\t%s\n", e.Kind, e.Where, e.Version)
		known = map[string]bool{cfg.Server.Node: true}
		for _, n := range e.Nodes {
			known[n.Name] = true
		}
		if len(e.Nodes) == 0 {
			fmt.Fprintf(tw, "ok\tnodes\tnone yet\tno gateway has started on this database\n")
		}
		for _, n := range e.Nodes {
			name, status := n.Name, "ok"
			switch {
			case name == cfg.Server.Node:
				name += " (this node)" // down when the check runs before it starts
			case n.Status == store.NodeDown:
				// Its queued deploys wait for it; a node gone for good is taken out
				// with DELETE /api/v1/nodes/NAME. Said, not counted as a problem.
				status = "warn"
			}
			fmt.Fprintf(tw, "%s\tnode %s\t%s, %s, last seen %s\trepos: %s\n", status, name, n.Status, n.Version,
				n.LastSeen.Format(time.RFC3339), listOrNone(n.Repos))
		}
	}
	deployed := cfg.DeployedRepoNames()
	fmt.Fprintf(tw, "ok\tthis node\t%s\tdeploys: %s\n", cfg.Server.Node, listOrNone(deployed))
	for _, r := range cfg.RepoList() {
		if !cfg.Deploys(r.Name) {
			// Its checkout is the deploying nodes' business; this node only records.
			fmt.Fprintf(tw, "ok\t%s\t%s\tnot deployed by this node (nodes: %s); its deliveries are verified and recorded here\n",
				r.Name, r.Path, strings.Join(cfg.Repos[r.Name].Nodes, ", "))
			continue
		}
		status, detail := checkRepo(r)
		if status != "ok" {
			failed++
		}
		// A url may carry user:password, and an error may quote it.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", status, r.Name, r.Path, scrub.Text(detail, r.Token))
		if status != "ok" {
			continue
		}
		status, where, detail := checkOrigin(r)
		if status == "FAIL" {
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s origin\t%s\t%s\n", status, r.Name, scrub.Text(where, r.Token), scrub.Text(detail, r.Token))
	}
	// A nodes entry no gateway has registered is a node still to start, or a typo that
	// leaves repositories without the deploys they expect: said, not counted as a problem.
	if known != nil {
		unknown := map[string][]string{}
		for _, name := range cfg.RepoNames() {
			for _, n := range cfg.Repos[name].Nodes {
				if !known[n] {
					unknown[n] = append(unknown[n], "repos."+name+".nodes")
				}
			}
		}
		for _, n := range slices.Sorted(maps.Keys(unknown)) {
			fmt.Fprintf(tw, "warn\tnode %s\tin %s\tno gateway of that name has registered in this database: a typo, or a node not started yet\n",
				n, strings.Join(unknown[n], ", "))
		}
	}
	// Notification targets, by name and host only: a Slack URL's path is its credential.
	listTargets := func(targets []notify.Target, where string) {
		for _, t := range targets {
			events := "failure, recovery"
			if len(t.Events) > 0 {
				events = strings.Join(t.Events, ", ")
			}
			fmt.Fprintf(tw, "ok\tnotify %s\t%s to %s\t%s; on %s\n", t.Name, t.Kind, urlHost(t.URL), where, events)
		}
	}
	global, perRepo := cfg.NotifyTargets()
	listTargets(global, "every repository")
	for _, name := range cfg.RepoNames() {
		listTargets(perRepo[name], "repository "+name)
	}
	tw.Flush()
	if failed > 0 {
		fmt.Fprintf(stderr, "hookgate check: %s (the database and %s checked)\n", plural(failed, "problem"), plural(len(cfg.Repos), "repository"))
		return 1
	}
	return 0
}

// databasePassword returns the passwords a PostgreSQL URL holds (in its user part or as
// ?password=), for scrubbing; none for a SQLite path.
func databasePassword(database string) []string {
	if !store.IsPostgres(database) {
		return nil
	}
	u, err := url.Parse(database)
	if err != nil {
		return nil
	}
	var out []string
	if p, ok := u.User.Password(); ok && p != "" {
		out = append(out, p)
	}
	if p := u.Query().Get("password"); p != "" {
		out = append(out, p)
	}
	return out
}

// listOrNone joins names, or says none.
func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// urlHost is the host of a URL the config validated, for display.
func urlHost(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return "?"
}

func checkRepo(r repos.Repo) (status, detail string) {
	if r.SSHKey != "" {
		if _, err := os.Stat(r.SSHKey); err != nil {
			return "FAIL", fmt.Sprintf("ssh_key: %v", err)
		}
	}
	what := "branch " + r.Branch
	if r.Tags != "" {
		// A tag target's checkout stays on a local branch, main, that follows the tags
		// it deploys (repos/deploy.go): check that one rather than no branch at all.
		if r.Branch == "" {
			r.Branch = "main"
		}
		what = fmt.Sprintf("tags %s, local branch %s", r.Tags, r.Branch)
	}
	in, err := checkout.Inspect(r.Spec)
	if err != nil {
		return "FAIL", err.Error()
	}
	switch {
	case in.Missing && r.URL == "":
		return "FAIL", "path does not exist and no url is set to clone it from"
	case in.Missing:
		return "ok", fmt.Sprintf("not cloned yet: the first deploy clones %s (%s)", scrub.URL(r.URL), what)
	case !in.HasBranch:
		return "FAIL", fmt.Sprintf("branch %s exists neither locally nor as origin/%s", r.Branch, r.Branch)
	case in.OnBranch != r.Branch && r.Mode != checkout.ModeReset:
		return "FAIL", fmt.Sprintf("checkout is on %q, not branch %s (check it out, or set mode = \"reset\")", in.OnBranch, r.Branch)
	}
	head := in.Head
	if len(head) > 7 {
		head = head[:7]
	}
	as := ""
	if r.RunAs != nil {
		as = fmt.Sprintf(", run as %s (uid %d)", r.RunAs.Name, r.RunAs.UID)
	}
	return "ok", fmt.Sprintf("%s at %s, %s%s, mode %s", what, head, plural(len(r.Commands), "command"), as, r.Mode)
}

// originCheckTimeout bounds check's look-up of each origin: one ref listing.
const originCheckTimeout = 10 * time.Second

// checkOrigin asks r's origin for its branch head, as the deploys and polls will: one ref
// listing (git ls-remote), no fetch; for a tag target, for its newest matching tag (which
// fetches a few commits when no matching tag is a semantic version, see repos.NewestTag). where is origin's URL as the checkout has it (or the
// url to clone from). An origin that answers "not found", refuses the credentials or has
// no such branch is a FAIL; one that does not answer is a warning.
func checkOrigin(r repos.Repo) (status, where, detail string) {
	where = r.URL
	if in, err := checkout.Inspect(r.Spec); err == nil && in.OriginURL != "" {
		where = in.OriginURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), originCheckTimeout)
	defer cancel()
	var head string
	var err error
	if r.Tags != "" {
		// A tag target deploys origin's newest matching tag, not a branch: that is what
		// to look up (as a reconcile or a manual deploy would find it).
		var tag checkout.TagRef
		tag, err = repos.NewestTag(ctx, r)
		if errors.Is(err, repos.ErrNoMatchingTag) {
			// Not a mistake in itself (the first release is yet to be tagged), but
			// nothing deploys until one is pushed: maybe the glob is wrong.
			return "warn", where, fmt.Sprintf("reachable, but no tag matches %q: nothing is deployed until one is pushed", r.Tags)
		}
		if err == nil {
			return "ok", where, fmt.Sprintf("reachable: newest tag matching %q is %s at %s", r.Tags, tag.Name, tag.Commit[:7])
		}
	} else {
		head, err = checkout.OriginHead(ctx, r.Spec)
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return "warn", where, fmt.Sprintf("unreachable: no answer in %s", originCheckTimeout)
	case checkout.OriginProblem(err) == "unreachable":
		// Maybe the network, maybe the URL: a warning, as this host may be offline now.
		return "warn", where, "unreachable: " + err.Error()
	default:
		// Origin answered: what it said is a mistake in the config or on the forge.
		return "FAIL", where, checkout.OriginProblem(err) + ": " + err.Error()
	}
	return "ok", where, fmt.Sprintf("reachable: %s at %s", r.Branch, head[:7])
}

// plural says "1 command", "2 commands", "1 repository", "3 repositories".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
