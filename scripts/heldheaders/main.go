// Command heldheaders measures what connections that send a large header block and never
// finish it cost hookgate in memory: N raw TCP connections over loopback each send the
// start of a hook request plus SIZE bytes of header lines, never the blank line that ends
// them, and hold until hookgate's 10 s header timeout. It prints the gateway's resident
// set before they connect, once all have sent (the peak, VmHWM, is also shown) and what
// each connection got: nothing yet (held), 503 (refused at accept: max_connections or
// max_connections_per_client), 431 (header block over max_header_bytes) or a close.
//
// Each connection comes from its own loopback address (127.1.x.y; all of 127.0.0.0/8 is
// the loopback interface on Linux), so the per-client bound does not apply and the total
// is what is measured; -one sends them all from 127.0.0.1 to show the per-client bound.
// Each run uses a fresh hookgate process (the real binary, a temporary config and
// database). The script raises its own RLIMIT_NOFILE to the hard limit; hookgate does the
// same at start (Go does it for every program), so both need a hard limit above N.
//
//	go run ./scripts/heldheaders                          # N = 12000, headers 63KB and 19KB
//	go run ./scripts/heldheaders -n 12000 -size 63 -one   # all from one address
//	go run ./scripts/heldheaders -bin OLD_BIN             # another build
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/scripts/internal/harness"
)

const secret = "heldheaders-secret-5b1d"

// What a connection got.
const (
	pending int32 = iota // nothing: held by the gateway
	got503
	got431
	gotOther // another answer
	closed   // closed or reset without an answer
)

func main() {
	n := flag.Int("n", 12000, "connections per run")
	sizes := flag.String("size", "63,19", "comma-separated header block sizes in KB, one fresh gateway each")
	one := flag.Bool("one", false, "send every connection from 127.0.0.1 (the per-client bound) instead of one address each")
	bin := flag.String("bin", "", "a hookgate binary to measure instead of building this tree")
	keep := flag.Bool("keep", false, "keep the temporary folder")
	flag.Parse()
	var kbs []int
	for f := range strings.SplitSeq(*sizes, ",") {
		kb, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || kb < 1 {
			fmt.Fprintf(os.Stderr, "heldheaders: -size: %q is not a size in KB\n", f)
			os.Exit(2)
		}
		kbs = append(kbs, kb)
	}
	if err := run(*n, kbs, *one, *bin, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "heldheaders:", err)
		os.Exit(1)
	}
}

func run(n int, kbs []int, one bool, bin string, keep bool) error {
	if n > 250*250 {
		return fmt.Errorf("-n %d: at most %d distinct source addresses", n, 250*250)
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	tmp, done, err := harness.Workdir("heldheaders", keep)
	if err != nil {
		return err
	}
	defer done()
	limit, err := harness.RaiseNoFile()
	if err != nil {
		return err
	}
	if uint64(n)+64 > limit {
		return fmt.Errorf("RLIMIT_NOFILE is %d: too low for %d connections (raise the hard limit: ulimit -Hn)", limit, n)
	}
	fmt.Printf("open files limit: %d\n", limit)
	if bin == "" {
		fmt.Println("building hookgate …")
		if bin, err = harness.Build(root, tmp); err != nil {
			return err
		}
	}
	sources := "one each"
	if one {
		sources = "127.0.0.1"
	}
	fmt.Printf("%-6s %-7s %-10s %-9s %-10s %-10s %-8s %-7s %-7s %-7s %s\n",
		"N", "header", "sources", "before", "held", "peak(HWM)", "held", "503", "431", "closed", "took")
	for i, kb := range kbs {
		r, err := measure(bin, filepath.Join(tmp, fmt.Sprintf("run-%d", i)), n, kb<<10, one)
		if err != nil {
			return fmt.Errorf("size %d KB: %w", kb, err)
		}
		fmt.Printf("%-6d %-7s %-10s %-9s %-10s %-10s %-8d %-7d %-7d %-7d %s\n", n, fmt.Sprintf("%dKB", kb), sources,
			harness.MiB(r.before), harness.MiB(r.held), harness.MiB(r.peak), r.counts[pending], r.counts[got503], r.counts[got431],
			r.counts[closed]+r.counts[gotOther], r.took.Round(100*time.Millisecond))
		fmt.Printf("       gateway log: %s\n", r.log)
	}
	fmt.Println("(RSS from /proc/PID/status: held = VmRSS once every connection has sent its headers and the\n" +
		" resident set has settled, peak = VmHWM 12 s after the first connection (the 10 s header timeout has\n" +
		" ended the held ones by then); the connection columns are what each client had received when held was read;\n" +
		" took = from the first connection to that moment, which must stay under the 10 s header timeout)")
	return nil
}

type result struct {
	before, held, peak int64
	counts             [5]int
	took               time.Duration
	log                string
}

func measure(bin, dir string, n, size int, one bool) (result, error) {
	var r result
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	addr, err := harness.FreeAddr()
	if err != nil {
		return r, err
	}
	cfg, err := harness.WriteConfig(dir, addr, filepath.Join(dir, "hookgate.db"),
		[]harness.Repo{{Name: "site", Secret: secret, Path: filepath.Join(dir, "site")}})
	if err != nil {
		return r, err
	}
	logPath := filepath.Join(dir, "hookgate.log")
	p, err := harness.Start(bin, []string{"serve", "--config", cfg}, addr, logPath)
	if err != nil {
		return r, err
	}
	defer p.Stop()
	m, err := harness.ReadMemory(p.Pid())
	if err != nil {
		return r, err
	}
	r.before = m.RSS

	head := header(addr, size)
	states := make([]atomic.Int32, n)
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	began := time.Now()
	var wg sync.WaitGroup
	var dialErr atomic.Value
	next := atomic.Int64{}
	for range 128 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				src := net.IPv4(127, 0, 0, 1)
				if !one {
					src = net.IPv4(127, 1, byte(i/250), byte(i%250+1))
				}
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
				c, err := d.Dial("tcp", addr)
				if err != nil {
					dialErr.Store(fmt.Errorf("connection %d from %s: %w", i, src, err))
					return
				}
				conns[i] = c
				// A refused connection may be closed while this writes: what it reads
				// below says so.
				c.Write(head)
				go func() { states[i].Store(answer(c)) }()
			}
		}()
	}
	wg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		return r, err
	}
	if err := settle(p.Pid(), began.Add(8*time.Second)); err != nil {
		return r, err
	}
	r.took = time.Since(began)
	if m, err = harness.ReadMemory(p.Pid()); err != nil {
		return r, err
	}
	r.held = m.RSS
	for i := range states {
		r.counts[states[i].Load()]++
	}
	// The peak may come after the resident set seemed settled (the last headers still
	// arriving on a busy machine): VmHWM is read once the header timeout has ended them.
	time.Sleep(time.Until(began.Add(12 * time.Second)))
	if m, err = harness.ReadMemory(p.Pid()); err != nil {
		return r, err
	}
	r.peak = m.Peak
	if b, err := os.ReadFile(logPath); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.Contains(line, "listening") {
				r.log = line
			}
		}
	}
	return r, nil
}

// header is the start of a hook request and padding header lines up to size bytes, without
// the blank line that would end the header block.
func header(addr string, size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "POST /hooks/site HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n", addr)
	for i := 0; b.Len() < size; i++ {
		line := fmt.Sprintf("X-Pad-%d: ", i)
		fill := min(1000, size-b.Len()-len(line)-2)
		if fill < 1 {
			break
		}
		b.WriteString(line + strings.Repeat("a", fill) + "\r\n")
	}
	return []byte(b.String())
}

// answer waits for what the gateway sends on c and classifies it.
func answer(c net.Conn) int32 {
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return closed
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusServiceUnavailable:
		return got503
	case http.StatusRequestHeaderFieldsTooLarge:
		return got431
	}
	return gotOther
}

// settle waits until the gateway's resident set has moved less than 1 % in 300 ms, or
// until deadline (before the header timeout ends the held connections; took says when).
func settle(pid int, deadline time.Time) error {
	var last int64
	steady := time.Now()
	for time.Now().Before(deadline) {
		m, err := harness.ReadMemory(pid)
		if err != nil {
			return err
		}
		if d := m.RSS - last; d > last/100 || -d > last/100 {
			last, steady = m.RSS, time.Now()
		} else if time.Since(steady) >= 300*time.Millisecond {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
