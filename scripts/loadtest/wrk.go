package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/scripts/internal/harness"
)

// wrkScript signs nothing (wrk's Lua has no HMAC): the body is signed once, and each
// request carries it with a distinct X-GitHub-Delivery from a per-thread counter.
const wrkScript = `
local f = assert(io.open(%q, "rb"))
wrk.method = "POST"
wrk.path = %q
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "GitHub-Hookshot/7b6c1ad"
wrk.headers["X-GitHub-Event"] = "push"
wrk.headers["X-GitHub-Hook-ID"] = "492039781"
wrk.headers["X-Hub-Signature-256"] = %q

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0
function request()
  n = n + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("0b5e1dad-%%04x-%%04x-%%012x", %d, tid, n)
  return wrk.format()
end
`

var wrkRuns int

// wrkLoad loads addr with wrk (2 threads, conns connections) for d and parses its summary.
// wrk drops the requests in flight when its time is up, so its counts can fall short of
// what the server recorded by up to conns.
func wrkLoad(tmp, addr, path string, body, secret []byte, conns int, d time.Duration) (result, error) {
	wrkRuns++
	bodyFile := filepath.Join(tmp, "body.json")
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		return result{}, err
	}
	script := filepath.Join(tmp, "sign.lua")
	lua := fmt.Sprintf(wrkScript, bodyFile, path, harness.Sign(secret, body), wrkRuns)
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		return result{}, err
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := exec.Command("wrk", "-t2", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", secs), "--latency", "-s", script, "http://"+addr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	return parseWrk(out, time.Duration(secs)*time.Second)
}

var (
	wrkTotal   = regexp.MustCompile(`(\d+) requests in ([\d.]+)(\w+)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkPercent = regexp.MustCompile(`^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$`)
)

func parseWrk(out []byte, d time.Duration) (result, error) {
	r := result{Status: map[int]int64{}, Elapsed: d}
	m := wrkTotal.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk: no request count in its output:\n%s", out)
	}
	total, _ := strconv.ParseInt(string(m[1]), 10, 64)
	if el, err := time.ParseDuration(string(m[2]) + string(m[3])); err == nil {
		r.Elapsed = el
	}
	var non2xx int64
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		non2xx, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	r.Status[202] = total - non2xx
	if non2xx > 0 {
		r.Status[0] = non2xx // wrk does not say which
	}
	if m := wrkSocket.FindSubmatch(out); m != nil {
		for _, g := range m[1:] {
			n, _ := strconv.ParseInt(string(g), 10, 64)
			r.Errors += n
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := wrkPercent.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		lat := time.Duration(v * float64(unit))
		if m[1] == "50" {
			r.P50 = lat
		} else {
			r.P99 = lat
		}
	}
	if r.P50 == 0 || r.P99 == 0 {
		return r, fmt.Errorf("wrk: no latency distribution in its output:\n%s", strings.TrimSpace(string(out)))
	}
	return r, nil
}
