// Package config reads config.toml: defaults, strict decoding (an unknown key is an error
// naming its line), resolution and validation of every value, the run_as accounts, and
// the values each part of the gateway needs. config.go owns the types and Load.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/hookgate/hookgate/internal/scrub"
	"github.com/hookgate/hookgate/notify"
	"github.com/hookgate/hookgate/repos"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// Config is config.toml. Secrets are resolved by Load into unexported fields, so nothing
// that prints a Config can print one.
type Config struct {
	Server ServerConfig           `toml:"server"`
	Repos  map[string]*RepoConfig `toml:"repos"`
	// Notify are the [[notify]] targets told about every repository's deploys.
	Notify []*NotifyConfig `toml:"notify"`

	adminToken    string
	maxBody       int64
	maxBodyMemory int64 // 0: server.DefaultMaxBodyMemory, or max_body when larger
}

// ServerConfig is the [server] table.
type ServerConfig struct {
	Listen        string `toml:"listen"`
	Database      string `toml:"database"`     // a SQLite file or a postgres:// URL
	DatabaseEnv   string `toml:"database_env"` // the environment variable holding either
	Node          string `toml:"node"`         // this gateway's name (default: the host name)
	AdminToken    string `toml:"admin_token"`
	AdminTokenEnv string `toml:"admin_token_env"`
	MaxBody       string `toml:"max_body"`
	MaxBodyMemory string `toml:"max_body_memory"`
	// MaxObjectSize is the largest object a fetch may bring (or a delta in it build), and
	// the largest blob an update writes; MaxFetchSize bounds all a fetch inflates.
	MaxObjectSize   string   `toml:"max_object_size"`
	MaxFetchSize    string   `toml:"max_fetch_size"`
	Workers         int      `toml:"workers"`
	MaxClones       int      `toml:"max_clones"`
	ShutdownTimeout string   `toml:"shutdown_timeout"`
	TrustedProxies  []string `toml:"trusted_proxies"`
	Hostnames       []string `toml:"hostnames"`
	Retention       string   `toml:"retention"`
	// UnsignedRecordsPerMinute and UnsignedRecordsPerWindow (per UnsignedRecordsWindow)
	// bound the rejections before authentication that are recorded, all clients together;
	// past them they are counted and logged once a minute (server.UnsignedBudget).
	UnsignedRecordsPerMinute int    `toml:"unsigned_records_per_minute"`
	UnsignedRecordsPerWindow int    `toml:"unsigned_records_per_window"`
	UnsignedRecordsWindow    string `toml:"unsigned_records_window"`
	// UnsignedRetention prunes deliveries without a valid signature older than this, even
	// with retention off; "0" leaves them to retention.
	UnsignedRetention string `toml:"unsigned_retention"`
	// SQLiteSynchronous is "full" (the default: a delivery is on disk before it is
	// answered) or "normal" (it survives a killed process, not a power loss).
	SQLiteSynchronous string `toml:"sqlite_synchronous"`
	// RunAs is the user every repository's commands run as unless it names its own.
	RunAs string `toml:"run_as"`
	// MaxConnections bounds the connections held at once (0: half the open-files limit,
	// at most server.DefaultMaxConnsCap); MaxConnectionsPerClient those of one client
	// address or IPv6 /64 (0: server.DefaultMaxConnsPerClient).
	MaxConnections          int `toml:"max_connections"`
	MaxConnectionsPerClient int `toml:"max_connections_per_client"`
	// MaxHeaderBytes bounds a request's header block ("": server.DefaultMaxHeaderBytes).
	MaxHeaderBytes string `toml:"max_header_bytes"`

	maxHeaderBytes    int // 0: the default
	shutdownTimeout   time.Duration
	retention         time.Duration // 0: keep everything
	unsignedWindow    time.Duration
	unsignedRetention time.Duration // 0: as retention
	database          string        // resolved: the file's path, or the URL (it may hold a password)
	synchronous       store.Synchronous
	objects           repos.ObjectLimits
}

// RepoConfig is one [repos.NAME] table.
type RepoConfig struct {
	Secret     string   `toml:"secret"`
	SecretEnv  string   `toml:"secret_env"`
	SecretFile string   `toml:"secret_file"`
	Path       string   `toml:"path"`
	Branch     string   `toml:"branch"`
	URL        string   `toml:"url"`
	Repository string   `toml:"repository"`
	SSHKey     string   `toml:"ssh_key"`
	KnownHosts string   `toml:"known_hosts"`
	TokenEnv   string   `toml:"token_env"`
	Commands   []string `toml:"commands"`
	Timeout    string   `toml:"timeout"`
	Mode       string   `toml:"mode"`
	// Poll is how often origin's branch head is compared with what is live ("0": never).
	Poll       string   `toml:"poll"`
	Depth      int      `toml:"depth"`
	AllowCIDRs []string `toml:"allow_cidrs"`
	Provider   string   `toml:"provider"` // github (default), gitea (also Forgejo) or gitlab
	RunAs      string   `toml:"run_as"`   // the user the commands run as; default server.run_as
	// Nodes are the gateways ([server] node) that deploy this repository; without it every
	// node whose config lists it does. A node left out still verifies and records its
	// deliveries.
	Nodes []string `toml:"nodes"`
	// Notify are the [[repos.NAME.notify]] targets told about this repository only.
	Notify []*NotifyConfig `toml:"notify"`

	name    string
	allow   []netip.Prefix
	secret  []byte
	token   string
	timeout time.Duration
	runAs   *repos.Account // nil: the gateway's own user
	poll    time.Duration  // 0: off
}

// NotifyConfig is one [[notify]] or [[repos.NAME.notify]] target.
type NotifyConfig struct {
	Name      string   `toml:"name"`       // shown in the history and logs instead of the URL
	Type      string   `toml:"type"`       // webhook or slack
	URL       string   `toml:"url"`        // a Slack URL is a secret: prefer url_env
	URLEnv    string   `toml:"url_env"`    // the environment variable holding the URL
	Secret    string   `toml:"secret"`     // webhook only: signs each body (X-Hookgate-Signature-256)
	SecretEnv string   `toml:"secret_env"` // the environment variable holding that secret
	Events    []string `toml:"events"`     // failure, recovery; both when empty

	url    string
	secret []byte
}

var repoName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// defaults is the configuration before the file is read.
func defaults() *Config {
	return &Config{Server: ServerConfig{
		Listen:          "127.0.0.1:8080",
		MaxBody:         "25MB",
		MaxObjectSize:   "100MB",
		MaxFetchSize:    "4GB",
		Workers:         4,
		MaxClones:       1,
		ShutdownTimeout: "30s",

		UnsignedRecordsPerMinute: server.DefaultUnsignedBudget.PerMinute,
		UnsignedRecordsPerWindow: server.DefaultUnsignedBudget.PerWindow,
		UnsignedRecordsWindow:    "24h",
		UnsignedRetention:        "7d",
	}}
}

// Load reads path strictly (an unknown key is an error naming it and its line),
// resolves relative paths against the file's folder, resolves secrets and validates. Its
// errors, which check, serve, send and a reload print, have URL credentials removed.
func Load(path string) (*Config, error) {
	c, err := loadConfig(path)
	return c, scrub.Error(err)
}

func loadConfig(path string) (*Config, error) {
	c, err := decodeConfig(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config path: %w", err)
	}
	if err := c.resolve(filepath.Dir(abs)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// decodeConfig reads path over the defaults, strictly; nothing is resolved yet.
func decodeConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c := defaults()
	dec := toml.NewDecoder(bytes.NewReader(raw)).DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("%s: %s", path, describeTOMLError(err))
	}
	return c, nil
}

// LoadClient reads what a command that calls the running gateway's API needs:
// the file as strictly as Load (unknown keys refused), but of the values only
// [server] listen and the admin token. An operator running `hookgate rollback` in a shell
// without the repositories' secret_env variables, or not as the run_as-capable root, must
// still reach the API.
func LoadClient(path string) (*Config, error) {
	c, err := decodeConfig(path)
	if err == nil {
		if c.adminToken, err = c.Server.resolveAdminToken(); err != nil {
			err = fmt.Errorf("%s: %w", path, err)
		}
	}
	return c, scrub.Error(err)
}

// resolveAdminToken is the admin token admin_token or admin_token_env gives ("" for none).
func (s *ServerConfig) resolveAdminToken() (string, error) {
	switch {
	case s.AdminToken != "" && s.AdminTokenEnv != "":
		return "", errors.New("server: set admin_token or admin_token_env, not both")
	case s.AdminTokenEnv != "":
		t := os.Getenv(s.AdminTokenEnv)
		if t == "" {
			return "", envUnset("server.admin_token_env", s.AdminTokenEnv)
		}
		return t, nil
	}
	return s.AdminToken, nil
}

func describeTOMLError(err error) string {
	var missing *toml.StrictMissingError
	if errors.As(err, &missing) {
		var msgs []string
		for _, e := range missing.Errors {
			row, col := e.Position()
			msgs = append(msgs, fmt.Sprintf("line %d, column %d: unknown key %q", row, col, strings.Join(e.Key(), ".")))
		}
		return strings.Join(msgs, "; ")
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if m := typeMismatch.FindStringSubmatch(msg); m != nil {
			// go-toml names the Go struct field; the operator wrote a TOML key.
			want := tomlKind(m[2])
			if want == "a number" && m[1] == "float" && !strings.HasPrefix(m[2], "float") {
				want = "a whole number"
			}
			msg = fmt.Sprintf("expected %s, got %s", want, article(m[1]))
			if k := de.Key(); len(k) > 0 {
				msg = strings.Join(k, ".") + ": " + msg
			}
		}
		return fmt.Sprintf("line %d, column %d: %s", row, col, msg)
	}
	return err.Error()
}

// EnvUnsetError is a *_env key whose variable is empty or unset in the gateway's
// environment. A reload cannot fix it: a running process's environment does not change.
type EnvUnsetError struct{ Key, Var string }

func (e *EnvUnsetError) Error() string {
	return fmt.Sprintf("%s: environment variable %s is empty or unset", e.Key, e.Var)
}

func envUnset(key, variable string) error { return &EnvUnsetError{Key: key, Var: variable} }

// validListen checks a listen address as net.Listen would read it, so check refuses what
// serve would fail to bind for its form: host:port with a port from 1 to 65535, and a host
// that is empty (every address), an IP address or a name.
func validListen(addr string) error {
	if addr == "" {
		return errors.New("empty; use host:port, e.g. 127.0.0.1:8080")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:8080, [::1]:8080 or :8080)", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", addr, port)
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if strings.ContainsAny(host, "/:[] ") || strings.HasPrefix(host, "-") {
		return fmt.Errorf("%q: %q is neither an IP address nor a host name", addr, host)
	}
	return nil
}

// typeMismatch matches go-toml's "cannot decode TOML string into struct field
// main.ServerConfig.Workers of type int" (and the same without a struct field).
var typeMismatch = regexp.MustCompile(`^cannot decode TOML ([a-z ]+?) into (?:struct field \S+ of type )?(\S+)$`)

// tomlKind says in TOML's words which value a Go type takes.
func tomlKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map[") || strings.Contains(goType, "."):
		return "a table"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint"):
		return "a number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	}
	return goType
}

// article puts "a" or "an" before a TOML kind ("an integer", "a string").
func article(kind string) string {
	if kind == "" {
		return kind
	}
	if strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// resolve fills in defaults, reads secrets and checks every value; dir anchors relative
// paths so the gateway behaves the same whatever its working directory.
func (c *Config) resolve(dir string) error {
	var errs []error
	s := &c.Server
	if err := validListen(s.Listen); err != nil {
		errs = append(errs, fmt.Errorf("server.listen: %w", err))
	}
	if err := s.resolveDatabase(dir); err != nil {
		errs = append(errs, err)
	}
	if err := s.resolveNode(); err != nil {
		errs = append(errs, err)
	}
	if s.Workers < 1 {
		errs = append(errs, fmt.Errorf("server.workers must be at least 1, not %d", s.Workers))
	}
	if s.MaxClones < 1 {
		errs = append(errs, fmt.Errorf("server.max_clones must be at least 1, not %d", s.MaxClones))
	}
	var err error
	if c.maxBody, err = parseSize(s.MaxBody); err != nil {
		errs = append(errs, fmt.Errorf("server.max_body: %w", err))
	}
	if s.MaxBodyMemory != "" {
		if c.maxBodyMemory, err = parseSize(s.MaxBodyMemory); err != nil {
			errs = append(errs, fmt.Errorf("server.max_body_memory: %w", err))
		} else if c.maxBodyMemory < c.maxBody {
			errs = append(errs, fmt.Errorf("server.max_body_memory (%s) is less than max_body (%s): no body that large could be read", s.MaxBodyMemory, s.MaxBody))
		}
	}
	if s.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("server.max_connections must be at least 1 (or 0 for the default), not %d", s.MaxConnections))
	}
	if s.MaxConnectionsPerClient < 0 {
		errs = append(errs, fmt.Errorf("server.max_connections_per_client must be at least 1 (or 0 for the default), not %d", s.MaxConnectionsPerClient))
	} else if s.MaxConnections > 0 && s.MaxConnectionsPerClient > s.MaxConnections {
		errs = append(errs, fmt.Errorf("server.max_connections_per_client (%d) is more than server.max_connections (%d)", s.MaxConnectionsPerClient, s.MaxConnections))
	}
	if s.MaxHeaderBytes != "" {
		n, err := parseSize(s.MaxHeaderBytes)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("server.max_header_bytes: %w", err))
		case n < 4<<10 || n > 1<<20:
			errs = append(errs, fmt.Errorf("server.max_header_bytes: %q is outside 4KB to 1MB", s.MaxHeaderBytes))
		default:
			s.maxHeaderBytes = int(n)
		}
	}
	if s.objects.MaxObjectSize, err = parseSize(s.MaxObjectSize); err != nil {
		errs = append(errs, fmt.Errorf("server.max_object_size: %w", err))
	}
	if s.objects.MaxFetchSize, err = parseSize(s.MaxFetchSize); err != nil {
		errs = append(errs, fmt.Errorf("server.max_fetch_size: %w", err))
	} else if s.objects.MaxFetchSize < s.objects.MaxObjectSize {
		errs = append(errs, fmt.Errorf("server.max_fetch_size (%s) is less than max_object_size (%s): no object that large could be fetched", s.MaxFetchSize, s.MaxObjectSize))
	}
	if s.shutdownTimeout, err = parseDuration(s.ShutdownTimeout); err != nil {
		errs = append(errs, fmt.Errorf("server.shutdown_timeout: %w", err))
	}
	if c.adminToken, err = s.resolveAdminToken(); err != nil {
		errs = append(errs, err)
	}
	if s.synchronous, err = store.ParseSynchronous(s.SQLiteSynchronous); err != nil {
		errs = append(errs, fmt.Errorf("server.sqlite_synchronous: %w", err))
	}
	if s.Retention != "" {
		if s.retention, err = parseDuration(s.Retention); err != nil {
			errs = append(errs, fmt.Errorf("server.retention: %w", err))
		}
	}
	if s.UnsignedRecordsPerMinute < 0 {
		errs = append(errs, fmt.Errorf("server.unsigned_records_per_minute must be 0 or more, not %d", s.UnsignedRecordsPerMinute))
	}
	if s.UnsignedRecordsPerWindow < 0 {
		errs = append(errs, fmt.Errorf("server.unsigned_records_per_window must be 0 or more, not %d", s.UnsignedRecordsPerWindow))
	}
	if s.unsignedWindow, err = parseDuration(s.UnsignedRecordsWindow); err != nil {
		errs = append(errs, fmt.Errorf("server.unsigned_records_window: %w", err))
	} else if s.unsignedWindow < time.Minute {
		errs = append(errs, fmt.Errorf("server.unsigned_records_window %q: at least 1m", s.UnsignedRecordsWindow))
	}
	if s.UnsignedRetention != "0" {
		if s.unsignedRetention, err = parseDuration(s.UnsignedRetention); err != nil {
			errs = append(errs, fmt.Errorf("server.unsigned_retention: %w; \"0\" leaves them to retention", err))
		}
	}
	for _, p := range s.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				errs = append(errs, fmt.Errorf("server.trusted_proxies: %q is not an IP address or CIDR range", p))
			}
		}
	}
	if _, err := server.ParseHostnames(s.Hostnames); err != nil {
		errs = append(errs, fmt.Errorf("server.hostnames: %w", err))
	}
	if len(c.Repos) == 0 {
		errs = append(errs, errors.New("no [repos.NAME] table: configure at least one repository"))
	}
	global := map[string]bool{}
	for i, n := range c.Notify {
		if err := n.resolve(); err != nil {
			errs = append(errs, fmt.Errorf("notify[%d] (%s): %w", i, n.Name, err))
		}
		if global[n.Name] {
			errs = append(errs, fmt.Errorf("notify[%d]: name %q is used twice", i, n.Name))
		}
		global[n.Name] = true
	}
	for _, name := range c.RepoNames() {
		r := c.Repos[name]
		r.name = name
		if err := r.resolve(dir); err != nil {
			errs = append(errs, fmt.Errorf("repos.%s: %w", name, err))
		}
		own := map[string]bool{}
		for i, n := range r.Notify {
			if err := n.resolve(); err != nil {
				errs = append(errs, fmt.Errorf("repos.%s.notify[%d] (%s): %w", name, i, n.Name, err))
			}
			if global[n.Name] || own[n.Name] {
				errs = append(errs, fmt.Errorf("repos.%s.notify[%d]: name %q is already used by another target of this repository", name, i, n.Name))
			}
			own[n.Name] = true
		}
	}
	errs = append(errs, c.resolveRunAs()...)
	return errors.Join(errs...)
}

// resolve reads the target's URL and secret and checks it. Errors never quote the URL: for
// Slack it is the credential.
func (n *NotifyConfig) resolve() error {
	var errs []error
	if !repoName.MatchString(n.Name) {
		errs = append(errs, errors.New("name is required: 1-100 letters, digits, '.', '_' or '-'"))
	}
	switch n.Type {
	case notify.KindWebhook, notify.KindSlack:
	case "":
		errs = append(errs, fmt.Errorf("type is required: %q or %q", notify.KindWebhook, notify.KindSlack))
	default:
		errs = append(errs, fmt.Errorf("type %q: use %q or %q", n.Type, notify.KindWebhook, notify.KindSlack))
	}
	switch {
	case (n.URL == "") == (n.URLEnv == ""):
		errs = append(errs, errors.New("set exactly one of url or url_env"))
	case n.URLEnv != "":
		if n.url = os.Getenv(n.URLEnv); n.url == "" {
			errs = append(errs, envUnset("url_env", n.URLEnv))
		}
	default:
		n.url = n.URL
	}
	if n.url != "" {
		u, err := url.Parse(n.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("the url is not an http:// or https:// URL"))
		}
	}
	switch {
	case n.Secret != "" && n.SecretEnv != "":
		errs = append(errs, errors.New("set secret or secret_env, not both"))
	case n.SecretEnv != "":
		if n.secret = []byte(os.Getenv(n.SecretEnv)); len(n.secret) == 0 {
			errs = append(errs, envUnset("secret_env", n.SecretEnv))
		}
	default:
		n.secret = []byte(n.Secret)
	}
	switch {
	case n.Type == notify.KindSlack && len(n.secret) > 0:
		errs = append(errs, errors.New("a slack target takes no secret: Slack does not verify signatures (its URL is the credential)"))
	case n.Type == notify.KindWebhook && len(n.secret) == 0 && n.SecretEnv == "":
		errs = append(errs, errors.New("a webhook target needs secret or secret_env, so the receiver can verify X-Hookgate-Signature-256"))
	}
	for _, e := range n.Events {
		if e != notify.EventFailure && e != notify.EventRecovery {
			errs = append(errs, fmt.Errorf("events: %q is not %q or %q", e, notify.EventFailure, notify.EventRecovery))
		}
	}
	return errors.Join(errs...)
}

// target is the notifier's view of n.
func (n *NotifyConfig) target() notify.Target {
	return notify.Target{Name: n.Name, Kind: n.Type, URL: n.url, Secret: n.secret, Events: n.Events}
}

// NotifyTargets are the notifier's targets: global ones and each repository's own.
func (c *Config) NotifyTargets() (global []notify.Target, perRepo map[string][]notify.Target) {
	for _, n := range c.Notify {
		global = append(global, n.target())
	}
	perRepo = map[string][]notify.Target{}
	for name, r := range c.Repos {
		for _, n := range r.Notify {
			perRepo[name] = append(perRepo[name], n.target())
		}
	}
	return global, perRepo
}

func (r *RepoConfig) resolve(dir string) error {
	var errs []error
	if !repoName.MatchString(r.name) {
		errs = append(errs, errors.New("the name must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit (it is the URL path /hooks/NAME)"))
	}
	set := 0
	for _, v := range []string{r.Secret, r.SecretEnv, r.SecretFile} {
		if v != "" {
			set++
		}
	}
	switch {
	case set != 1:
		errs = append(errs, errors.New("set exactly one of secret, secret_env or secret_file"))
	case r.SecretEnv != "":
		r.secret = []byte(os.Getenv(r.SecretEnv))
		if len(r.secret) == 0 {
			errs = append(errs, envUnset("secret_env", r.SecretEnv))
		}
	case r.SecretFile != "":
		r.SecretFile = anchor(dir, r.SecretFile)
		b, err := os.ReadFile(r.SecretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("secret_file: %w", err))
		} else if r.secret = bytes.TrimRight(b, "\r\n"); len(r.secret) == 0 {
			errs = append(errs, fmt.Errorf("secret_file %s is empty", r.SecretFile))
		}
	default:
		r.secret = []byte(r.Secret)
	}
	if r.Path == "" {
		errs = append(errs, errors.New("path is required"))
	}
	r.Path = anchor(dir, r.Path)
	if r.Branch == "" {
		r.Branch = "main"
	}
	if strings.HasPrefix(r.Branch, "refs/") || strings.ContainsAny(r.Branch, " ~^:?*[\\") {
		errs = append(errs, fmt.Errorf("branch %q: give a plain branch name such as main", r.Branch))
	}
	if r.URL != "" && isLocalPath(r.URL) {
		r.URL = anchor(dir, r.URL)
	}
	if r.SSHKey != "" {
		r.SSHKey = anchor(dir, r.SSHKey)
	}
	if r.KnownHosts != "" {
		r.KnownHosts = anchor(dir, r.KnownHosts)
	}
	if r.SSHKey != "" && r.TokenEnv != "" {
		errs = append(errs, errors.New("set ssh_key or token_env, not both"))
	}
	if r.TokenEnv != "" {
		if r.token = os.Getenv(r.TokenEnv); r.token == "" {
			errs = append(errs, envUnset("token_env", r.TokenEnv))
		}
	}
	if r.Repository != "" && strings.Count(r.Repository, "/") != 1 {
		errs = append(errs, fmt.Errorf("repository %q: give it as owner/name", r.Repository))
	}
	if r.Timeout == "" {
		r.Timeout = "10m"
	}
	var err error
	if r.timeout, err = parseDuration(r.Timeout); err != nil {
		errs = append(errs, fmt.Errorf("timeout: %w", err))
	}
	if r.Poll == "" {
		r.Poll = "10m"
	}
	if r.Poll != "0" {
		if r.poll, err = parseDuration(r.Poll); err != nil {
			errs = append(errs, fmt.Errorf("poll: %w; \"0\" turns polling off", err))
		} else if r.poll < time.Second {
			errs = append(errs, fmt.Errorf("poll %q: at least 1s (or \"0\" to turn polling off)", r.Poll))
		}
	}
	if r.Provider == "" {
		r.Provider = server.ProviderGitHub
	}
	if !server.ValidProvider(r.Provider) {
		errs = append(errs, fmt.Errorf("provider %q: use %q (the default), %q (also for Forgejo) or %q",
			r.Provider, server.ProviderGitHub, server.ProviderGitea, server.ProviderGitLab))
	}
	switch r.Mode {
	case "":
		r.Mode = repos.ModeFastForward
	case repos.ModeFastForward, repos.ModeReset:
	default:
		errs = append(errs, fmt.Errorf("mode %q: use %q (the default) or %q", r.Mode, repos.ModeFastForward, repos.ModeReset))
	}
	if r.Depth < 0 {
		errs = append(errs, fmt.Errorf("depth %d: give the number of commits to fetch (1 for the tip only), or leave it out for the whole history", r.Depth))
	}
	for _, c := range r.AllowCIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, aerr := netip.ParseAddr(c)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("allow_cidrs: %q is not a CIDR range such as 192.30.252.0/22", c))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		r.allow = append(r.allow, p.Masked())
	}
	for i, c := range r.Commands {
		if strings.TrimSpace(c) == "" {
			errs = append(errs, fmt.Errorf("commands[%d] is empty", i))
		}
	}
	errs = append(errs, r.checkNodes()...)
	return errors.Join(errs...)
}

// checkNodes checks the nodes list: plain node names, each once. An empty list is refused
// rather than read as "no node": a repository nobody deploys is a mistake, and leaving the
// key out already means "every node".
func (r *RepoConfig) checkNodes() []error {
	if r.Nodes == nil {
		return nil
	}
	if len(r.Nodes) == 0 {
		return []error{errors.New("nodes is empty: list the nodes that deploy this repository, or leave nodes out for every node")}
	}
	var errs []error
	seen := map[string]bool{}
	for i, n := range r.Nodes {
		switch {
		case !store.ValidNodeName(n):
			errs = append(errs, fmt.Errorf("nodes[%d]: %q is not a node name (letters, digits, '.', '_', '-'; at most 63)", i, n))
		case seen[n]:
			errs = append(errs, fmt.Errorf("nodes[%d]: %q is listed twice", i, n))
		}
		seen[n] = true
	}
	return errs
}

// RepoNames returns the configured repository names, sorted.
func (c *Config) RepoNames() []string {
	names := make([]string, 0, len(c.Repos))
	for n := range c.Repos {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Deploys tells whether this node ([server] node) deploys repository name: it is
// configured, and its nodes list is absent or names this node.
func (c *Config) Deploys(name string) bool {
	r, ok := c.Repos[name]
	return ok && (r.Nodes == nil || slices.Contains(r.Nodes, c.Server.Node))
}

// DeployedRepoNames returns the names of the repositories this node deploys, sorted: what
// it registers in the nodes table and runs workers for.
func (c *Config) DeployedRepoNames() []string {
	var names []string
	for _, name := range c.RepoNames() {
		if c.Deploys(name) {
			names = append(names, name)
		}
	}
	return names
}

// UnsignedBudget is what [server] unsigned_records_* allow.
func (c *Config) UnsignedBudget() server.UnsignedBudget {
	s := c.Server
	return server.UnsignedBudget{PerMinute: s.UnsignedRecordsPerMinute, PerWindow: s.UnsignedRecordsPerWindow, Window: s.unsignedWindow}
}

// Hooks is the configuration the HTTP side needs: every configured repository, deployed
// here or not, since any node may receive any delivery.
func (c *Config) Hooks() []server.Hook {
	var hooks []server.Hook
	for _, name := range c.RepoNames() {
		r := c.Repos[name]
		hooks = append(hooks, server.Hook{Name: name, Secret: r.secret, Branch: r.Branch, Repository: r.Repository, Path: r.Path, AllowCIDRs: r.allow, Provider: r.Provider})
	}
	return hooks
}

// RepoList is the deploy configuration of every configured repository, deployed here or
// not (check and send read it).
func (c *Config) RepoList() []repos.Repo { return c.repoList(c.RepoNames()) }

// DeployedRepoList is the configuration the deploy workers need: the repositories this
// node deploys.
func (c *Config) DeployedRepoList() []repos.Repo { return c.repoList(c.DeployedRepoNames()) }

func (c *Config) repoList(names []string) []repos.Repo {
	var out []repos.Repo
	for _, name := range names {
		r := c.Repos[name]
		out = append(out, repos.Repo{
			Spec: repos.Spec{
				Name: name, Path: r.Path, Branch: r.Branch, URL: r.URL, Mode: r.Mode, Depth: r.Depth,
				SSHKey: r.SSHKey, KnownHosts: r.KnownHosts, Token: r.token,
				Limits: c.Server.objects,
			},
			Commands: r.Commands,
			Timeout:  r.timeout,
			RunAs:    r.runAs,
			Poll:     r.poll,
		})
	}
	return out
}

// secretEnvNames lists the environment variables that hold secrets, so deploy commands can
// run without them.
func (c *Config) secretEnvNames() map[string]bool {
	names := map[string]bool{}
	for _, n := range []string{c.Server.AdminTokenEnv, c.Server.DatabaseEnv} {
		if n != "" {
			names[n] = true // a database URL can hold its password
		}
	}
	if store.IsPostgres(c.Database()) {
		// libpq's variable for the password, which the PostgreSQL driver reads too.
		names["PGPASSWORD"] = true
	}
	targets := slices.Clone(c.Notify)
	for _, r := range c.Repos {
		for _, n := range []string{r.SecretEnv, r.TokenEnv} {
			if n != "" {
				names[n] = true
			}
		}
		targets = append(targets, r.Notify...)
	}
	for _, t := range targets {
		for _, n := range []string{t.URLEnv, t.SecretEnv} {
			if n != "" {
				names[n] = true
			}
		}
	}
	return names
}

// CommandEnv is the gateway's environment less the variables that hold its secrets.
func (c *Config) CommandEnv() []string {
	drop := c.secretEnvNames()
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !drop[name] && !strings.HasPrefix(name, "HOOKGATE_") {
			env = append(env, kv)
		}
	}
	return env
}

func anchor(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return filepath.Join(dir, p)
}

// isLocalPath tells a local repository path from a URL (scheme:// or scp-like user@host:path).
func isLocalPath(u string) bool {
	if strings.Contains(u, "://") {
		return false
	}
	if i := strings.Index(u, ":"); i > 0 && !strings.ContainsAny(u[:i], "/") {
		return false
	}
	return true
}

// parseSize reads sizes such as "25MB", "512KiB" or "1048576"; units are powers of 1024.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	num := strings.TrimRight(t, "KMGIB ")
	unit := strings.TrimSpace(t[len(num):])
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size such as 25MB", s)
	}
	mult := map[string]int64{"": 1, "B": 1, "KB": 1 << 10, "KIB": 1 << 10, "MB": 1 << 20, "MIB": 1 << 20, "GB": 1 << 30, "GIB": 1 << 30}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (use B, KB, MB or GB)", s, unit)
	}
	return n * mult, nil
}

// parseDuration reads Go durations plus a "d" suffix for days ("90d").
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a duration such as 10m or 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a duration such as 30s or 10m", s)
	}
	return d, nil
}

// defaultDatabase is the SQLite file used when neither database nor database_env is set.
const defaultDatabase = "data/hookgate.db"

// resolveDatabase reads database or database_env into s.database: a SQLite file's path,
// anchored at dir, or a PostgreSQL URL. Errors never quote a URL, which may hold a password.
func (s *ServerConfig) resolveDatabase(dir string) error {
	v := s.Database
	switch {
	case s.Database != "" && s.DatabaseEnv != "":
		return errors.New("server: set database or database_env, not both")
	case s.DatabaseEnv != "":
		if v = os.Getenv(s.DatabaseEnv); v == "" {
			return envUnset("server.database_env", s.DatabaseEnv)
		}
	case v == "":
		v = defaultDatabase
	}
	if store.IsPostgres(v) {
		if err := store.CheckPostgresURL(v); err != nil {
			return fmt.Errorf("server.database: %w", err)
		}
		s.database = v
		return nil
	}
	if strings.Contains(v, "://") {
		return errors.New("server.database: neither a file path nor a postgres:// or postgresql:// URL")
	}
	s.database = anchor(dir, v)
	if s.DatabaseEnv == "" {
		s.Database = s.database
	}
	return nil
}

// Database is the database the gateway opens: a SQLite file's path or a PostgreSQL URL.
// Never log it as it is: see store.Redact.
func (c *Config) Database() string { return c.Server.database }

// resolveNode defaults the node's name to the host name and checks it.
func (s *ServerConfig) resolveNode() error {
	if s.Node == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("server.node: not set, and the host name is unknown: %w", err)
		}
		s.Node = strings.SplitN(host, ".", 2)[0]
	}
	if !store.ValidNodeName(s.Node) {
		return fmt.Errorf("server.node: %q is not a name (letters, digits, '.', '_', '-'; at most 63)", s.Node)
	}
	return nil
}
