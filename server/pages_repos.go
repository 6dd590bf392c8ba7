// This file owns the repositories and nodes pages and the forms on them: deploy now,
// replay, rollback, pin and unpin.
package server

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/app"
	"github.com/hookgate/hookgate/store"
)

type repoRow struct {
	app.Repo
	Head, OnBranch, HeadError string
	State                     store.RepoState
	Running                   int64
	Active                    bool
	Origin                    app.OriginState
	// OriginAhead is origin's head when it is neither live nor being deployed.
	OriginAhead string
	Pin         *store.Pin
	// PinReason and PinDeployID: why a pin by health holds it (app.Status).
	PinReason   string
	PinDeployID int64
	// Nodes are the nodes that deploy the repository or ran it, each with its live
	// commit; shown in place of the one live commit when perNode says so.
	Nodes []store.RepoNode
	// Bad are the target's bad commits (a failed health check), each with a Clear button.
	Bad []store.BadCommit
	// BadMore is how many older bad commits are not listed (app.MaxBadShown).
	BadMore int
	// NotHere: this node of a fleet does not deploy the repository.
	NotHere bool
	// LiveTag is a tag target's live tag ("" for a branch target).
	LiveTag string
}

// toRepoRow is a repository's status as the page shows it: a checkout that does not exist
// is "not cloned yet", unless this node does not deploy the repository at all.
func toRepoRow(st app.Status) repoRow {
	r := repoRow{Repo: st.Repo, State: st.State, Running: st.Running, Active: st.Active,
		Origin: st.Origin, OriginAhead: st.OriginAhead, Pin: st.Pin, Nodes: st.Nodes, NotHere: !st.DeploysHere,
		PinReason: st.PinReason, PinDeployID: st.PinDeployID}
	if r.NotHere {
		return r
	}
	if st.Checkout.Missing {
		r.HeadError = "not cloned yet"
	} else if r.Head, r.OnBranch = st.Checkout.Head, st.Checkout.OnBranch; st.Checkout.Err != nil {
		r.HeadError = st.Checkout.Err.Error()
	}
	return r
}

type reposPage struct {
	base
	Repos []repoRow
	// Groups are Repos as the page shows them, by name: a hook several targets share
	// with its targets beneath it, and each repository that is its own hook alone.
	Groups []repoGroup
}

// repoGroup is one hook several targets share (Hook set), or one repository that is its
// own hook (Hook "", one row, shown as before hooks could be shared).
type repoGroup struct {
	Hook string
	// Table is how the config names the hook: "hooks" for [hooks.NAME], "repos" for a
	// [repos.NAME] with its own secret that other targets name too.
	Table                string
	Provider, Repository string
	Rows                 []repoRow
}

// groupRepos puts the targets of each shared hook under it, in the order of the hooks'
// and standalone repositories' names.
func (s *Server) groupRepos(rows []repoRow) []repoGroup {
	var out []repoGroup
	at := map[string]int{}
	for _, r := range rows {
		if !r.Shared {
			out = append(out, repoGroup{Rows: []repoRow{r}})
			continue
		}
		i, ok := at[r.Hook]
		if !ok {
			g := repoGroup{Hook: r.Hook, Table: "hooks", Repository: r.Repository, Provider: ProviderGitHub}
			if h, found := s.hook(r.Hook); found {
				g.Provider = cmp.Or(h.Provider, ProviderGitHub)
				if slices.ContainsFunc(h.Targets, func(t Target) bool { return t.Name == h.Name }) {
					g.Table = "repos"
				}
			}
			i = len(out)
			at[r.Hook] = i
			out = append(out, g)
		}
		out[i].Rows = append(out[i].Rows, r)
	}
	name := func(g repoGroup) string { return cmp.Or(g.Hook, g.Rows[0].Name) }
	slices.SortStableFunc(out, func(a, b repoGroup) int { return strings.Compare(name(a), name(b)) })
	return out
}

func (p *pages) repos(c *gin.Context) {
	page := reposPage{base: base{Title: "Repositories", Nav: "repos"}}
	var err error
	if page.Fleet, err = p.fleet(c); err != nil {
		p.storeFail(c, err, "")
		return
	}
	list, err := p.s.app.Statuses(c.Request.Context())
	if err != nil {
		p.storeFail(c, err, "")
		return
	}
	for _, st := range list {
		r := toRepoRow(st)
		r.Bad = st.Bad
		r.LiveTag = liveTag(st)
		r.BadMore = st.BadCount - len(st.Bad)
		page.Active = page.Active || r.Active
		page.Repos = append(page.Repos, r)
	}
	page.Groups = p.s.groupRepos(page.Repos)
	p.render(c, http.StatusOK, "repos.html", page)
}

type nodesPage struct {
	base
	Nodes []store.Node
	// Down counts the nodes shown down, for the heading.
	Down int
}

// nodes lists the gateways that registered with the database, by name.
func (p *pages) nodes(c *gin.Context) {
	nodes, err := p.s.store.Nodes(c.Request.Context())
	if err != nil {
		p.storeFail(c, err, "")
		return
	}
	page := nodesPage{base: base{Title: "Nodes", Nav: "nodes"}, Nodes: nodes}
	for _, n := range nodes {
		if n.Status != store.NodeUp {
			page.Down++
		}
	}
	p.render(c, http.StatusOK, "nodes.html", page)
}

// fleet tells whether more than one node has registered with the database (see base).
func (p *pages) fleet(c *gin.Context) (bool, error) {
	nodes, err := p.s.store.Nodes(c.Request.Context())
	return len(nodes) > 1, err
}

func (p *pages) deployNow(c *gin.Context) {
	name := c.Param("name")
	if !p.s.isRepo(name) {
		p.fail(c, http.StatusNotFound, "No repository is configured under this name.")
		return
	}
	dp, err := p.s.app.DeployNow(c.Request.Context(), name)
	if err != nil {
		p.outcomeFail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/deploys/"+strconv.FormatInt(dp.ID, 10))
}

// redeliver re-runs a recorded delivery and shows the deploy it joined.
func (p *pages) redeliver(c *gin.Context) {
	id, ok := p.pageID(c)
	if !ok {
		return
	}
	d, err := p.s.app.Replay(c.Request.Context(), id, c.ClientIP())
	var nr *app.Error
	if errors.As(err, &nr) && nr.Kind == app.NotReplayable {
		p.fail(c, http.StatusConflict, "This delivery cannot be replayed: "+nr.Msg+".")
		return
	}
	if err != nil {
		p.storeFail(c, err, fmt.Sprintf("Delivery %d", id))
		return
	}
	if d.DeployID == 0 { // ignored: the repository is pinned
		c.Redirect(http.StatusSeeOther, "/deliveries/"+strconv.FormatInt(d.ID, 10))
		return
	}
	c.Redirect(http.StatusSeeOther, "/deploys/"+strconv.FormatInt(d.DeployID, 10))
}

func (p *pages) rollback(c *gin.Context) {
	dp, err := p.s.app.Rollback(c.Request.Context(), c.Param("name"), strings.TrimSpace(c.PostForm("commit")))
	if err != nil {
		p.outcomeFail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/deploys/%d", dp.ID))
}

func (p *pages) pin(c *gin.Context) {
	if _, err := p.s.app.Pin(c.Request.Context(), c.Param("name"), strings.TrimSpace(c.PostForm("commit"))); err != nil {
		p.outcomeFail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/repos")
}

func (p *pages) unpin(c *gin.Context) {
	u, err := p.s.app.Unpin(c.Request.Context(), c.Param("name"))
	if err != nil {
		p.outcomeFail(c, err)
		return
	}
	if id := u.Deploy(); id != 0 {
		c.Redirect(http.StatusSeeOther, fmt.Sprintf("/deploys/%d", id))
		return
	}
	c.Redirect(http.StatusSeeOther, "/repos")
}
