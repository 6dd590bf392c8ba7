// Command historyscale measures the history at scale with the real hookgate binary: it
// builds a database holding a million deliveries (the schema from the migrations, the rows
// from one INSERT … SELECT over a recursive CTE, the same mix as store's
// BenchmarkHistoryScale), then starts hookgate on it several times, timing each start-up
// from exec to the first 200 from /healthz, and times the API and the HTML page over
// loopback HTTP, first pages and filtered ones.
//
//	go run ./scripts/historyscale                    # 1,000,000 rows, 3 runs of 50 requests each
//	go run ./scripts/historyscale -rows 200000 -runs 5
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	_ "modernc.org/sqlite"

	"github.com/hookgate/hookgate/scripts/internal/harness"
	"github.com/hookgate/hookgate/store"
	"github.com/hookgate/hookgate/store/storetest"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "deliveries in the database")
	runs := flag.Int("runs", 3, "start-ups, each followed by one round of requests")
	requests := flag.Int("requests", 50, "requests per page per run")
	keep := flag.Bool("keep", false, "keep the temporary folder")
	flag.Parse()
	if err := run(*rows, *runs, *requests, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "historyscale:", err)
		os.Exit(1)
	}
}

var pages = []struct{ name, path string }{
	{"API first page `GET /api/v1/deliveries`", "/api/v1/deliveries"},
	{"API filtered `?repo=repo-3&status=rejected`", "/api/v1/deliveries?repo=repo-3&status=rejected"},
	{"API filtered by deploy status `?repo=repo-5&status=failed`", "/api/v1/deliveries?repo=repo-5&status=failed"},
	{"API deploys first page `GET /api/v1/deploys`", "/api/v1/deploys"},
	{"HTML first page `GET /`", "/"},
	{"HTML filtered `/?repo=repo-3&status=rejected`", "/?repo=repo-3&status=rejected"},
	{"HTML filtered by deploy status `/?repo=repo-5&status=failed`", "/?repo=repo-5&status=failed"},
}

func run(rows, runs, requests int, keep bool) error {
	ctx := context.Background()
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	tmp, done, err := harness.Workdir("historyscale", keep)
	if err != nil {
		return err
	}
	defer done()
	fmt.Println("building hookgate …")
	bin, err := harness.Build(root, tmp)
	if err != nil {
		return err
	}
	db := filepath.Join(tmp, "hookgate.db")
	t0 := time.Now()
	if err := build(ctx, db, rows); err != nil {
		return err
	}
	fi, err := os.Stat(db)
	if err != nil {
		return err
	}
	fmt.Printf("filled %d deliveries in %s (%.0f MB)\n", rows, time.Since(t0).Round(time.Millisecond), float64(fi.Size())/(1<<20))

	var repos []harness.Repo
	for r := range 10 {
		name := fmt.Sprintf("repo-%d", r)
		repos = append(repos, harness.Repo{Name: name, Secret: "historyscale-" + name, Path: filepath.Join(tmp, name)})
	}
	var startup []float64
	medians := make([][]float64, len(pages))
	worst := make([]time.Duration, len(pages))
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 1; i <= runs; i++ {
		addr, err := harness.FreeAddr()
		if err != nil {
			return err
		}
		cfg, err := harness.WriteConfig(tmp, addr, db, repos)
		if err != nil {
			return err
		}
		p, err := harness.Start(bin, []string{"serve", "--config", cfg}, addr, filepath.Join(tmp, fmt.Sprintf("hookgate-%d.log", i)))
		if err != nil {
			return err
		}
		startup = append(startup, msf(p.Ready))
		fmt.Printf("run %d: start-up %s\n", i, p.Ready.Round(time.Millisecond))
		for j, pg := range pages {
			var lat []time.Duration
			for range requests {
				t := time.Now()
				resp, err := client.Get("http://" + addr + pg.path)
				if err != nil {
					p.Stop()
					return err
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					p.Stop()
					return fmt.Errorf("GET %s: %d %v", pg.path, resp.StatusCode, err)
				}
				lat = append(lat, time.Since(t))
			}
			slices.Sort(lat)
			med := harness.Percentile(lat, 50)
			medians[j] = append(medians[j], msf(med))
			worst[j] = max(worst[j], lat[len(lat)-1])
			fmt.Printf("  %-60s median %6.2fms  max %6.2fms\n", pg.path, msf(med), msf(lat[len(lat)-1]))
		}
		if err := p.Stop(); err != nil {
			return fmt.Errorf("stop hookgate: %w", err)
		}
	}

	fmt.Printf("\n%d deliveries, %d runs of %d requests per page over loopback HTTP; median (min-max) of the runs' medians\n\n", rows, runs, requests)
	fmt.Println("| request (50 rows) | median | slowest request | target |")
	fmt.Println("| --- | --- | --- | --- |")
	for j, pg := range pages {
		fmt.Printf("| %s | %s ms | %.2f ms | < 20 ms |\n", pg.name, harness.Summarize(medians[j]).Format("%.2f"), msf(worst[j]))
	}
	fmt.Printf("| start-up, exec to the first 200 from /healthz | %s ms | | < 1 s |\n", harness.Summarize(startup).Format("%.0f"))
	return nil
}

// build creates the database with the gateway's own migrations, then fills it.
func build(ctx context.Context, path string, rows int) error {
	st, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	return storetest.FillFile(ctx, path, rows)
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
