package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gin-gonic/gin"
)

// authKind says how a route group takes the admin token.
type authKind int

const (
	bearerAuth authKind = iota // the API: Authorization: Bearer <token>
	basicAuth                  // the page: HTTP basic auth, the token as password
)

// requireOperator guards the page and the API. With an admin token, the right credential
// is needed (401 otherwise); without one, only loopback clients are answered (403), and
// only under a loopback name or a configured hostname, so that a DNS-rebinding page cannot
// read the history through the operator's browser (403 host_not_allowed).
func (s *Server) requireOperator(kind authKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.adminToken.Load() == nil {
			if !s.fromLoopback(c) {
				writeError(c, http.StatusForbidden, "forbidden",
					"no admin_token is configured, so only loopback clients may use this; set admin_token to allow others")
				return
			}
			if !s.hostAllowed(c.Request.Host) {
				writeError(c, http.StatusForbidden, "host_not_allowed",
					fmt.Sprintf("no admin_token is configured, so only requests to a loopback name or address (localhost, 127.0.0.1, [::1]) or to a name in [server] hostnames are answered, not to %q; add the name to hostnames or set admin_token",
						limit(c.Request.Host, 256)))
				return
			}
			c.Next()
			return
		}
		var given string
		var ok bool
		switch kind {
		case bearerAuth:
			given, ok = strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		case basicAuth:
			_, given, ok = c.Request.BasicAuth()
		}
		if !ok || !s.tokenMatches(given) {
			if kind == basicAuth {
				c.Header("WWW-Authenticate", `Basic realm="hookgate", charset="UTF-8"`)
			} else {
				c.Header("WWW-Authenticate", `Bearer realm="hookgate"`)
			}
			writeError(c, http.StatusUnauthorized, "unauthorized", "missing or wrong admin token")
			return
		}
		c.Next()
	}
}

// tokenMatches compares in constant time; hashing first makes the comparison's time
// independent of the token's length too.
func (s *Server) tokenMatches(given string) bool {
	want := s.adminToken.Load()
	if want == nil {
		return false
	}
	h := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(h[:], *want) == 1
}

// fromLoopback is true for a client on this machine. A loopback peer that forwards for
// someone else (a reverse proxy on the same host) is not one, unless it is a trusted proxy
// and the client it names is on loopback too.
func (s *Server) fromLoopback(c *gin.Context) bool {
	ip, err := netip.ParseAddr(c.ClientIP())
	if err != nil || !ip.Unmap().IsLoopback() {
		return false
	}
	if c.ClientIP() == c.RemoteIP() && (c.GetHeader("X-Forwarded-For") != "" || c.GetHeader("Forwarded") != "" || c.GetHeader("X-Real-Ip") != "") {
		return false
	}
	return true
}
