// Command loadtest measures hookgate's ingest against the floor: a bare net/http server of
// its own that only checks the HMAC. It builds the real hookgate binary, starts both side by
// side with temporary configs, and loads them alternately with the same signed 7 KB GitHub
// push deliveries (a distinct X-GitHub-Delivery each) over 64 keep-alive connections. Each
// round uses a fresh hookgate database; afterwards it checks that every 2xx answer is a
// delivery in that database and reports throughput, p50/p99 latency, the ratio to the floor,
// and hookgate's peak resident memory. Last, it measures hookgate's idle memory with 100
// repositories configured.
//
//	go run ./scripts/loadtest                       # 3 rounds of 10 s each
//	go run ./scripts/loadtest -rounds 5 -duration 20s
//	PGTEST_DURABLE=1 scripts/pgtest sh -c 'go run ./scripts/loadtest -postgres "$HOOKGATE_TEST_POSTGRES"'
//	… -postgres "$HOOKGATE_TEST_POSTGRES" -fanout 3  # every push also queues deploys for 2 more nodes
//	go run ./scripts/loadtest -wrk                  # load with wrk instead (apt-get install wrk)
//	go run ./scripts/loadtest gen -addr 127.0.0.1:8080 -hook demo -secret … # load a running gateway
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hookgate/hookgate/scripts/internal/harness"
	"github.com/hookgate/hookgate/store"
	"github.com/hookgate/hookgate/store/storetest"
)

const secret = "loadtest-secret-7f3a"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "floor":
			os.Exit(floor(os.Args[2:]))
		case "gen":
			os.Exit(genOnly(os.Args[2:]))
		}
	}
	os.Exit(run())
}

type options struct {
	rounds, conns, repos int
	duration, warmup     time.Duration
	idleWait             time.Duration
	ignored, useWrk      bool
	keep, idleOnly       bool
	baseline, bin        string
	poll, basePoll       string
	postgres             string // a PostgreSQL URL; empty: SQLite files
	fanout               int    // with postgres: nodes that deploy the loaded repository
}

func run() int {
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each loads the floor and hookgate once")
	flag.IntVar(&o.conns, "conns", 64, "concurrent keep-alive connections")
	flag.IntVar(&o.repos, "repos", 100, "repositories configured in hookgate (one receives the load)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured load per server per round")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each measurement")
	flag.DurationVar(&o.idleWait, "idle-wait", 5*time.Second, "how long hookgate sits idle before its idle memory is read")
	flag.BoolVar(&o.ignored, "ignored", false, "push to a branch that is not deployed (recorded as ignored) instead of the deployed one")
	flag.BoolVar(&o.useWrk, "wrk", false, "load with wrk (Lua-signed requests) instead of the built-in generator")
	flag.BoolVar(&o.idleOnly, "idle-only", false, "skip the load rounds: only measure idle memory (of -baseline too, alternating)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary folder (binary, configs, databases, logs)")
	flag.StringVar(&o.postgres, "postgres", "", "a PostgreSQL URL (e.g. from scripts/pgtest): each round's hookgate gets a new database in that cluster instead of a SQLite file")
	flag.IntVar(&o.fanout, "fanout", 1, "with -postgres: the nodes of a fleet that deploy the loaded repository (the gateway and N-1 registered nodes that never run), so each accepted push queues a deploy on every one")
	flag.StringVar(&o.baseline, "baseline", "", "a hookgate binary built from another version, loaded in each round too, for a before/after")
	flag.StringVar(&o.bin, "bin", "", "measure this hookgate binary instead of building the tree (a binary fresh from the linker reads about 1 MB more file-backed memory than one the page cache has written back)")
	flag.StringVar(&o.poll, "poll", "", "[repos.NAME] poll of every repository (default: the config's default)")
	flag.StringVar(&o.basePoll, "baseline-poll", "", "poll for the -baseline runs' repositories, e.g. 0 to compare with polling off (default: -poll)")
	flag.Parse()
	if o.fanout > 1 && o.postgres == "" {
		fmt.Fprintln(os.Stderr, "loadtest: -fanout needs -postgres (a SQLite file has one gateway)")
		return 2
	}
	if o.basePoll == "" {
		o.basePoll = o.poll
	}
	if err := loadtest(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		return 1
	}
	return 0
}

// gateway is one hookgate run's figures.
type gateway struct {
	result
	recorded, recorded2 int64 // deliveries in hookgate's database, and those with a 2xx status
	peak                int64 // hookgate's VmHWM
}

// round is one round's figures.
type round struct {
	floor      result
	hook, base gateway // base only with -baseline
}

func loadtest(o options) error {
	ctx := context.Background()
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	tmp, done, err := harness.Workdir("loadtest", o.keep)
	if err != nil {
		return err
	}
	defer done()
	bin := o.bin
	if bin == "" {
		fmt.Println("building hookgate …")
		if bin, err = harness.Build(root, tmp); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	// The repository the load pushes to: a real origin and checkout, so accepted pushes
	// queue real deploys that the worker runs while the load goes on.
	origin, checkout := filepath.Join(tmp, "origin.git"), filepath.Join(tmp, "checkout")
	seed := filepath.Join(tmp, "seed")
	for _, step := range [][]string{
		{tmp, "init", "-q", "--bare", "-b", "main", origin},
		{tmp, "clone", "-q", origin, seed},
		{seed, "checkout", "-q", "-b", "main"},
		{seed, "commit", "-q", "--allow-empty", "-m", "initial commit"},
		{seed, "push", "-q", "origin", "main"},
		{tmp, "clone", "-q", origin, checkout},
	} {
		if _, err := harness.Git(ctx, step[0], step[1:]...); err != nil {
			return err
		}
	}
	head, err := harness.Git(ctx, seed, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	ref := "refs/heads/main"
	if o.ignored {
		ref = "refs/heads/feature"
	}
	body, err := harness.PushPayload(root, ref, strings.Repeat("0", 39)+"1", head, "hookgate/bench")
	if err != nil {
		return err
	}
	fmt.Printf("payload: %d bytes (testdata/github/push.json, %s), %d connections\n", len(body), ref, o.conns)

	repoConfig := func(dir string, n int, poll string) []harness.Repo {
		rs := []harness.Repo{{Name: "bench", Secret: secret, Path: checkout, Poll: poll}}
		for i := 1; i < n; i++ {
			rs = append(rs, harness.Repo{
				Name: fmt.Sprintf("repo-%03d", i), Secret: fmt.Sprintf("%s-%03d", secret, i),
				Path: filepath.Join(dir, fmt.Sprintf("repo-%03d", i)), URL: origin, Poll: poll,
			})
		}
		return rs
	}

	floorAddr, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	os.Setenv("FLOOR_SECRET", secret)
	fl, err := harness.Start(self, []string{"floor", "-listen", floorAddr}, floorAddr, filepath.Join(tmp, "floor.log"))
	if err != nil {
		return fmt.Errorf("floor server: %w", err)
	}
	defer fl.Stop()

	loadOne := func(addr string, d time.Duration) (result, error) {
		if o.useWrk {
			return wrkLoad(tmp, addr, "/hooks/bench", body, []byte(secret), o.conns, d)
		}
		return load(addr, newRequest(addr, "/hooks/bench", body, []byte(secret)), o.conns, d), nil
	}
	measureFloor := func() (result, error) {
		if _, err := loadOne(floorAddr, o.warmup); err != nil {
			return result{}, err
		}
		return loadOne(floorAddr, o.duration)
	}
	measureHookgate := func(i int, bin, tag string) (gateway, error) {
		var rd gateway
		dir := filepath.Join(tmp, fmt.Sprintf("round-%d-%s", i, tag))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return rd, err
		}
		addr, err := harness.FreeAddr()
		if err != nil {
			return rd, err
		}
		db := filepath.Join(dir, "hookgate.db")
		if o.postgres != "" {
			url, drop, err := storetest.NewPostgresDatabase(ctx, o.postgres, fmt.Sprintf("load_%d_%s_%d", i, tag, os.Getpid()))
			if err != nil {
				return rd, err
			}
			defer drop()
			db = url
			if err := registerNodes(ctx, url, o.fanout-1); err != nil {
				return rd, err
			}
		}
		poll := o.poll
		if tag == "baseline" {
			poll = o.basePoll
		}
		cfg, err := harness.WriteConfig(dir, addr, db, repoConfig(dir, o.repos, poll))
		if err != nil {
			return rd, err
		}
		p, err := harness.Start(bin, []string{"serve", "--config", cfg}, addr, filepath.Join(dir, "hookgate.log"))
		if err != nil {
			return rd, err
		}
		warm, err := loadOne(addr, o.warmup)
		if err == nil {
			rd.result, err = loadOne(addr, o.duration)
		}
		if err != nil {
			p.Stop()
			return rd, err
		}
		mem, merr := harness.ReadMemory(p.Pid())
		if serr := p.Stop(); serr != nil {
			return rd, fmt.Errorf("stop hookgate: %w", serr)
		}
		if merr != nil {
			return rd, merr
		}
		rd.peak = mem.Peak
		rd.recorded, rd.recorded2, err = storetest.CountDeliveries(ctx, db)
		if err != nil {
			return rd, err
		}
		answered := warm.OK() + rd.OK()
		if !o.useWrk && rd.recorded2 != answered {
			return rd, fmt.Errorf("round %d: %d deliveries answered 2xx but %d recorded with a 2xx status", i, answered, rd.recorded2)
		}
		if o.useWrk {
			// wrk drops the requests in flight when its time is up; the server may
			// still have recorded them, but never fewer than were answered.
			if rd.recorded2 < answered {
				return rd, fmt.Errorf("round %d: %d deliveries answered 2xx but only %d recorded with a 2xx status", i, answered, rd.recorded2)
			}
			fmt.Printf("  wrk: %d answered 2xx, %d recorded (%d in flight when wrk stopped)\n", answered, rd.recorded2, rd.recorded2-answered)
		}
		if o.postgres == "" { // a PostgreSQL round's database is dropped by its deferred drop
			if err := os.Remove(db); err != nil {
				return rd, err
			}
		}
		return rd, nil
	}

	var rounds []round
	for i := 1; i <= o.rounds && !o.idleOnly; i++ {
		var rd round
		steps := []func() error{
			func() (err error) { rd.floor, err = measureFloor(); return err },
			func() (err error) { rd.hook, err = measureHookgate(i, bin, "hookgate"); return err },
		}
		if o.baseline != "" {
			steps = append(steps, func() (err error) { rd.base, err = measureHookgate(i, o.baseline, "baseline"); return err })
		}
		// Rotate which server goes first, so a drift in the machine's load does not
		// always favour the same one.
		for k := range steps {
			if err := steps[(k+i-1)%len(steps)](); err != nil {
				return err
			}
		}
		rounds = append(rounds, rd)
		fmt.Printf("round %d: floor %s\n  hookgate %s, recorded %d, peak RSS %.1f MB, ratio %.2f\n",
			i, describe(rd.floor), describe(rd.hook.result), rd.hook.recorded, mb(rd.hook.peak), rd.hook.Rate()/rd.floor.Rate())
		if o.baseline != "" {
			fmt.Printf("  baseline %s, recorded %d, peak RSS %.1f MB, ratio %.2f\n",
				describe(rd.base.result), rd.base.recorded, mb(rd.base.peak), rd.base.Rate()/rd.floor.Rate())
		}
	}

	idle, err := idleMemory(ctx, bin, tmp, o, repoConfig)
	if err != nil {
		return err
	}
	report(o, rounds, idle)
	return nil
}

// idleFigures are the idle resident sets of one build, in MB.
type idleFigures struct{ rss, anon, file, base, baseAnon, baseFile []float64 }

// idleMemory starts hookgate o.rounds times with o.repos repositories and an empty
// database, lets it sit for o.idleWait and reads its resident set; with -baseline, the
// baseline build too, alternating which goes first.
func idleMemory(ctx context.Context, bin, tmp string, o options, repos func(string, int, string) []harness.Repo) (idleFigures, error) {
	var f idleFigures
	one := func(i int, bin, tag string, rss, anon, file *[]float64) error {
		dir := filepath.Join(tmp, fmt.Sprintf("idle-%d-%s", i, tag))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		addr, err := harness.FreeAddr()
		if err != nil {
			return err
		}
		poll := o.poll
		if tag == "baseline" {
			poll = o.basePoll
		}
		cfg, err := harness.WriteConfig(dir, addr, filepath.Join(dir, "hookgate.db"), repos(dir, o.repos, poll))
		if err != nil {
			return err
		}
		p, err := harness.Start(bin, []string{"serve", "--config", cfg}, addr, filepath.Join(dir, "hookgate.log"))
		if err != nil {
			return err
		}
		select {
		case <-time.After(o.idleWait):
		case <-ctx.Done():
		}
		mem, err := harness.ReadMemory(p.Pid())
		p.Stop()
		if err != nil {
			return err
		}
		fmt.Printf("idle %d %s: %d repositories, RSS %.1f MB (anonymous %.1f MB, file-backed %.1f MB; peak %.1f MB)\n",
			i, tag, o.repos, mb(mem.RSS), mb(mem.Anon), mb(mem.File), mb(mem.Peak))
		*rss = append(*rss, mb(mem.RSS))
		*anon = append(*anon, mb(mem.Anon))
		*file = append(*file, mb(mem.File))
		return nil
	}
	for i := 1; i <= o.rounds; i++ {
		steps := []func() error{func() error { return one(i, bin, "hookgate", &f.rss, &f.anon, &f.file) }}
		if o.baseline != "" {
			steps = append(steps, func() error { return one(i, o.baseline, "baseline", &f.base, &f.baseAnon, &f.baseFile) })
		}
		for k := range steps {
			if err := steps[(k+i-1)%len(steps)](); err != nil {
				return f, err
			}
		}
	}
	return f, nil
}

func describe(r result) string {
	s := fmt.Sprintf("%.0f/s p50 %s p99 %s (%d 2xx, %d non-2xx, %d errors)",
		r.Rate(), ms(r.P50), ms(r.P99),
		r.OK(), r.NotOK(), r.Errors)
	if r.FirstErr != nil {
		s += fmt.Sprintf(" first error: %v", r.FirstErr)
	}
	return s
}

func report(o options, rounds []round, idle idleFigures) {
	type col struct{ rate, ratio, p50, p99, peak []float64 }
	var f, h, bl col
	var non2xx, errs, answered, recorded int64
	add := func(c *col, g gateway, floor result) {
		c.rate = append(c.rate, g.Rate())
		c.ratio = append(c.ratio, g.Rate()/floor.Rate())
		c.p50 = append(c.p50, msf(g.P50))
		c.p99 = append(c.p99, msf(g.P99))
		c.peak = append(c.peak, mb(g.peak))
		non2xx += g.NotOK()
		errs += g.Errors
		answered += g.OK()
		recorded += g.recorded
	}
	for _, r := range rounds {
		f.rate = append(f.rate, r.floor.Rate())
		f.p50 = append(f.p50, msf(r.floor.P50))
		f.p99 = append(f.p99, msf(r.floor.P99))
		add(&h, r.hook, r.floor)
		if o.baseline != "" {
			add(&bl, r.base, r.floor)
		}
	}
	sum := func(xs []float64, verb string) string {
		if len(xs) == 0 {
			return ""
		}
		return harness.Summarize(xs).Format(verb)
	}
	if o.idleOnly {
		fmt.Printf("\nidle memory, %d runs of each build, %s after start; median (min-max)\n\n", o.rounds, o.idleWait)
		fmt.Println("| figure | hookgate | baseline | target |")
		fmt.Println("| --- | --- | --- | --- |")
		fmt.Printf("| idle RSS, %d repositories (MB) | %s | %s | < 30 MB |\n", o.repos, sum(idle.rss, "%.1f"), sum(idle.base, "%.1f"))
		fmt.Printf("| of which anonymous: heap, stacks (MB) | %s | %s | |\n", sum(idle.anon, "%.1f"), sum(idle.baseAnon, "%.1f"))
		fmt.Printf("| of which file-backed: the binary's pages (MB) | %s | %s | |\n", sum(idle.file, "%.1f"), sum(idle.baseFile, "%.1f"))
		return
	}
	gen := "built-in generator"
	if o.useWrk {
		gen = "wrk"
	}
	fmt.Printf("\n%d rounds of %s (after %s warm-up), %d connections, %s; median (min-max)\n\n",
		len(rounds), o.duration, o.warmup, o.conns, gen)
	head, sep := "| figure | floor (HMAC only) | hookgate |", "| --- | --- | --- |"
	row := func(name string, fl, hk, bs []float64, verb, target string) {
		line := fmt.Sprintf("| %s | %s | %s |", name, sum(fl, verb), sum(hk, verb))
		if o.baseline != "" {
			line += " " + sum(bs, verb) + " |"
		}
		fmt.Println(line + " " + target + " |")
	}
	if o.baseline != "" {
		head, sep = head+" baseline |", sep+" --- |"
	}
	fmt.Println(head + " target |")
	fmt.Println(sep + " --- |")
	row("deliveries/s", f.rate, h.rate, bl.rate, "%.0f", "≥ 0.5 × floor")
	row("ratio to the floor", nil, h.ratio, bl.ratio, "%.2f", "≥ 0.50")
	row("p50 latency (ms)", f.p50, h.p50, bl.p50, "%.2f", "")
	row("p99 latency (ms)", f.p99, h.p99, bl.p99, "%.2f", "< 20 ms")
	row("peak RSS under load (MB, VmHWM)", nil, h.peak, bl.peak, "%.1f", "< 80 MB")
	fmt.Printf("| non-2xx answers / errors, all hookgate runs | | %d / %d | 0 |\n", non2xx, errs)
	row(fmt.Sprintf("idle RSS, %d repositories (MB)", o.repos), nil, idle.rss, idle.base, "%.1f", "< 30 MB")
	row("of which anonymous: heap, stacks (MB)", nil, idle.anon, idle.baseAnon, "%.1f", "")
	check := "every 2xx answer (warm-ups included) was a delivery in the database"
	if o.useWrk {
		check = "never fewer deliveries in the database than 2xx answers (wrk cannot say which were answered)"
	}
	fmt.Printf("\nhookgate runs: %d deliveries answered 2xx in the measured periods; %s (%d rows in all)\n", answered, check, recorded)
}

func ms(d time.Duration) string   { return fmt.Sprintf("%.2fms", msf(d)) }
func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mb(b int64) float64          { return float64(b) / (1 << 20) }

// genOnly loads a gateway that is already running, e.g. to profile it.
func genOnly(args []string) int {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "the gateway's address")
	hook := fs.String("hook", "demo", "hook name (POST /hooks/NAME)")
	sec := fs.String("secret", "demo-secret-change-me", "the hook's secret")
	ref := fs.String("ref", "refs/heads/main", "ref the pushes name")
	conns := fs.Int("conns", 64, "concurrent keep-alive connections")
	d := fs.Duration("duration", 10*time.Second, "how long to load")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		return 1
	}
	body, err := harness.PushPayload(root, *ref, strings.Repeat("0", 39)+"1", strings.Repeat("ab", 20), "hookgate/bench")
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		return 1
	}
	r := load(*addr, newRequest(*addr, "/hooks/"+*hook, body, []byte(*sec)), *conns, *d)
	fmt.Println(describe(r))
	return 0
}

// registerNodes registers n nodes that deploy the loaded repository ("bench") in the
// PostgreSQL database at url, as the other gateways of a fleet would: each push the
// gateway under load accepts then queues a deploy for each of them too (they never run, so
// those deploys coalesce and wait).
func registerNodes(ctx context.Context, url string, n int) error {
	if n <= 0 {
		return nil
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range n {
		if err := st.RegisterNode(ctx, fmt.Sprintf("fleet-%d", i+2), "loadtest", []string{"bench"}); err != nil {
			return err
		}
	}
	return nil
}
