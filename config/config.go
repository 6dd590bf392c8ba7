// Package config reads config.toml: defaults, strict decoding (an unknown key is an error
// naming its line), resolution and validation of every value, the run_as accounts, and
// the values each part of the gateway needs. config.go owns the types and Load.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/hookgate/hookgate/internal/scrub"
	"github.com/hookgate/hookgate/repos"
	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// Config is config.toml. Secrets are resolved by Load into unexported fields, so nothing
// that prints a Config can print one.
type Config struct {
	Server ServerConfig           `toml:"server"`
	Repos  map[string]*RepoConfig `toml:"repos"`
	// Hooks are the [hooks.NAME] endpoints that several targets ([repos.NAME] hook = NAME)
	// share. A [repos.NAME] with its own secret is a hook of its own as well.
	HookTables map[string]*HookConfig `toml:"hooks"`
	// Notify are the [[notify]] targets told about every repository's deploys.
	Notify []*NotifyConfig `toml:"notify"`
	// Forges are the [forges.NAME] tables targets report their deploys to (report).
	Forges map[string]*ForgeConfig `toml:"forges"`

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
	// PublicURL is where people reach the gateway's pages: forge statuses link to
	// PublicURL/deploys/ID ("": no link).
	PublicURL string `toml:"public_url"`

	maxHeaderBytes    int // 0: the default
	shutdownTimeout   time.Duration
	retention         time.Duration // 0: keep everything
	unsignedWindow    time.Duration
	unsignedRetention time.Duration // 0: as retention
	database          string        // resolved: the file's path, or the URL (it may hold a password)
	synchronous       store.Synchronous
	objects           checkout.ObjectLimits
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
	// Report names the [forges.NAME] this target reports its deploys to; the other
	// report keys and environment* tune it (forges.go).
	Report            string `toml:"report"`
	ReportContext     string `toml:"report_context"`
	ReportDeployments bool   `toml:"report_deployments"`
	Environment       string `toml:"environment"`
	EnvironmentURL    string `toml:"environment_url"`
	// Health is the [repos.NAME.health] check run after each deploy; nil: none.
	Health *HealthConfig `toml:"health"`
	// Hook names the hook ([hooks.NAME], or a [repos.NAME] with its own secret) this target
	// takes its deliveries from; such a target sets no secret, provider, repository or
	// allow_cidrs and has no endpoint of its own.
	Hook string `toml:"hook"`
	// Tags makes this a tag target: pushes of tags matching this path.Match glob deploy
	// (not with branch).
	Tags string `toml:"tags"`
	// Paths: deploy only when a file matching one of these (** any depth) changed.
	Paths []string `toml:"paths"`
	// RequireChecks and ChecksTimeout make push and reconcile deploys wait for the
	// commit's checks on the report forge (forges.go).
	RequireChecks []string `toml:"require_checks"`
	ChecksTimeout string   `toml:"checks_timeout"`

	name    string
	allow   []netip.Prefix
	secret  []byte
	token   string
	timeout time.Duration
	runAs   *repos.Account // nil: the gateway's own user
	poll    time.Duration  // 0: off
	// checksTimeout is checks_timeout resolved.
	checksTimeout time.Duration
}

// HookConfig is one [hooks.NAME] table: an endpoint POST /hooks/NAME and its
// authentication, shared by the targets that name it.
type HookConfig struct {
	Secret     string   `toml:"secret"`
	SecretEnv  string   `toml:"secret_env"`
	SecretFile string   `toml:"secret_file"`
	Repository string   `toml:"repository"`
	AllowCIDRs []string `toml:"allow_cidrs"`
	Provider   string   `toml:"provider"` // github (default), gitea (also Forgejo) or gitlab

	allow  []netip.Prefix
	secret []byte
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

// EnvUnsetError is a *_env key whose variable is empty or unset in the gateway's
// environment. A reload cannot fix it: a running process's environment does not change.
type EnvUnsetError struct{ Key, Var string }

func (e *EnvUnsetError) Error() string {
	return fmt.Sprintf("%s: environment variable %s is empty or unset", e.Key, e.Var)
}

func envUnset(key, variable string) error { return &EnvUnsetError{Key: key, Var: variable} }
