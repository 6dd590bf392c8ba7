package repos

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

// gate is a deploy command that logs its start, blocks until the test opens the gate (a
// file appears), then logs its end: the test decides when a deploy finishes.
type gate struct{ dir string }

func newGate(t *testing.T) gate { return gate{dir: t.TempDir()} }

func (g gate) command() string {
	return `echo "start $HOOKGATE_DEPLOY" >> ` + g.log() + `; while [ ! -e ` + filepath.Join(g.dir, "open") +
		` ]; do sleep 0.01; done; echo "end $HOOKGATE_DEPLOY" >> ` + g.log()
}
func (g gate) log() string { return filepath.Join(g.dir, "log") }
func (g gate) open(t *testing.T) {
	if err := os.WriteFile(filepath.Join(g.dir, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}
func (g gate) lines() []string {
	b, _ := os.ReadFile(g.log())
	return strings.Fields(strings.ReplaceAll(string(b), "\n", " "))
}

func (e *workerEnv) status(t *testing.T, id int64) string { return e.deploy(t, id).Status }

// blockedDeploy starts a manager with one repository, site, whose deploy command waits at
// the gate, and returns once that deploy (first) runs. The manager stops at the test's end.
func blockedDeploy(t *testing.T) (*workerEnv, gate, *Manager, Repo, *store.Delivery) {
	e := newWorkerEnv(t)
	g := newGate(t)
	site := Repo{Spec: checkout.Spec{Name: "site", Path: e.checkout, Branch: "main"}, Commands: []string{g.command()}, Timeout: time.Minute}
	m := e.manager(t, 2, site)
	m.Start()
	t.Cleanup(func() { m.Stop(time.Minute) })

	first := e.queue(t, "site", "g1")
	m.Wake("site")
	testkit.Eventually(t, 20*time.Second, "the deploy to start", func() bool { return m.Running("site") == first.DeployID })
	return e, g, m, site, first
}

// TestApplyRemovedRepositoryFinishesItsDeployThenStops: a reload that removes a
// repository lets its running deploy finish and be recorded, then its worker claims nothing.
func TestApplyRemovedRepositoryFinishesItsDeployThenStops(t *testing.T) {
	e, g, m, site, first := blockedDeploy(t)
	w := m.workers["site"]

	ch := m.Apply(nil, env())
	if !slices.Equal(ch.Removed, []string{"site"}) || len(ch.Added)+len(ch.Changed) != 0 {
		t.Fatalf("Apply reported %+v, want site removed", ch)
	}
	if got := m.Running("site"); got != first.DeployID {
		t.Fatalf("Running(site) = %d while the removed repository finishes deploy %d", got, first.DeployID)
	}
	if st := e.status(t, first.DeployID); st != store.DeployRunning {
		t.Fatalf("the running deploy is %s right after the reload; it must go on", st)
	}
	g.open(t)
	select {
	case <-w.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the removed repository's worker did not stop after its deploy")
	}
	if st := e.status(t, first.DeployID); st != store.DeploySucceeded {
		t.Fatalf("the deploy running at the reload ended %s, want succeeded", st)
	}
	// Nothing deploys a repository that is no longer configured; its queue waits in the
	// store for the repository to come back.
	later := e.queue(t, "site", "g2")
	m.Wake("site")
	if m.Running("site") != 0 || e.status(t, later.DeployID) != store.DeployQueued {
		t.Fatal("a removed repository deployed")
	}
	ch = m.Apply([]Repo{site}, env())
	if !slices.Equal(ch.Added, []string{"site"}) {
		t.Fatalf("Apply reported %+v, want site added", ch)
	}
	testkit.Eventually(t, 20*time.Second, "the queued deploy to run once site is back", func() bool {
		return e.status(t, later.DeployID) == store.DeploySucceeded
	})
}

// TestApplyReaddedRepositoryWaitsForItsOldWorker: removing a repository mid-deploy and
// adding it back at once must not run two deploys of one checkout at the same time.
func TestApplyReaddedRepositoryWaitsForItsOldWorker(t *testing.T) {
	e, g, m, site, first := blockedDeploy(t)
	m.Apply(nil, env())
	m.Apply([]Repo{site}, env())
	if got := m.Running("site"); got != first.DeployID {
		t.Fatalf("Running(site) = %d after the repository came back; deploy %d is still running", got, first.DeployID)
	}
	second := e.queue(t, "site", "g2")
	m.Wake("site")
	g.open(t)
	testkit.Eventually(t, 20*time.Second, "both deploys to finish", func() bool {
		return e.status(t, first.DeployID) == store.DeploySucceeded && e.status(t, second.DeployID) == store.DeploySucceeded
	})
	if a, b := e.deploy(t, first.DeployID), e.deploy(t, second.DeployID); b.StartedAt.Before(a.FinishedAt) {
		t.Fatalf("deploy %d was claimed at %s, before deploy %d finished at %s", b.ID, b.StartedAt, a.ID, a.FinishedAt)
	}
	want := []string{"start", itoa(first.DeployID), "end", itoa(first.DeployID), "start", itoa(second.DeployID), "end", itoa(second.DeployID)}
	if got := g.lines(); !slices.Equal(got, want) {
		t.Fatalf("deploy log %q, want %q (one deploy at a time)", got, want)
	}
}

// TestApplyChangesAndAdds: a changed repository's next deploy runs its new commands; an
// added one deploys what was queued for it.
func TestApplyChangesAndAdds(t *testing.T) {
	e := newWorkerEnv(t)
	marks := t.TempDir()
	mark := func(name string) string { return "touch " + filepath.Join(marks, name) }
	m := e.manager(t, 2, Repo{Spec: checkout.Spec{Name: "site", Path: e.checkout}, Commands: []string{mark("old")}})
	m.Start()
	defer m.Stop(time.Minute)

	other := e.origin.Clone()
	ch := m.Apply([]Repo{
		{Spec: checkout.Spec{Name: "site", Path: e.checkout, Branch: "main"}, Commands: []string{mark("new")}, Timeout: time.Minute},
		{Spec: checkout.Spec{Name: "api", Path: other, Branch: "main"}, Commands: []string{mark("api")}, Timeout: time.Minute},
	}, env())
	if !slices.Equal(ch.Added, []string{"api"}) || !slices.Equal(ch.Changed, []string{"site"}) || len(ch.Removed) != 0 {
		t.Fatalf("Apply reported %+v", ch)
	}
	if again := m.Apply([]Repo{
		{Spec: checkout.Spec{Name: "site", Path: e.checkout, Branch: "main"}, Commands: []string{mark("new")}, Timeout: time.Minute},
		{Spec: checkout.Spec{Name: "api", Path: other, Branch: "main"}, Commands: []string{mark("api")}, Timeout: time.Minute},
	}, env()); len(again.Added)+len(again.Removed)+len(again.Changed) != 0 {
		t.Fatalf("the same configuration applied again reported %+v", again)
	}
	s, a := e.queue(t, "site", "g1"), e.queue(t, "api", "g2")
	m.Wake("site")
	m.Wake("api")
	testkit.Eventually(t, 20*time.Second, "both deploys", func() bool {
		return e.status(t, s.DeployID) == store.DeploySucceeded && e.status(t, a.DeployID) == store.DeploySucceeded
	})
	for name, want := range map[string]bool{"old": false, "new": true, "api": true} {
		if _, err := os.Stat(filepath.Join(marks, name)); (err == nil) != want {
			t.Errorf("marker %s exists = %v, want %v", name, err == nil, want)
		}
	}
}

func env() []string { return []string{"PATH=" + os.Getenv("PATH")} }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
