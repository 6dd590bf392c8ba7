package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/app"
	"github.com/hookgate/hookgate/store"
	"github.com/hookgate/hookgate/web"
)

// Page sizes of the history; ?limit= picks another within bounds. The upper bound leaves
// room for the one extra row fetched to learn whether an older page exists.
const (
	pageSize    = 50
	maxPageSize = 200
)

// pageCSP allows nothing inline: the page's only script and style are files of its own.
const pageCSP = "default-src 'self'; style-src 'self'; script-src 'self'"

// hiddenHeaders are never shown, although record time already drops them, so that a row
// recorded by an older version cannot print a credential.
var hiddenHeaders = map[string]bool{
	"Authorization":       true,
	"Proxy-Authorization": true,
	"Cookie":              true,
	"Set-Cookie":          true,
	"X-Gitlab-Token":      true,
}

// knownEvents are offered as suggestions in the event filter; any other name works too.
var knownEvents = []string{"push", "ping", "create", "delete", "pull_request", "release", "workflow_run"}

// pages serves the operators' HTML. registerPages builds it once from New, so the templates
// are parsed once at start and a broken template stops the server from starting rather
// than failing a request.
type pages struct {
	s      *Server
	tmpl   map[string]*template.Template
	static map[string]staticFile
}

// staticTypes are the static files' content types. Not mime.TypeByExtension: its first
// call loads the host's whole MIME database (/etc/mime.types, /usr/share/mime/globs2) and
// keeps it for the life of the process, about 0.4 MB, to learn two types Go already knows;
// and the host's files could name them differently.
var staticTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
}

type staticFile struct {
	body  []byte
	ctype string
	etag  string
}

func (s *Server) registerPages(g *gin.RouterGroup) {
	p := &pages{
		s:      s,
		tmpl:   map[string]*template.Template{},
		static: map[string]staticFile{},
	}
	funcs := template.FuncMap{
		"ago":       p.ago,
		"took":      p.took,
		"rfc3339":   rfc3339,
		"short":     shortHash,
		"commitURL": commitURL,
		"refName":   refName,
		"tone":      tone,
		"rowTone":   rowTone,
		"active":    activeStatus,
		"rowActive": rowActive,
		"size":      byteSize,
		"perNode":   perNode,
	}
	for _, name := range []string{"index.html", "delivery.html", "deploy.html", "repos.html", "nodes.html", "error.html"} {
		p.tmpl[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(web.FS,
			"templates/layout.html", "templates/partials.html", "templates/"+name))
	}
	files, err := fs.Glob(web.FS, "static/*")
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(web.FS, f)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		ctype := staticTypes[path.Ext(f)]
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		p.static[path.Base(f)] = staticFile{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}

	g.Use(pageHeaders)
	g.GET("/", p.index)
	g.GET("/deliveries/:id", p.delivery)
	g.GET("/deliveries/:id/payload", p.payload)
	g.GET("/deploys/:id", p.deploy)
	g.GET("/repos", p.repos)
	g.GET("/nodes", p.nodes)
	g.POST("/repos/:name/deploy", p.deployNow)
	g.POST("/repos/:name/rollback", p.rollback)
	g.POST("/repos/:name/pin", p.pin)
	g.POST("/repos/:name/unpin", p.unpin)
	g.POST("/deliveries/:id/redeliver", p.redeliver)
	g.GET("/static/:file", p.staticFile)
}

// pageHeaders keeps the pages out of frames, other sites' referrers and content sniffing.
func pageHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	c.Next()
}

// base is what the layout needs from every page.
//
// Fleet is set on the pages that show deploys when more than one node has registered
// with the database: each deploy is then shown with its node. One gateway on its own
// sees its pages as before nodes existed.
type base struct {
	Title  string
	Nav    string // "history", "repos" or "nodes": the current menu entry
	Active bool   // something on the page is queued or running: live.js keeps it current
	Fleet  bool
}

// render executes the page into a buffer first, so a template error becomes a clean 500
// rather than half a page.
func (p *pages) render(c *gin.Context, status int, name string, data any) {
	var buf bytes.Buffer
	if err := p.tmpl[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		p.s.log.Error("render page", "page", name, "err", err)
		c.Header("Cache-Control", "no-store")
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error\n"))
		c.Abort()
		return
	}
	// The history changes all the time and sits behind a password: never cache it.
	c.Header("Cache-Control", "no-store")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

type errorPage struct {
	base
	Status  int
	Message string
}

// fail answers with an HTML error page; msg is shown as is, so it never carries an
// internal error's text.
func (p *pages) fail(c *gin.Context, status int, msg string) {
	p.render(c, status, "error.html", errorPage{
		base:    base{Title: http.StatusText(status)},
		Status:  status,
		Message: msg,
	})
	c.Abort()
}

// storeFail maps a store error to a page: unknown ids are a 404, the rest a logged 500.
func (p *pages) storeFail(c *gin.Context, err error, what string) {
	if errors.Is(err, store.ErrNotFound) {
		p.fail(c, http.StatusNotFound, what+" does not exist.")
		return
	}
	p.s.log.Error("page: store error", "path", c.FullPath(), "err", err)
	p.fail(c, http.StatusInternalServerError, "Internal error; the server log has the cause.")
}

// pageID reads the :id parameter.
func (p *pages) pageID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		p.fail(c, http.StatusBadRequest, fmt.Sprintf("%q is not an id: ids are positive whole numbers.", limit(c.Param("id"), 64)))
		return 0, false
	}
	return id, true
}

// historyFilter is the index page's query: what the filter form and the paging links carry.
type historyFilter struct {
	Repo   string
	Status string
	Event  string
	Limit  int
}

// link returns the index URL for this filter plus one paging parameter.
func (f historyFilter) link(key string, id int64) string {
	q := url.Values{}
	if f.Repo != "" {
		q.Set("repo", f.Repo)
	}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	if f.Event != "" {
		q.Set("event", f.Event)
	}
	if f.Limit != pageSize {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if key != "" {
		q.Set(key, strconv.FormatInt(id, 10))
	}
	if len(q) == 0 {
		return "/"
	}
	return "/?" + q.Encode()
}

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
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			problems = append(problems, fmt.Sprintf("limit must be a whole number from 1 to %d.", maxPageSize))
		} else {
			f.Limit = n
		}
	}
	for _, k := range []struct {
		name string
		dst  *int64
	}{{"before", &before}, {"after", &after}} {
		if v := q.Get(k.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				problems = append(problems, k.name+" must be a delivery id (a positive whole number).")
			}
			*k.dst = n
		}
	}
	if before > 0 && after > 0 {
		problems = append(problems, "Use before or after, not both.")
	}
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
	names := p.s.hookNames()
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
	// One row more than shown tells whether the listing goes on in the direction read.
	more := len(rows) > f.Limit
	if after > 0 {
		if more {
			rows = rows[1:]
			page.Newer = f.link("after", rows[0].ID)
		}
		if len(rows) > 0 {
			page.Older = f.link("before", rows[len(rows)-1].ID)
		}
	} else {
		if more {
			rows = rows[:f.Limit]
			page.Older = f.link("before", rows[len(rows)-1].ID)
		}
		if before > 0 && len(rows) > 0 {
			page.Newer = f.link("after", rows[0].ID)
		}
	}
	if before > 0 || after > 0 {
		page.Newest = f.link("", 0)
	}
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
	// CanRollBack offers "Roll back to this commit": the deploy succeeded and its commit
	// is not the live one.
	CanRollBack bool
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
	page := deployPage{
		base:          base{Title: fmt.Sprintf("Deploy %d", id), Nav: "history", Active: activeStatus(dp.Status)},
		Deploy:        dp,
		Notifications: notes,
	}
	if _, ok := p.s.hook(dp.Repo); ok && dp.Status == store.DeploySucceeded && dp.ToCommit != "" {
		live, err := p.s.app.LiveCommit(c.Request.Context(), dp.Repo)
		if err != nil {
			p.storeFail(c, err, fmt.Sprintf("Deploy %d", id))
			return
		}
		page.CanRollBack = live != dp.ToCommit
	}
	p.render(c, http.StatusOK, "deploy.html", page)
}

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
	// Nodes are the nodes that deploy the repository or ran it, each with its live
	// commit; shown in place of the one live commit when perNode says so.
	Nodes []store.RepoNode
}

// toRepoRow is a repository's status as the page shows it: a checkout that does not exist
// is "not cloned yet".
func toRepoRow(st app.Status) repoRow {
	r := repoRow{Repo: st.Repo, State: st.State, Running: st.Running, Active: st.Active,
		Origin: st.Origin, OriginAhead: st.OriginAhead, Pin: st.Pin, Nodes: st.Nodes}
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
		page.Active = page.Active || r.Active
		page.Repos = append(page.Repos, r)
	}
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
	if _, ok := p.s.hook(name); !ok {
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
	d, err := p.s.replay(c.Request.Context(), id, c.ClientIP())
	var nr notReplayable
	if errors.As(err, &nr) {
		p.fail(c, http.StatusConflict, "This delivery cannot be replayed: "+nr.reason+".")
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

// staticFile serves the embedded style and script; the ETag lets browsers revalidate
// cheaply, since embedded files have no modification time.
func (p *pages) staticFile(c *gin.Context) {
	f, ok := p.static[c.Param("file")]
	if !ok {
		p.fail(c, http.StatusNotFound, "No such file.")
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(c.Writer, c.Request, "", time.Time{}, bytes.NewReader(f.body))
}

// Template helpers.

// ago says how long before now t was, in the largest unit that fits.
func (p *pages) ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := p.s.now().Sub(t)
	switch {
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	case d < 60*24*time.Hour:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
	return t.UTC().Format("2 Jan 2006")
}

// took is a deploy's duration; for one still running, the time so far.
func (p *pages) took(start, end time.Time) string {
	if start.IsZero() {
		return ""
	}
	if end.IsZero() {
		return humanDuration(p.s.now().Sub(start)) + " so far"
	}
	return humanDuration(end.Sub(start))
}

func humanDuration(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func shortHash(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

// commitURL links a commit on the forge, only for an https repository URL and a real
// hash: both come from the payload, and a page must not link to just anything.
func commitURL(repoURL, hash string) string {
	if !strings.HasPrefix(repoURL, "https://") || (len(hash) != 40 && len(hash) != 64) {
		return ""
	}
	for _, r := range hash {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return ""
		}
	}
	return strings.TrimSuffix(repoURL, "/") + "/commit/" + hash
}

// refName shortens refs/heads/main to main and refs/tags/v1 to "tag v1".
func refName(ref string) string {
	if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return b
	}
	if t, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		return "tag " + t
	}
	return ref
}

// tone is the colour class of a status: ok (green), busy (amber), bad (red), info, muted.
func tone(status string) string {
	switch status {
	case store.DeploySucceeded, store.SignatureValid, store.NotificationSent, store.NodeUp:
		return "ok"
	case store.DeployQueued, store.DeployRunning:
		return "busy"
	case store.DeployFailed, store.DeployInterrupted, store.DeliveryRejected, store.SignatureInvalid, store.SignatureMissing,
		store.NotificationDropped, store.NodeDown:
		return "bad"
	case store.DeliveryAccepted:
		return "info"
	}
	return "muted"
}

// rowTone colours a delivery by its outcome: for an accepted one, its deploy's status;
// with a deploy on each of several nodes, the worst of theirs (a failure anywhere is
// red, then anything still queued or running is amber).
func rowTone(d store.Delivery) string {
	if d.Status != store.DeliveryAccepted {
		return tone(d.Status)
	}
	if len(d.Deploys) > 1 {
		worst := ""
		for _, r := range d.Deploys {
			t := tone(r.Status)
			if toneRank[t] > toneRank[worst] {
				worst = t
			}
		}
		return worst
	}
	if d.DeployStatus != "" {
		return tone(d.DeployStatus)
	}
	return tone(d.Status)
}

// toneRank orders tones from the least to the most urgent, for rowTone.
var toneRank = map[string]int{"muted": 1, "info": 2, "ok": 3, "busy": 4, "bad": 5}

// perNode tells whether a delivery's deploys are shown one per node: in a fleet, or when
// it has several.
func perNode(fleet bool, d store.Delivery) bool { return fleet || len(d.Deploys) > 1 }

func activeStatus(status string) bool { return app.ActiveStatus(status) }

// rowActive tells whether any deploy a delivery joined is still queued or running.
func rowActive(d store.Delivery) bool {
	if d.DeployID != 0 && activeStatus(d.DeployStatus) {
		return true
	}
	for _, r := range d.Deploys {
		if activeStatus(r.Status) {
			return true
		}
	}
	return false
}

func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
