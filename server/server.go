// Package server is hookgate's HTTP side and the only package that imports Gin: the hook
// endpoint with its signature check, the health check, and (for operators) the history
// page and API.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/app"
	"github.com/hookgate/hookgate/store"
)

// Hook is one configured repository as the hook endpoint and the history see it.
type Hook struct {
	Name       string
	Secret     []byte
	Branch     string
	Repository string // optional owner/name the payload must name
	Path       string // the checkout, read for its HEAD on the repositories page
	// AllowCIDRs, when set, are the only sources the hook accepts (e.g. GitHub's hook
	// ranges); others get 403 before their body is read.
	AllowCIDRs []netip.Prefix
	// Provider is the forge whose webhooks the hook takes: ProviderGitHub (also for ""),
	// ProviderGitea (and Forgejo) or ProviderGitLab. Only that forge's scheme verifies.
	Provider string
	// Tags makes the hook a tag target (see Target.Tags) when it has no Targets.
	Tags string
	// Paths are the own target's paths (see Target.Paths) when it has no Targets.
	Paths []string
	// Targets are the deploy targets of a hook several targets share ([hooks.NAME], or a
	// [repos.NAME] that others name); nil when the hook is its own one target (Name,
	// Branch, Tags, Path), as every hook was before.
	Targets []Target
}

// Target is one deploy target ([repos.NAME]) of a Hook.
type Target struct {
	Name   string
	Branch string // the branch it deploys, when Tags is ""
	Tags   string // the path.Match glob of the tags it deploys
	Path   string // the checkout
	// Paths are the globs of the files whose change it deploys (nil: every push), shown
	// on the repositories page and in the API.
	Paths []string
}

// Deployer is the worker side as the server sees it: it tells which deploy runs now (the
// store wakes the workers of what it queues, see store.OnQueued).
type Deployer interface {
	Running(repo string) int64
}

// Options configures a Server.
type Options struct {
	Hooks   []Hook
	MaxBody int64
	// MaxBodyMemory bounds the request body bytes all hook requests hold in memory at once
	// (default DefaultMaxBodyMemory, or MaxBody when that is larger); past it new bodies
	// get 503.
	MaxBodyMemory  int64
	AdminToken     string
	TrustedProxies []string // proxies whose X-Forwarded-For is believed; none by default
	// Hostnames are the Host names, besides loopback ones, that the page and API answer
	// when no admin token is set (see hostAllowed).
	Hostnames []string
	Logger    *slog.Logger
	// Reload, when set, serves POST /api/v1/reload (main wires it to the config file).
	Reload Reloader
	// ReadTimeout bounds reading one request, headers and body, so a slow-loris client
	// cannot hold a connection (default 60s; headers alone get at most 10s).
	ReadTimeout time.Duration
	// Unsigned bounds the unauthenticated rejections recorded; the zero value means
	// DefaultUnsignedBudget.
	Unsigned UnsignedBudget
	// MaxConns bounds the connections LimitListener lets through at once (default
	// DefaultMaxConns); MaxConnsPerClient those from one client address, or IPv6 /64
	// (default DefaultMaxConnsPerClient, at most MaxConns). Trusted proxies count only
	// towards MaxConns.
	MaxConns, MaxConnsPerClient int
	// MaxHeaderBytes bounds a request's header block on every route (default
	// DefaultMaxHeaderBytes); a larger one gets 431.
	MaxHeaderBytes int
}

// Server answers webhook deliveries and operators.
type Server struct {
	store    *store.Store
	deployer Deployer
	// app carries out what operators ask for; its repositories follow the hooks.
	app       *app.App
	readTO    time.Duration
	maxHeader int
	conns     *connLimits
	reload    Reloader
	log       *slog.Logger
	// streams ends the log streams (api_log.go) when the HTTP server shuts down: they
	// would otherwise hold Shutdown as long as the deploy they follow runs.
	streams    context.Context
	endStreams context.CancelFunc

	// What a reload swaps (see Apply).
	hooks   atomic.Pointer[hookSet]
	maxBody atomic.Int64
	bodyMem bodyMemory // its limit is max_body_memory
	// adminToken is the SHA-256 of the token, nil when none is set.
	adminToken atomic.Pointer[[]byte]
	// hostnames are Settings.Hostnames as a set (see hostAllowed); never nil.
	hostnames atomic.Pointer[map[string]bool]

	// cop refuses cross-site state-changing requests (see sameOrigin).
	cop *http.CrossOriginProtection

	now    func() time.Time
	engine *gin.Engine

	unknownHooks atomic.Int64
	rejects      *rejectLimiter
	budget       *unsignedBudget
	metrics      *metrics
}

// New builds the server and its routes.
func New(opts Options, st *store.Store, d Deployer) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{
		store:    st,
		deployer: d,
		log:      opts.Logger,
		reload:   opts.Reload,
		now:      func() time.Time { return time.Now().UTC() },
		rejects:  newRejectLimiter(maxTrackedClients),
		budget:   newUnsignedBudget(opts.Logger),
		readTO:   opts.ReadTimeout,
		cop:      http.NewCrossOriginProtection(),
	}
	s.app = app.New(st, d, nil, opts.Logger)
	s.streams, s.endStreams = context.WithCancel(context.Background())
	if s.readTO <= 0 {
		s.readTO = 60 * time.Second
	}
	s.maxHeader = opts.MaxHeaderBytes
	if s.maxHeader <= 0 {
		s.maxHeader = DefaultMaxHeaderBytes
	}
	trusted, err := parsePrefixes(opts.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	s.conns = newConnLimits(opts.MaxConns, opts.MaxConnsPerClient, trusted)
	if err := s.Apply(Settings{Hooks: opts.Hooks, MaxBody: opts.MaxBody,
		MaxBodyMemory: opts.MaxBodyMemory, AdminToken: opts.AdminToken, Hostnames: opts.Hostnames,
		Unsigned: opts.Unsigned}); err != nil {
		return nil, err
	}
	s.metrics = s.newMetrics()

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// Without this gin believes any client's X-Forwarded-For.
	if err := r.SetTrustedProxies(opts.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	// sameOrigin sits on the engine, not on a group, so that no state-changing route can
	// be added without it (only /hooks/ is exempt).
	r.Use(s.recover, s.sameOrigin)
	r.NoRoute(func(c *gin.Context) { writeError(c, http.StatusNotFound, "not_found", "no such route") })
	r.NoMethod(func(c *gin.Context) {
		writeError(c, http.StatusMethodNotAllowed, "method_not_allowed", "method "+c.Request.Method+" is not allowed here")
	})

	r.POST("/hooks/:name", s.handleHook)
	r.GET("/healthz", s.handleHealth)
	r.GET("/metrics", s.requireOperator(bearerAuth), gin.WrapH(s.metricsHandler()))
	s.registerAPI(r.Group("/api/v1", s.requireOperator(bearerAuth)))
	s.registerPages(r.Group("/", s.requireOperator(basicAuth)))
	s.engine = r
	return s, nil
}

// SetNow replaces the clock; tests use it.
func (s *Server) SetNow(now func() time.Time) { s.now = now; s.app.SetNow(now) }

// Handler returns the HTTP handler with every route.
func (s *Server) Handler() http.Handler { return s.engine }

// UnknownHooks counts requests to hook names that are not configured; they are not stored.
func (s *Server) UnknownHooks() int64 { return s.unknownHooks.Load() }

// DroppedRejections counts unauthenticated rejections answered 429 and not stored.
func (s *Server) DroppedRejections() int64 { return s.rejects.Dropped() }

// UnrecordedRejections counts unauthenticated rejections answered as usual but not
// stored, past the unsigned budget.
func (s *Server) UnrecordedRejections() int64 { return s.budget.Refused() }

// HTTPServer wraps the handler in an http.Server with all four timeouts, so a slow or idle
// client cannot hold a connection forever, and the header cap. Serve it on LimitListener,
// which bounds how many connections are held.
func (s *Server) HTTPServer(addr string) *http.Server {
	hs := &http.Server{
		Addr:              addr,
		Handler:           s.engine,
		ReadHeaderTimeout: min(10*time.Second, s.readTO),
		ReadTimeout:       s.readTO,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		// net/http reads up to 4 KiB past this before it answers 431.
		MaxHeaderBytes: s.maxHeader,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(s.endStreams)
	return hs
}

func (s *Server) handleHealth(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Error("health check failed", "err", err)
		writeError(c, http.StatusServiceUnavailable, "unavailable", "database does not answer")
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// recover turns a panic into a 500 without leaking the panic value to the client.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in handler", "path", c.FullPath(), "panic", fmt.Sprint(v))
			if !c.Writer.Written() {
				writeError(c, http.StatusInternalServerError, "internal", "internal error")
			}
			c.Abort()
		}
	}()
	c.Next()
}

// errorBody is the one error shape every JSON answer uses.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(c *gin.Context, status int, code, msg string) {
	c.AbortWithStatusJSON(status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// parsePrefixes reads IP addresses and CIDR ranges (trusted_proxies) as prefixes.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range list {
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR range", v)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
