// logs.go owns `hookgate logs`: a deploy's output in the terminal, followed live through
// the running gateway's API (GET /api/v1/deploys/:id/log).

package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/config"
)

// cmdLogs prints the output of NAME's newest deploy (or --deploy ID's); with --follow it
// goes on printing as the deploy writes until it ends, and exits 1 unless it succeeded.
func cmdLogs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.toml", "path to the configuration file")
	base := fs.String("url", "", "the gateway's address (default: http://LISTEN from the config)")
	follow := fs.Bool("follow", false, "go on printing the output as it is written, until the deploy ends")
	deployID := fs.Int64("deploy", 0, "this deploy's output instead of the newest deploy's")
	const usage = "usage: hookgate logs NAME [--follow] [--deploy ID] [--config config.toml] [--url URL]"
	var pos []string
	for len(args) > 0 {
		if !strings.HasPrefix(args[0], "-") {
			pos, args = append(pos, args[0]), args[1:]
			continue
		}
		if err := fs.Parse(args); err != nil {
			return 2
		}
		args = fs.Args()
	}
	if len(pos) != 1 || *deployID < 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	name := pos[0]
	cfg, err := config.LoadClient(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate logs: %v\n", err)
		return 1
	}
	if _, ok := cfg.Repos[name]; !ok {
		fmt.Fprintf(stderr, "hookgate logs: no repository %q in %s\n", name, *configPath)
		return 1
	}
	u := strings.TrimRight(*base, "/")
	if u == "" {
		u = "http://" + dialable(cfg.Server.Listen)
	}
	// No client timeout: a followed deploy takes as long as it takes (the requests that
	// are not the stream have their own deadline below).
	a := &apiClient{base: u, token: cfg.AdminToken(), http: &http.Client{}}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	id := *deployID
	if id == 0 {
		var list struct {
			Deploys []struct {
				ID int64 `json:"id"`
			} `json:"deploys"`
		}
		qctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := a.call(qctx, http.MethodGet, "/api/v1/deploys?limit=1&repo="+url.QueryEscape(name), nil, &list)
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "hookgate logs: %v\n", err)
			return 1
		}
		if len(list.Deploys) == 0 {
			fmt.Fprintf(stderr, "hookgate logs: %s has no deploys yet\n", name)
			return 1
		}
		id = list.Deploys[0].ID
	}
	if !*follow {
		var dp struct {
			Repo   string `json:"repo"`
			Status string `json:"status"`
			Log    string `json:"log"`
		}
		qctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := a.call(qctx, http.MethodGet, fmt.Sprintf("/api/v1/deploys/%d", id), nil, &dp)
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "hookgate logs: %v\n", err)
			return 1
		}
		if dp.Repo != name {
			fmt.Fprintf(stderr, "hookgate logs: deploy %d is of %s, not %s\n", id, dp.Repo, name)
			return 1
		}
		fmt.Fprint(stdout, dp.Log)
		fmt.Fprintf(stderr, "hookgate logs: deploy %d %s\n", id, dp.Status)
		return 0
	}
	status, err := followLog(ctx, a, id, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate logs: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "hookgate logs: deploy %d %s\n", id, status)
	if status != "succeeded" {
		return 1
	}
	return 0
}

// followLog prints deploy id's output stream until its end event and returns the deploy's
// status. A stream cut short is opened again from the last offset printed (Last-Event-ID),
// so nothing is printed twice; five failures in a row give up.
func followLog(ctx context.Context, a *apiClient, id int64, stdout io.Writer) (string, error) {
	var last string
	failures := 0
	for {
		status, err := readLogStream(ctx, a, id, &last, stdout)
		if err == nil {
			return status, nil
		}
		var refused refusedError
		if errors.As(err, &refused) || ctx.Err() != nil {
			return "", err
		}
		if failures++; failures >= 5 {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Duration(failures) * time.Second):
		}
	}
}

// refusedError is an answer other than a stream: trying again would not help.
type refusedError struct{ error }

// readLogStream reads one connection of the stream, printing output as it comes and
// recording the last event id in *last; it returns the end event's status.
func readLogStream(ctx context.Context, a *apiClient, id int64, last *string, stdout io.Writer) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/v1/deploys/%d/log", a.base, id), nil)
	if err != nil {
		return "", err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if *last != "" {
		req.Header.Set("Last-Event-ID", *last)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", "hookgate-cli/1")
	resp, err := a.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("is the gateway running? %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e apiError
		if jsonErr := decodeAPIError(raw, &e); jsonErr == nil && e.Error.Code != "" {
			return "", refusedError{fmt.Errorf("refused (%d %s): %s", resp.StatusCode, e.Error.Code, e.Error.Message)}
		}
		return "", refusedError{fmt.Errorf("GET deploy %d log: %s", id, resp.Status)}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var evID, name string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			text := strings.Join(data, "\n")
			switch name {
			case "output":
				fmt.Fprint(stdout, text)
			case "gap":
				fmt.Fprintf(stdout, "[hookgate: %s]\n", text)
			case "end":
				return text, nil
			}
			if evID != "" {
				*last = evID
			}
			evID, name, data = "", "", nil
		case field == "id":
			if _, err := strconv.ParseInt(value, 10, 64); err == nil {
				evID = value
			}
		case field == "event":
			name = value
		case field == "data":
			data = append(data, value)
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", io.ErrUnexpectedEOF
}
