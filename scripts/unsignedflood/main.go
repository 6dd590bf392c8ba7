// Command unsignedflood measures what unauthenticated deliveries cost hookgate in disk:
// A source addresses each send R unsigned GitHub deliveries (no X-Hub-Signature-256)
// carrying about 60 KB of headers (60 headers of 1,000 bytes), to the real binary with a
// fresh SQLite database. It prints the database's growth (the file plus its -wal), while
// the gateway runs and after it stopped, with the answers the flood got and the gateway's
// own counters.
//
// Each address is a real source address: the dialer binds 127.1.x.y (Linux routes all of
// 127.0.0.0/8 to the loopback interface), so the gateway sees A distinct clients without
// trusting any proxy header (the generated config trusts none).
//
//	go run ./scripts/unsignedflood                    # 500 addresses × 31 requests
//	go run ./scripts/unsignedflood -a 50 -r 31
//	go run ./scripts/unsignedflood -bin OLD_BIN       # another build
//	go run ./scripts/unsignedflood -server 'unsigned_records_per_minute = 1000000
//	unsigned_records_per_window = 1000000'          # extra [server] lines: here the
//	                                                  # budget lifted, to see the row bound alone
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookgate/hookgate/scripts/internal/harness"
)

const (
	secret     = "unsignedflood-secret-5e2a"
	padHeaders = 60
	padValue   = 1000
)

func main() {
	addrs := flag.Int("a", 500, "source addresses (127.1.x.y), at most 64,000")
	reqs := flag.Int("r", 31, "unsigned requests per address")
	conc := flag.Int("c", 16, "addresses flooding at once")
	bin := flag.String("bin", "", "a hookgate binary to measure instead of building this tree")
	keep := flag.Bool("keep", false, "keep the temporary folder")
	extra := flag.String("server", "", "lines added to the generated config's [server] table")
	flag.Parse()
	if *addrs < 1 || *addrs > 64000 || *reqs < 1 || *conc < 1 {
		fmt.Fprintln(os.Stderr, "unsignedflood: -a 1..64000, -r and -c at least 1")
		os.Exit(2)
	}
	if err := run(*addrs, *reqs, *conc, *bin, *extra, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "unsignedflood:", err)
		os.Exit(1)
	}
}

func run(addrs, reqs, conc int, bin, extra string, keep bool) error {
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	tmp, done, err := harness.Workdir("unsignedflood", keep)
	if err != nil {
		return err
	}
	defer done()
	if bin == "" {
		fmt.Println("building hookgate …")
		if bin, err = harness.Build(root, tmp); err != nil {
			return err
		}
	}
	addr, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	db := filepath.Join(tmp, "hookgate.db")
	cfg, err := harness.WriteConfig(tmp, addr, db, []harness.Repo{{Name: "site", Secret: secret, Path: filepath.Join(tmp, "site")}})
	if err != nil {
		return err
	}
	if extra != "" {
		b, err := os.ReadFile(cfg)
		if err != nil {
			return err
		}
		b = bytes.Replace(b, []byte("[server]\n"), []byte("[server]\n"+extra+"\n"), 1)
		if err := os.WriteFile(cfg, b, 0o600); err != nil {
			return err
		}
	}
	p, err := harness.Start(bin, []string{"serve", "--config", cfg}, addr, filepath.Join(tmp, "hookgate.log"))
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			p.Stop()
		}
	}()
	before := dbSize(db)

	t0 := time.Now()
	codes := flood(addr, addrs, reqs, conc)
	took := time.Since(t0)
	running := dbSize(db)
	signed := ping(addr)
	counters := metrics(addr)
	if err := p.Stop(); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	stopped = true
	after := dbSize(db)

	fmt.Printf("flood: %d addresses × %d unsigned requests with %d headers of %d bytes, in %s\n",
		addrs, reqs, padHeaders, padValue, took.Round(time.Millisecond))
	fmt.Printf("answers: %s\n", describe(codes))
	fmt.Printf("database + wal: %s before, %s at the end of the flood (%s), %s after stop (%s)\n",
		harness.MiB(before), harness.MiB(running), signedMB(running-before), harness.MiB(after), signedMB(after-before))
	fmt.Printf("signed ping after the flood: %s\n", signed)
	for _, c := range counters {
		fmt.Println("  " + c)
	}
	return nil
}

// flood sends reqs unsigned deliveries from each of n source addresses, conc addresses at
// a time, each over its own keep-alive connection; it returns the count of each answer.
func flood(addr string, n, reqs, conc int) map[string]int {
	var mu sync.Mutex
	codes := map[string]int{}
	pad := strings.Repeat("p", padValue)
	work := make(chan int)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				src := net.IPv4(127, 1, byte(i/250), byte(i%250+1))
				d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
				client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
					DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
						return d.DialContext(ctx, network, a)
					},
					MaxIdleConnsPerHost: 1,
				}}
				for j := range reqs {
					code := send(client, addr, fmt.Sprintf("flood-%d-%d", i, j), pad)
					mu.Lock()
					codes[code]++
					mu.Unlock()
				}
				client.CloseIdleConnections()
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return codes
}

func send(client *http.Client, addr, guid, pad string) string {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/hooks/site", strings.NewReader(`{"ref":"refs/heads/main"}`))
	if err != nil {
		return "error: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", guid)
	for k := range padHeaders {
		req.Header.Set(fmt.Sprintf("X-Pad-%02d", k), pad)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return strconv.Itoa(resp.StatusCode)
}

func describe(codes map[string]int) string {
	keys := make([]string, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, codes[k]))
	}
	return strings.Join(parts, ", ")
}

// dbSize is the SQLite file's size plus its write-ahead log's.
func dbSize(db string) int64 {
	var n int64
	for _, f := range []string{db, db + "-wal"} {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}

// metrics reads hookgate's delivery counters from /metrics (loopback, no admin token).
func metrics(addr string) []string {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		return []string{"metrics: " + err.Error()}
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "hookgate_deliveries_total{") || strings.HasPrefix(l, "hookgate_unsigned_") {
			out = append(out, l)
		}
	}
	return out
}

// ping sends one signed GitHub ping and says how it was answered.
func ping(addr string) string {
	body := []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/hooks/site", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("X-GitHub-Delivery", "unsignedflood-ping")
	req.Header.Set("X-Hub-Signature-256", harness.Sign([]byte(secret), body))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return strconv.Itoa(resp.StatusCode)
}

func signedMB(b int64) string { return fmt.Sprintf("%+.1f MB", float64(b)/(1<<20)) }
