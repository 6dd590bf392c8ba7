// Command slowbodies measures what unauthenticated slow bodies cost hookgate in memory:
// N raw TCP connections each send a hook request declaring a 25 MiB body (Content-Length:
// 26214400, max_body's default) and one byte of it, with no valid signature, and hold
// there. It prints the gateway's resident set before they connect, while they hold (the
// peak, VmHWM), and 10 s after they have closed; meanwhile one signed ping shows whether
// the gateway still answers.
//
// Connections come from distinct loopback addresses (127.2.x.y; at most 62,500). Each N
// runs against a fresh hookgate process (the real binary, a temporary config and
// database). The script raises its own RLIMIT_NOFILE to the hard limit; hookgate does the
// same at start (Go does it for every program), so both need a hard limit above N.
//
//	go run ./scripts/slowbodies                      # N = 100, then 1000
//	go run ./scripts/slowbodies -n 100,1000,5000
//	go run ./scripts/slowbodies -bin OLD_BIN -n 100  # another build (an old one sized each
//	                                                 # buffer from Content-Length: 25 MiB each)
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/scripts/internal/harness"
)

const (
	secret   = "slowbodies-secret-1c7e"
	declared = 25 << 20
	after    = 10 * time.Second // how long after the close "after" is read
)

func main() {
	ns := flag.String("n", "100,1000", "comma-separated connection counts, one fresh gateway each")
	bin := flag.String("bin", "", "a hookgate binary to measure instead of building this tree")
	hold := flag.Duration("hold", 3*time.Second, "how long the connections hold once all have sent their byte")
	keep := flag.Bool("keep", false, "keep the temporary folder")
	flag.Parse()
	var counts []int
	for f := range strings.SplitSeq(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "slowbodies: -n: %q is not a connection count\n", f)
			os.Exit(2)
		}
		counts = append(counts, n)
	}
	if err := run(counts, *bin, *hold, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "slowbodies:", err)
		os.Exit(1)
	}
}

func run(counts []int, bin string, hold time.Duration, keep bool) error {
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	tmp, done, err := harness.Workdir("slowbodies", keep)
	if err != nil {
		return err
	}
	defer done()
	limit, err := harness.RaiseNoFile()
	if err != nil {
		return err
	}
	for _, n := range counts {
		if uint64(n)+64 > limit {
			return fmt.Errorf("RLIMIT_NOFILE is %d: too low for %d connections (raise the hard limit: ulimit -Hn)", limit, n)
		}
	}
	fmt.Printf("open files limit: %d\n", limit)
	if bin == "" {
		fmt.Println("building hookgate …")
		if bin, err = harness.Build(root, tmp); err != nil {
			return err
		}
	}
	fmt.Printf("%-6s %-10s %-10s %-12s %-10s %-16s %s\n", "N", "before", "held", "peak(HWM)", "after", "gauge held→after", "signed ping while held")
	for i, n := range counts {
		r, err := measure(bin, filepath.Join(tmp, fmt.Sprintf("run-%d", i)), n, hold)
		if err != nil {
			return fmt.Errorf("n=%d: %w", n, err)
		}
		fmt.Printf("%-6d %-10s %-10s %-12s %-10s %-16s %s\n", n, harness.MiB(r.before), harness.MiB(r.held), harness.MiB(r.peak), harness.MiB(r.after), r.gauge, r.ping)
		fmt.Printf("       after: %s\n", r.afterGo)
	}
	fmt.Printf("(RSS from /proc/PID/status; held = VmRSS at the end of the hold, peak = VmHWM, after = VmRSS %s after the close;\n"+
		" gauge = hookgate_body_bytes_in_memory while held and after the close, \"-\" when the build has none)\n", after)
	return nil
}

type result struct {
	before, held, peak, after int64
	gauge, ping, afterGo      string
}

func measure(bin, dir string, n int, hold time.Duration) (result, error) {
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
	p, err := harness.Start(bin, []string{"serve", "--config", cfg}, addr, filepath.Join(dir, "hookgate.log"))
	if err != nil {
		return r, err
	}
	defer p.Stop()
	m, err := harness.ReadMemory(p.Pid())
	if err != nil {
		return r, err
	}
	r.before = m.RSS

	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		// Each from its own loopback address, so max_connections_per_client does not cut
		// the experiment short: it measures bodies (heldheaders measures the bounds).
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 2, byte(i/250), byte(i%250+1))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return r, fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
		_, err = fmt.Fprintf(c, "POST /hooks/site HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
			"X-GitHub-Event: push\r\nX-GitHub-Delivery: slow-%d\r\nX-Hub-Signature-256: sha256=00\r\n"+
			"Content-Length: %d\r\n\r\n{", addr, i, declared)
		if err != nil {
			return r, fmt.Errorf("connection %d: %w", i, err)
		}
	}
	// Wait until the gateway has read every connection's byte: its gauge says so when it
	// has one; otherwise until its resident set has not moved for a second.
	r.gauge = "-"
	if err := settle(p.Pid(), addr, n); err != nil {
		return r, err
	}
	if v, ok := gauge(addr); ok {
		r.gauge = fmt.Sprintf("%.0f B", v)
	}
	r.ping = ping(addr)
	time.Sleep(hold) // holding is the experiment, not a stand-in for a condition
	if m, err = harness.ReadMemory(p.Pid()); err != nil {
		return r, err
	}
	r.held, r.peak = m.RSS, m.Peak

	for _, c := range conns {
		c.Close()
	}
	conns = conns[:0]
	time.Sleep(after)
	if m, err = harness.ReadMemory(p.Pid()); err != nil {
		return r, err
	}
	r.after = m.RSS
	heap, _ := metricValue(addr, "go_memstats_heap_inuse_bytes")
	stacks, _ := metricValue(addr, "go_memstats_stack_inuse_bytes")
	unreturned, _ := metricValue(addr, "go_memstats_heap_idle_bytes")
	released, _ := metricValue(addr, "go_memstats_heap_released_bytes")
	r.afterGo = fmt.Sprintf("heap in use %s, stacks %s, freed heap not yet returned to the OS %s",
		harness.MiB(int64(heap)), harness.MiB(int64(stacks)), harness.MiB(int64(unreturned-released)))
	if v, ok := gauge(addr); ok {
		r.gauge += fmt.Sprintf(" → %.0f B", v)
	}
	return r, nil
}

// settle waits until the gateway holds n bytes of body (the gauge) or, for a build without
// the gauge, until its resident set has moved less than 1 % in a second; at most 60 s.
func settle(pid int, addr string, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	var last int64
	steady := time.Now()
	for time.Now().Before(deadline) {
		if v, ok := gauge(addr); ok {
			if int(v) >= n {
				return nil
			}
		} else {
			m, err := harness.ReadMemory(pid)
			if err != nil {
				return err
			}
			if d := m.RSS - last; d > last/100 || -d > last/100 {
				last, steady = m.RSS, time.Now()
			} else if time.Since(steady) >= time.Second {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the gateway did not take every connection's byte within 60 s")
}

// gauge reads hookgate_body_bytes_in_memory from /metrics (loopback, no admin token).
func gauge(addr string) (float64, bool) { return metricValue(addr, "hookgate_body_bytes_in_memory") }

// metricValue reads one unlabelled series from /metrics.
func metricValue(addr, name string) (float64, bool) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// ping sends one signed GitHub ping and says how it was answered.
func ping(addr string) string {
	body := []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/hooks/site", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("X-GitHub-Delivery", "slowbodies-ping")
	req.Header.Set("X-Hub-Signature-256", harness.Sign([]byte(secret), body))
	t0 := time.Now()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return fmt.Sprintf("%d in %s", resp.StatusCode, time.Since(t0).Round(100*time.Microsecond))
}
