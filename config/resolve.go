// resolve.go owns resolving and checking the decoded file: every [server] and
// [repos.NAME] value, paths anchored at the file's folder, sizes and durations.

package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

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
	errs = append(errs, c.resolveForges(dir)...)
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
		for _, err := range r.resolveReport(c.Forges, c.repositoryOf(r)) {
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
		if r.Health != nil {
			if err := r.Health.resolve("repos." + name + ".health"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, c.resolveHooks(dir)...)
	errs = append(errs, c.resolveRunAs()...)
	return errors.Join(errs...)
}

// resolveHooks checks the [hooks.NAME] tables and how targets name them: each hook
// defined once, each target's hook defined, each hook with a target, and no two targets
// of one node on one path.
func (c *Config) resolveHooks(dir string) []error {
	var errs []error
	for _, name := range sortedKeys(c.HookTables) {
		h := c.HookTables[name]
		if !repoName.MatchString(name) {
			errs = append(errs, fmt.Errorf("hooks.%s: the name must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit (it is the URL path /hooks/NAME)", name))
		}
		a := authKeys{Secret: h.Secret, SecretEnv: h.SecretEnv, SecretFile: h.SecretFile, Repository: h.Repository, AllowCIDRs: h.AllowCIDRs, Provider: h.Provider}
		for _, err := range a.resolve(dir) {
			errs = append(errs, fmt.Errorf("hooks.%s: %w", name, err))
		}
		h.SecretFile, h.Provider, h.secret, h.allow = a.secretFile, a.provider, a.secret, a.allow
		if r, ok := c.Repos[name]; ok && r.Hook == "" {
			errs = append(errs, fmt.Errorf("hooks.%s and repos.%s both define hook %q: a [repos.NAME] with its own secret is a hook of its name; keep one of them (or set hook in repos.%s)", name, name, name, name))
		}
		used := false
		for _, r := range c.Repos {
			used = used || r.Hook == name
		}
		if !used {
			errs = append(errs, fmt.Errorf("hooks.%s: no [repos.NAME] table has hook = %q", name, name))
		}
	}
	for _, name := range c.RepoNames() {
		r := c.Repos[name]
		if r.Hook == "" {
			continue
		}
		if _, ok := c.HookTables[r.Hook]; ok {
			continue
		}
		if owner, ok := c.Repos[r.Hook]; ok && owner.Hook == "" {
			continue // a [repos.NAME] with its own secret
		}
		errs = append(errs, fmt.Errorf("repos.%s: hook %q: no [hooks.%s] table, nor a [repos.%s] with its own secret", name, r.Hook, r.Hook, r.Hook))
	}
	names := c.RepoNames()
	for i, a := range names {
		for _, b := range names[i+1:] {
			ra, rb := c.Repos[a], c.Repos[b]
			if ra.Path != "" && ra.Path == rb.Path && sharesNode(ra.Nodes, rb.Nodes) {
				errs = append(errs, fmt.Errorf("repos.%s and repos.%s: both have path %s; give each target a checkout of its own (or nodes with no node in common)", a, b, ra.Path))
			}
		}
	}
	return errs
}

// sharesNode tells whether two nodes lists have a node in common (nil: every node).
func sharesNode(a, b []string) bool {
	if a == nil || b == nil {
		return true
	}
	for _, n := range a {
		if slices.Contains(b, n) {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (r *RepoConfig) resolve(dir string) error {
	var errs []error
	if !repoName.MatchString(r.name) {
		errs = append(errs, errors.New("the name must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit (it is the URL path /hooks/NAME)"))
	}
	if r.Hook != "" {
		// The hook authenticates; a target bound to one has nothing of its own to check.
		for _, k := range []struct{ key, v string }{{"secret", r.Secret}, {"secret_env", r.SecretEnv},
			{"secret_file", r.SecretFile}, {"provider", r.Provider}, {"repository", r.Repository}} {
			if k.v != "" {
				errs = append(errs, fmt.Errorf("set hook or %s, not both: a target bound to hook %q takes its authentication from it", k.key, r.Hook))
			}
		}
		if r.AllowCIDRs != nil {
			errs = append(errs, fmt.Errorf("set hook or allow_cidrs, not both: a target bound to hook %q takes its authentication from it", r.Hook))
		}
	} else {
		a := authKeys{Secret: r.Secret, SecretEnv: r.SecretEnv, SecretFile: r.SecretFile, Repository: r.Repository, AllowCIDRs: r.AllowCIDRs, Provider: r.Provider}
		errs = append(errs, a.resolve(dir)...)
		r.SecretFile, r.Provider, r.secret, r.allow = a.secretFile, a.provider, a.secret, a.allow
	}
	if r.Path == "" {
		errs = append(errs, errors.New("path is required"))
	}
	r.Path = anchor(dir, r.Path)
	switch {
	case r.Branch != "" && r.Tags != "":
		errs = append(errs, fmt.Errorf("set branch or tags, not both: a target deploys one branch (branch = %q) or the tags matching a glob (tags = %q)", r.Branch, r.Tags))
	case r.Tags != "":
		if _, err := path.Match(r.Tags, ""); err != nil || strings.HasPrefix(r.Tags, "refs/") {
			errs = append(errs, fmt.Errorf("tags %q: give a glob of tag names in Go's path.Match syntax, such as \"v*\"", r.Tags))
		}
	case r.Branch == "":
		r.Branch = "main"
	}
	for i, p := range r.Paths {
		if err := checkPathPattern(p); err != nil {
			errs = append(errs, fmt.Errorf("paths[%d] %q: %w", i, p, err))
		}
	}
	if r.Tags == "" && (strings.HasPrefix(r.Branch, "refs/") || strings.ContainsAny(r.Branch, " ~^:?*[\\")) {
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
	switch r.Mode {
	case "":
		r.Mode = checkout.ModeFastForward
	case checkout.ModeFastForward, checkout.ModeReset:
	default:
		errs = append(errs, fmt.Errorf("mode %q: use %q (the default) or %q", r.Mode, checkout.ModeFastForward, checkout.ModeReset))
	}
	if r.Depth < 0 {
		errs = append(errs, fmt.Errorf("depth %d: give the number of commits to fetch (1 for the tip only), or leave it out for the whole history", r.Depth))
	}
	for i, c := range r.Commands {
		if strings.TrimSpace(c) == "" {
			errs = append(errs, fmt.Errorf("commands[%d] is empty", i))
		}
	}
	errs = append(errs, r.checkNodes()...)
	return errors.Join(errs...)
}

// authKeys are the authentication keys of a hook: a [hooks.NAME] table's, or a
// [repos.NAME]'s that has its own secret.
type authKeys struct {
	Secret, SecretEnv, SecretFile, Repository string
	AllowCIDRs                                []string
	Provider                                  string

	secretFile, provider string
	secret               []byte
	allow                []netip.Prefix
}

// resolve reads the secret and checks the other keys; errors name the keys as TOML does.
func (a *authKeys) resolve(dir string) []error {
	var errs []error
	a.secretFile, a.provider = a.SecretFile, a.Provider
	set := 0
	for _, v := range []string{a.Secret, a.SecretEnv, a.SecretFile} {
		if v != "" {
			set++
		}
	}
	switch {
	case set != 1:
		errs = append(errs, errors.New("set exactly one of secret, secret_env or secret_file"))
	case a.SecretEnv != "":
		a.secret = []byte(os.Getenv(a.SecretEnv))
		if len(a.secret) == 0 {
			errs = append(errs, envUnset("secret_env", a.SecretEnv))
		}
	case a.SecretFile != "":
		a.secretFile = anchor(dir, a.SecretFile)
		b, err := os.ReadFile(a.secretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("secret_file: %w", err))
		} else if a.secret = bytes.TrimRight(b, "\r\n"); len(a.secret) == 0 {
			errs = append(errs, fmt.Errorf("secret_file %s is empty", a.secretFile))
		}
	default:
		a.secret = []byte(a.Secret)
	}
	if a.provider == "" {
		a.provider = server.ProviderGitHub
	}
	if a.Repository != "" && a.provider == server.ProviderGitLab {
		// GitLab names a project by its path in nested groups, or by its numeric id.
		if !gitlabProject.MatchString(a.Repository) {
			errs = append(errs, fmt.Errorf("repository %q: give it as group/project, group/subgroup/project or the project's numeric id", a.Repository))
		}
	} else if a.Repository != "" && strings.Count(a.Repository, "/") != 1 {
		errs = append(errs, fmt.Errorf("repository %q: give it as owner/name", a.Repository))
	}
	if !server.ValidProvider(a.provider) {
		errs = append(errs, fmt.Errorf("provider %q: use %q (the default), %q (also for Forgejo) or %q",
			a.provider, server.ProviderGitHub, server.ProviderGitea, server.ProviderGitLab))
	}
	for _, c := range a.AllowCIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			ip, aerr := netip.ParseAddr(c)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("allow_cidrs: %q is not a CIDR range such as 192.30.252.0/22", c))
				continue
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		a.allow = append(a.allow, p.Masked())
	}
	return errs
}

// checkPathPattern checks one paths entry: a slash-separated pattern relative to the
// repository's root, each element "**" (any depth) or a path.Match glob.
func checkPathPattern(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return errors.New("give a pattern relative to the repository's root, such as \"docs/**\" or \"go.mod\"")
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("element %q: give a pattern relative to the repository's root, such as \"docs/**\"", el)
		}
		if el == "**" {
			continue
		}
		if _, err := path.Match(el, ""); err != nil {
			return fmt.Errorf("element %q is not a glob in Go's path.Match syntax (** for any depth)", el)
		}
	}
	return nil
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
