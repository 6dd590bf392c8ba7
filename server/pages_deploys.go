// This file owns the deploys page: every deploy, whatever started it (a push, a replay, a
// rollback, a reconcile, an unpin, a button), filtered like GET /api/v1/deploys; and the
// paging the history and deploys pages share.
package server

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/store"
)

// deploysFilter is the deploys page's query: what the filter form and the paging links carry.
type deploysFilter struct {
	Repo    string
	Status  string
	Trigger string
	Node    string
	Limit   int
}

// link returns the deploys URL for this filter plus one paging parameter.
func (f deploysFilter) link(key string, id int64) string {
	q := url.Values{}
	for _, kv := range [][2]string{{"repo", f.Repo}, {"status", f.Status}, {"trigger", f.Trigger}, {"node", f.Node}} {
		if kv[1] != "" {
			q.Set(kv[0], kv[1])
		}
	}
	if f.Limit != pageSize {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if key != "" {
		q.Set(key, strconv.FormatInt(id, 10))
	}
	if len(q) == 0 {
		return "/deploys"
	}
	return "/deploys?" + q.Encode()
}

type deploysPage struct {
	base
	Filter          deploysFilter
	Rows            []store.Deploy
	Repos           []string
	States          []string
	Triggers        []string
	Older, Newer    string
	Newest          string
	DefaultPageSize int
}

func (p *pages) deploys(c *gin.Context) {
	q := c.Request.URL.Query()
	f := deploysFilter{Repo: q.Get("repo"), Status: q.Get("status"), Trigger: q.Get("trigger"), Node: q.Get("node")}
	limit, before, after, problems := parsePaging(q, "a deploy id")
	f.Limit = limit
	if f.Status != "" && !slices.Contains(store.DeployStatuses, f.Status) {
		problems = append(problems, "status must be one of "+strings.Join(store.DeployStatuses, ", ")+".")
	}
	if f.Trigger != "" && !slices.Contains(store.Triggers, f.Trigger) {
		problems = append(problems, "trigger must be one of "+strings.Join(store.Triggers, ", ")+".")
	}
	if f.Node != "" && !store.ValidNodeName(f.Node) {
		problems = append(problems, "node must be a node name: letters, digits, '.', '_', '-'; at most 63.")
	}
	if len(f.Repo) > 256 {
		problems = append(problems, "repo is too long.")
	}
	if len(problems) > 0 {
		p.fail(c, http.StatusBadRequest, strings.Join(problems, " "))
		return
	}
	rows, err := p.s.store.ListDeploys(c.Request.Context(), store.DeployFilter{
		Repo: f.Repo, Status: f.Status, Trigger: f.Trigger, Node: f.Node,
		Page: store.Page{Before: before, After: after, Limit: f.Limit + 1},
	})
	if err != nil {
		p.storeFail(c, err, "")
		return
	}
	names := p.s.repoNames()
	page := deploysPage{
		base:            base{Title: "Deploys", Nav: "deploys"},
		Filter:          f,
		Repos:           names,
		States:          store.DeployStatuses,
		Triggers:        store.Triggers,
		DefaultPageSize: pageSize,
	}
	if f.Repo != "" && !slices.Contains(names, f.Repo) {
		page.Repos = append(slices.Clone(names), f.Repo)
	}
	page.Rows, page.Older, page.Newer, page.Newest = paginate(rows, f.Limit, before, after, func(d store.Deploy) int64 { return d.ID }, f.link)
	if page.Fleet, err = p.fleet(c); err != nil {
		p.storeFail(c, err, "")
		return
	}
	for _, d := range page.Rows {
		page.Active = page.Active || activeStatus(d.Status)
	}
	p.render(c, http.StatusOK, "deploys.html", page)
}

// parsePaging reads ?limit=, ?before= and ?after=; idName says what before and after hold,
// for the problems it returns.
func parsePaging(q url.Values, idName string) (limit int, before, after int64, problems []string) {
	limit = pageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			problems = append(problems, fmt.Sprintf("limit must be a whole number from 1 to %d.", maxPageSize))
		} else {
			limit = n
		}
	}
	for _, k := range []struct {
		name string
		dst  *int64
	}{{"before", &before}, {"after", &after}} {
		if v := q.Get(k.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				problems = append(problems, k.name+" must be "+idName+" (a positive whole number).")
			}
			*k.dst = n
		}
	}
	if before > 0 && after > 0 {
		problems = append(problems, "Use before or after, not both.")
	}
	return limit, before, after, problems
}

// paginate trims rows, read with limit+1 as their limit, to one page and returns the
// paging links: the one row more than shown tells whether the listing goes on in the
// direction read.
func paginate[T any](rows []T, limit int, before, after int64, id func(T) int64, link func(string, int64) string) (page []T, older, newer, newest string) {
	more := len(rows) > limit
	if after > 0 {
		if more {
			rows = rows[1:]
			newer = link("after", id(rows[0]))
		}
		if len(rows) > 0 {
			older = link("before", id(rows[len(rows)-1]))
		}
	} else {
		if more {
			rows = rows[:limit]
			older = link("before", id(rows[len(rows)-1]))
		}
		if before > 0 && len(rows) > 0 {
			newer = link("after", id(rows[0]))
		}
	}
	if before > 0 || after > 0 {
		newest = link("", 0)
	}
	return rows, older, newer, newest
}
