package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"
)

// sameOrigin refuses state-changing requests that a browser sent on behalf of another
// site (net/http's CrossOriginProtection: Sec-Fetch-Site, else Origin against Host). It
// runs on the engine, ahead of every route, so a POST route added anywhere later gets it
// without asking; only the hook endpoint is exempt, since forges post to it from their own
// servers and a signature, not the browser's ambient credentials, authenticates it.
// Clients that send neither header (curl, scripts) pass: they carry no one's cookies or
// cached basic auth. Without an admin token this is what keeps a page the operator visits
// from posting to the loopback API.
func (s *Server) sameOrigin(c *gin.Context) {
	if isHookRoute(c.FullPath()) {
		c.Next()
		return
	}
	if err := s.cop.Check(c.Request); err != nil {
		writeError(c, http.StatusForbidden, "cross_origin",
			"this request came from another site (its Sec-Fetch-Site or Origin header says so), so it was refused; "+
				"use hookgate's own pages, or a client that sends neither header")
		return
	}
	c.Next()
}

// isHookRoute is true for the webhook endpoint's routes, which the origin check skips.
func isHookRoute(fullPath string) bool { return strings.HasPrefix(fullPath, "/hooks/") }

// hostAllowed says whether an operator request's Host names this gateway when no admin
// token is set. A DNS-rebinding page reaches the loopback listener under its own name, so
// only loopback names and addresses are answered, plus the names the operator listed in
// [server] hostnames (e.g. the proxy's public name, for a browser on the host itself).
// The port is ignored: it does not tell a rebinding page from the operator.
func (s *Server) hostAllowed(hostport string) bool {
	h := normalizeHost(hostport)
	if h == "" {
		return false
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		// RFC 6761: browsers resolve localhost and *.localhost to loopback themselves,
		// never through DNS an attacker controls.
		return true
	}
	if ip, err := netip.ParseAddr(h); err == nil && ip.Unmap().IsLoopback() {
		return true
	}
	return (*s.hostnames.Load())[h]
}

// normalizeHost returns the Host header's name without port, brackets or one trailing
// dot, in lower case; an address in its canonical form.
func normalizeHost(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Unmap().String()
	}
	return h
}

// hostLabel is one DNS label: letters, digits and inner hyphens (underscores too, which
// some internal names carry).
var hostLabel = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)

// ParseHostnames checks the [server] hostnames entries (host names or IP addresses, no
// scheme, port or path) and returns them as the set hostAllowed looks names up in.
func ParseHostnames(names []string) (map[string]bool, error) {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		if ip, err := netip.ParseAddr(strings.Trim(n, "[]")); err == nil {
			set[ip.Unmap().String()] = true
			continue
		}
		h := strings.ToLower(strings.TrimSuffix(n, "."))
		ok := h != "" && len(h) <= 253 && !strings.HasPrefix(h, "*")
		for _, label := range strings.Split(h, ".") {
			ok = ok && hostLabel.MatchString(label)
		}
		if !ok {
			return nil, fmt.Errorf("%q is not a host name or IP address (write it as the browser's address bar shows it, without scheme, port, path or wildcard, e.g. \"hooks.example.com\")", limit(n, 100))
		}
		set[h] = true
	}
	return set, nil
}
