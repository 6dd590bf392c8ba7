// This file owns the pages' set-up: templates and static files parsed once, the headers
// every page gets, rendering, error pages and the history filter.
package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

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
		"shortGUID": shortGUID,
		"since":     p.since,
		"httpTone":  httpTone,
		"commitURL": commitURL,
		"refName":   refName,
		"tone":      tone,
		"rowTone":   rowTone,
		"active":    activeStatus,
		"rowActive": rowActive,
		"size":      byteSize,
		"perNode":   perNode,
		"targets":   targetRows,
		"inc":       func(i int) int { return i + 1 },
	}
	for _, name := range []string{"index.html", "deploys.html", "delivery.html", "deploy.html", "repos.html", "nodes.html", "error.html"} {
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
	g.GET("/deploys", p.deploys)
	g.GET("/deploys/:id", p.deploy)
	// The deploy page's EventSource cannot send the API's bearer token: the same stream
	// under the pages' own guard.
	g.GET("/deploys/:id/log", s.apiDeployLog)
	g.GET("/repos", p.repos)
	g.GET("/nodes", p.nodes)
	g.POST("/repos/:name/deploy", p.deployNow)
	g.POST("/repos/:name/rollback", p.rollback)
	g.POST("/repos/:name/pin", p.pin)
	g.POST("/repos/:name/unpin", p.unpin)
	g.POST("/repos/:name/bad/:commit/clear", p.clearBad)
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
	Nav    string // "history", "deploys", "repos" or "nodes": the current menu entry
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
