package server

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Connections held at once. Every open connection costs a file descriptor, a goroutine and
// its buffers, and one that is still sending its header block holds up to MaxHeaderBytes
// of it for up to the 10 s header timeout. Without a bound, 12,000 clients each sending
// 63 KB of headers held 1 GB; the only limit was the open-files limit, whose exhaustion
// also starves the database, git and deploy commands of descriptors.
const (
	// DefaultMaxConnsCap caps the default total: what it costs (PERFORMANCE.md, held
	// headers) stays within a small host's memory whatever the open-files limit.
	DefaultMaxConnsCap = 4096
	// DefaultMaxConnsPerClient is the default bound per client address (IPv6: per /64, as
	// one host is usually given a whole /64). A forge's deliveries are answered in
	// milliseconds, a few at once from one address; 256 leaves room for a proxy not listed
	// in trusted_proxies and for load tools (scripts/loadtest uses 64), and one address
	// holding them all costs under 10 MB.
	DefaultMaxConnsPerClient = 256
	// DefaultMaxHeaderBytes bounds a request's header block, on every route. GitHub,
	// Gitea and GitLab send about 1 KB (GitHub under 8 KB); a browser's pages send Basic
	// credentials and whatever cookies other local services set, which Node.js and nginx
	// also fit in 16 KB. Larger blocks get net/http's 431.
	DefaultMaxHeaderBytes = 16 << 10
)

// DefaultMaxConns is the default total bound: half the open-files limit the process has
// now (Go raises the soft limit to the hard one at start), leaving the other half to the
// database, git, deploy commands and logs, and at most DefaultMaxConnsCap.
func DefaultMaxConns() int {
	n, ok := openFilesLimit()
	if !ok {
		return DefaultMaxConnsCap
	}
	return int(max(1, min(n/2, DefaultMaxConnsCap)))
}

// refusedResponse answers a connection over a limit without reading anything from it: one
// write into a fresh socket's empty send buffer, then close.
var refusedResponse = func() []byte {
	body := `{"error":{"code":"too_many_connections","message":"the gateway holds as many connections as it allows; try again"}}`
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\n" +
		"Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// connLimits counts the connections open now, in all and per client, and refuses new ones
// past either bound at accept. Trusted proxies count only towards the total: every client
// behind them shares their address.
type connLimits struct {
	max, perClient int
	trusted        []netip.Prefix

	mu       sync.Mutex
	open     int
	byClient map[netip.Prefix]int

	refusedTotal, refusedClient atomic.Int64
}

func newConnLimits(max, perClient int, trusted []netip.Prefix) *connLimits {
	if max <= 0 {
		max = DefaultMaxConns()
	}
	if perClient <= 0 {
		perClient = DefaultMaxConnsPerClient
	}
	return &connLimits{max: max, perClient: min(perClient, max), trusted: trusted, byClient: map[netip.Prefix]int{}}
}

// clientKey is the address a client's connections are counted under, and false for a
// trusted proxy or an address that is not IP.
func (l *connLimits) clientKey(a net.Addr) (netip.Prefix, bool) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{}, false
	}
	ip := ap.Addr().Unmap().WithZone("")
	for _, p := range l.trusted {
		if p.Contains(ip) {
			return netip.Prefix{}, false
		}
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p, true
}

// take counts a new connection from key, or says which bound refuses it.
func (l *connLimits) take(key netip.Prefix, perClient bool) (ok bool, byClient bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.max {
		return false, false
	}
	if perClient {
		if l.byClient[key] >= l.perClient {
			return false, true
		}
		l.byClient[key]++
	}
	l.open++
	return true, false
}

func (l *connLimits) release(key netip.Prefix, perClient bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if perClient {
		if l.byClient[key]--; l.byClient[key] <= 0 {
			delete(l.byClient, key)
		}
	}
}

// Open is the number of connections held now.
func (l *connLimits) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// limitListener is a listener whose Accept returns only connections within the bounds; it
// answers the others itself.
type limitListener struct {
	net.Listener
	l *connLimits
}

func (ln *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, perClient := ln.l.clientKey(c.RemoteAddr())
		ok, byClient := ln.l.take(key, perClient)
		if ok {
			return &countedConn{Conn: c, release: func() { ln.l.release(key, perClient) }}, nil
		}
		if byClient {
			ln.l.refusedClient.Add(1)
		} else {
			ln.l.refusedTotal.Add(1)
		}
		// Nothing is read: the refused connection costs one write and a close, here in the
		// accept loop. The deadline only guards against a send buffer that is not empty.
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		c.Write(refusedResponse)
		c.Close()
	}
}

// countedConn gives its place back once, when it is first closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// LimitListener wraps ln so that the connections it hands to the http.Server stay within
// max_connections in all and max_connections_per_client per client address (IPv6: /64);
// one past either is answered 503 too_many_connections and closed at once, without a byte
// being read. Serve HTTPServer's server on it.
func (s *Server) LimitListener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, l: s.conns}
}

// ConnLimits reports the bounds in force: connections in all and per client address.
func (s *Server) ConnLimits() (total, perClient int) { return s.conns.max, s.conns.perClient }

// CloseWrite keeps net/http's graceful close (half-close, then a short wait, so a client
// still sending reads the answer instead of a reset) working through the wrapper.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
