package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/store"
)

// UnsignedBudget bounds how many rejections before authentication (a missing or invalid
// signature, a source outside allow_cidrs, a body that could not be read) are recorded,
// across all clients together. The per-client limiter (limit.go) keeps one client from
// using the budget up alone; the budget bounds what very many clients (an IPv6 block, a
// botnet) can write. Past it a rejection is answered as before and counted, not recorded.
// Deliveries with a valid signature never touch it.
type UnsignedBudget struct {
	PerMinute int           // recorded per calendar minute; 0 records none
	PerWindow int           // recorded per Window
	Window    time.Duration // aligned to the Unix epoch: 24h is each UTC day
}

// DefaultUnsignedBudget is the budget of a server whose options name none. With rows of at
// most 2,048 bytes (see trimUnsigned) it lets rejections write at most about 2 MB a day.
var DefaultUnsignedBudget = UnsignedBudget{PerMinute: 60, PerWindow: 1000, Window: 24 * time.Hour}

// unsignedSummaryEvery is how often the rejections refused by the budget are logged, as
// one line for all of them.
const unsignedSummaryEvery = time.Minute

// unsignedBudget counts what UnsignedBudget allows in fixed periods: the current minute
// and the current window.
type unsignedBudget struct {
	log          *slog.Logger
	summaryEvery time.Duration

	mu               sync.Mutex
	limits           UnsignedBudget
	minute, window   time.Time // the start of the current periods
	inMinute, inWin  int       // recorded in them
	refused          int64     // since the last summary
	summaryScheduled bool

	total atomic.Int64 // refused since the start
}

func newUnsignedBudget(log *slog.Logger) *unsignedBudget {
	return &unsignedBudget{log: log, summaryEvery: unsignedSummaryEvery, limits: DefaultUnsignedBudget}
}

// set replaces the limits (a reload); what the current periods recorded still counts.
func (b *unsignedBudget) set(l UnsignedBudget) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.limits = l
}

// take reports whether one more unauthenticated rejection may be recorded at now. When it
// may not, the rejection is counted, and a summary of those refused is logged once the
// interval ends: one line an interval however large the flood.
func (b *unsignedBudget) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m := now.Truncate(time.Minute); !m.Equal(b.minute) {
		b.minute, b.inMinute = m, 0
	}
	if w := now.Truncate(b.limits.Window); !w.Equal(b.window) {
		b.window, b.inWin = w, 0
	}
	if b.inMinute < b.limits.PerMinute && b.inWin < b.limits.PerWindow {
		b.inMinute++
		b.inWin++
		return true
	}
	b.total.Add(1)
	b.refused++
	if !b.summaryScheduled {
		b.summaryScheduled = true
		time.AfterFunc(b.summaryEvery, b.summarize)
	}
	return false
}

// summarize logs the rejections refused since the last summary.
func (b *unsignedBudget) summarize() {
	b.mu.Lock()
	n, l := b.refused, b.limits
	b.refused, b.summaryScheduled = 0, false
	b.mu.Unlock()
	b.log.Warn(thousands(n)+" unsigned deliveries refused, not recorded one by one",
		"refused", n, "interval", b.summaryEvery, "per_minute", l.PerMinute,
		"per_window", l.PerWindow, "window", l.Window)
}

// Refused counts the rejections the budget kept from being recorded since the start.
func (b *unsignedBudget) Refused() int64 { return b.total.Load() }

// Bounds on what a rejection before authentication records (see trimUnsigned): the
// sender's word only, so a few fixed bytes of it, whatever it sent.
const (
	maxUnsignedHeaderValue = 100
	maxUnsignedUserAgent   = 128
	maxReason              = 256
	maxRemoteAddr          = 64 // an IPv6 address in its longest text form is 45
)

// unsignedHeaderNames are the headers an unauthenticated rejection records besides its
// columns (GUID, event, user agent, content type): those that say why the signature
// failed, and where the request came from.
var unsignedHeaderNames = []string{
	"Content-Length", "X-Forwarded-For", "X-Github-Hook-Id", "X-Hub-Signature-256",
	"X-Hub-Signature", "X-Gitea-Signature", "X-Forgejo-Signature", "X-Gogs-Signature",
}

// trimUnsigned cuts a rejection before authentication down to what it may record.
// At most 2,048 bytes: the bytes of column data one unauthenticated rejection's row
// holds (SECURITY.md quotes it; TestUnsignedRejectionRowIsBounded measures it). The
// columns: GUID 128, hook name 100, event 64, signature 9 and algorithm 6, status 8,
// reason 256, remote address 64, user agent 128, content type 128, the headers as JSON
// (at most 980), received_at as text (35), four integers (32).
func trimUnsigned(d *store.Delivery, h http.Header) {
	d.Payload = nil
	d.Headers = unsignedHeaders(h)
	d.UserAgent = limit(d.UserAgent, maxUnsignedUserAgent)
	d.Reason = limit(d.Reason, maxReason)
	d.RemoteAddr = limit(d.RemoteAddr, maxRemoteAddr)
}

// unsignedHeaders picks unsignedHeaderNames out of h, each value cut to
// maxUnsignedHeaderValue bytes of printable ASCII (anything else becomes '?'), so that its
// JSON is never longer than its text.
func unsignedHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for _, k := range unsignedHeaderNames {
		if v, ok := h[k]; ok {
			b := []byte(limit(joinValues(v), maxUnsignedHeaderValue))
			for i, c := range b {
				if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
					b[i] = '?'
				}
			}
			out[k] = string(b)
		}
	}
	return out
}

func joinValues(v []string) string {
	if len(v) == 1 {
		return v[0]
	}
	n := 0
	for _, s := range v {
		n += len(s) + 2
	}
	b := make([]byte, 0, min(n, maxUnsignedHeaderValue+2))
	for i, s := range v {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, s...)
		if len(b) > maxUnsignedHeaderValue {
			break
		}
	}
	return string(b)
}

// thousands writes n with commas between groups of three digits: 2,413.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
