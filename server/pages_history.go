// This file owns the history pages: the deliveries list, one delivery, its payload and one
// deploy.
package server

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/store"
)

type indexPage struct {
	base
	Filter          historyFilter
	Rows            []store.Delivery
	Repos           []string
	DeliveryStates  []string
	DeployStates    []string
	Events          []string
	Older, Newer    string
	Newest          string // set when this is not the first page
	DefaultPageSize int
}

func (p *pages) index(c *gin.Context) {
	q := c.Request.URL.Query()
	f := historyFilter{Repo: q.Get("repo"), Status: q.Get("status"), Event: q.Get("event"), Limit: pageSize}
	var before, after int64
	var problems []string
	f.Limit, before, after, problems = parsePaging(q, "a delivery id")
	if f.Status != "" && !slices.Contains(store.DeliveryStatuses, f.Status) && !slices.Contains(store.DeployStatuses, f.Status) {
		problems = append(problems, fmt.Sprintf("status must be one of %s (a delivery's status) or %s (the status of the deploy it joined).",
			strings.Join(store.DeliveryStatuses, ", "), strings.Join(store.DeployStatuses, ", ")))
	}
	if len(f.Repo) > 256 || len(f.Event) > 64 {
		problems = append(problems, "repo or event is too long.")
	}
	if len(problems) > 0 {
		p.fail(c, http.StatusBadRequest, strings.Join(problems, " "))
		return
	}

	rows, err := p.s.store.ListDeliveries(c.Request.Context(), store.DeliveryFilter{
		Repo: f.Repo, Status: f.Status, Event: f.Event,
		Page: store.Page{Before: before, After: after, Limit: f.Limit + 1},
	})
	if err != nil {
		p.storeFail(c, err, "")
		return
	}
	names := p.s.repoNames()
	page := indexPage{
		base:            base{Title: "Deliveries", Nav: "history"},
		Filter:          f,
		Repos:           names,
		DeliveryStates:  store.DeliveryStatuses,
		DeployStates:    store.DeployStatuses,
		Events:          knownEvents,
		DefaultPageSize: pageSize,
	}
	if f.Repo != "" && !slices.Contains(names, f.Repo) {
		// A repository no longer configured still has history; keep it selectable.
		page.Repos = append(slices.Clone(names), f.Repo)
	}
	rows, page.Older, page.Newer, page.Newest = paginate(rows, f.Limit, before, after, func(d store.Delivery) int64 { return d.ID }, f.link)
	page.Rows = rows
	if page.Fleet, err = p.fleet(c); err != nil {
		p.storeFail(c, err, "")
		return
	}
	for _, d := range rows {
		if rowActive(d) {
			page.Active = true
		}
	}
	p.render(c, http.StatusOK, "index.html", page)
}

type header struct{ Name, Value string }

type deliveryPage struct {
	base
	D       store.Delivery
	Deploy  *store.Deploy
	Headers []header
	// Payload is the stored payload indented, at most maxShownPayload bytes of it;
	// Truncated says there is more, which the raw payload link serves.
	Payload     string
	Truncated   bool
	PayloadSize int64
}

func (p *pages) delivery(c *gin.Context) {
	id, ok := p.pageID(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	d, err := p.s.store.Delivery(ctx, id)
	if err != nil {
		p.storeFail(c, err, fmt.Sprintf("Delivery %d", id))
		return
	}
	page := deliveryPage{base: base{Title: fmt.Sprintf("Delivery %d", id), Nav: "history", Active: rowActive(d)}, D: d}
	if page.Fleet, err = p.fleet(c); err != nil {
		p.storeFail(c, err, "")
		return
	}
	if d.DeployID != 0 {
		dp, err := p.s.store.Deploy(ctx, d.DeployID)
		if err != nil {
			p.storeFail(c, err, fmt.Sprintf("Deploy %d", d.DeployID))
			return
		}
		page.Deploy = &dp
		page.Active = page.Active || activeStatus(dp.Status)
	}
	for k, v := range d.Headers {
		if !hiddenHeaders[http.CanonicalHeaderKey(k)] {
			page.Headers = append(page.Headers, header{k, v})
		}
	}
	sort.Slice(page.Headers, func(i, j int) bool { return page.Headers[i].Name < page.Headers[j].Name })
	page.Payload, page.Truncated = showPayload(d.Payload, maxShownPayload)
	page.PayloadSize = int64(len(d.Payload))
	p.render(c, http.StatusOK, "delivery.html", page)
}

type deployPage struct {
	base
	Deploy        store.Deploy
	Notifications []store.Notification
	Reports       []store.Report // the forge reports of the deploy
	WaitingFor    string         // what a waiting deploy waits for (require_checks)
	// CanRollBack offers "Roll back to this commit": the deploy succeeded and its commit
	// is not the live one.
	CanRollBack bool
	// Probes are the deploy's health check probes; HealthResult how it went ("" without one).
	Probes       []store.Probe
	HealthResult string
}

// payload serves the stored payload as is, for the delivery page's "raw payload" link
// (the API's route takes a bearer token, which a browser cannot send from a link).
func (p *pages) payload(c *gin.Context) {
	id, ok := p.pageID(c)
	if !ok {
		return
	}
	d, err := p.s.store.Delivery(c.Request.Context(), id)
	if err != nil {
		p.storeFail(c, err, fmt.Sprintf("Delivery %d", id))
		return
	}
	if len(d.Payload) == 0 {
		p.fail(c, http.StatusNotFound, fmt.Sprintf("Delivery %d has no stored payload.", id))
		return
	}
	writePayload(c, d)
}

func (p *pages) deploy(c *gin.Context) {
	id, ok := p.pageID(c)
	if !ok {
		return
	}
	dp, err := p.s.store.Deploy(c.Request.Context(), id)
	if err != nil {
		p.storeFail(c, err, fmt.Sprintf("Deploy %d", id))
		return
	}
	notes, err := p.s.store.DeployNotifications(c.Request.Context(), id)
	if err != nil {
		p.storeFail(c, err, fmt.Sprintf("Deploy %d", id))
		return
	}
	reports, err := p.s.store.DeployReports(c.Request.Context(), id)
	if err != nil {
		p.storeFail(c, err, fmt.Sprintf("Deploy %d", id))
		return
	}
	probes, err := p.s.store.Probes(c.Request.Context(), id)
	if err != nil {
		p.storeFail(c, err, fmt.Sprintf("Deploy %d", id))
		return
	}
	page := deployPage{
		base:          base{Title: fmt.Sprintf("Deploy %d", id), Nav: "history", Active: activeStatus(dp.Status)},
		Deploy:        dp,
		Notifications: notes,
		Reports:       reports,
		Probes:        probes,
		HealthResult:  healthResult(dp, probes),
	}
	if dp.Status == store.DeployWaiting {
		if page.WaitingFor, err = p.s.store.WaitingFor(c.Request.Context(), id); err != nil {
			p.storeFail(c, err, fmt.Sprintf("Deploy %d", id))
			return
		}
	}
	if p.s.isRepo(dp.Repo) && dp.Status == store.DeploySucceeded && dp.ToCommit != "" {
		live, err := p.s.app.LiveCommit(c.Request.Context(), dp.Repo)
		if err != nil {
			p.storeFail(c, err, fmt.Sprintf("Deploy %d", id))
			return
		}
		page.CanRollBack = live != dp.ToCommit
	}
	p.render(c, http.StatusOK, "deploy.html", page)
}
