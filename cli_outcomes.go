package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hookgate/hookgate/config"
)

// apiClient calls a running gateway's API as the operator: the config's listen address
// (or --url) and admin token.
type apiClient struct {
	base, token string
	http        *http.Client
}

// apiError is the API's error body.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// call sends body (nil: none) and decodes a 2xx answer into out; any other answer is an
// error naming its status, code and message.
func (a *apiClient) call(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	req.Header.Set("User-Agent", "hookgate-cli/1")
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("is the gateway running? %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var e apiError
		if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("refused (%d %s): %s", resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: the answer is not JSON: %w", method, path, err)
		}
	}
	return nil
}

// outcomeCommand parses NAME [COMMIT] and the shared flags of rollback, pin and unpin,
// and returns a client for the gateway the config names.
func outcomeCommand(cmd string, args []string, withCommit bool, stderr io.Writer) (name, commit string, wait bool, a *apiClient, code int) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.toml", "path to the configuration file")
	base := fs.String("url", "", "the gateway's address (default: http://LISTEN from the config)")
	noWait := fs.Bool("no-wait", false, "do not wait for the deploy to finish")
	usage := "usage: hookgate " + cmd + " NAME"
	if withCommit {
		usage += " [COMMIT]"
	}
	usage += " [--config config.toml] [--url URL]"
	// Positional arguments may come before or after the flags.
	var pos []string
	for len(args) > 0 {
		if !strings.HasPrefix(args[0], "-") {
			pos, args = append(pos, args[0]), args[1:]
			continue
		}
		if err := fs.Parse(args); err != nil {
			return "", "", false, nil, 2
		}
		args = fs.Args()
	}
	max := 1
	if withCommit {
		max = 2
	}
	if len(pos) < 1 || len(pos) > max {
		fmt.Fprintln(stderr, usage)
		return "", "", false, nil, 2
	}
	name = pos[0]
	if len(pos) == 2 {
		commit = pos[1]
	}
	cfg, err := config.LoadClient(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate %s: %v\n", cmd, err)
		return "", "", false, nil, 1
	}
	if _, ok := cfg.Repos[name]; !ok {
		fmt.Fprintf(stderr, "hookgate %s: no repository %q in %s\n", cmd, name, *configPath)
		return "", "", false, nil, 1
	}
	url := strings.TrimRight(*base, "/")
	if url == "" {
		url = "http://" + dialable(cfg.Server.Listen)
	}
	return name, commit, !*noWait, &apiClient{base: url, token: cfg.AdminToken(), http: &http.Client{Timeout: 2 * time.Minute}}, 0
}

func short7(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

// cmdRollback asks the gateway to roll NAME back to COMMIT (default: the commit live
// before the live one) and, unless --no-wait, waits for that deploy's outcome.
func cmdRollback(args []string, stdout, stderr io.Writer) int {
	name, commit, wait, a, code := outcomeCommand("rollback", args, true, stderr)
	if a == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	var body any
	if commit != "" {
		body = map[string]string{"commit": commit}
	}
	var out struct {
		DeployID int64  `json:"deploy_id"`
		Commit   string `json:"commit"`
	}
	if err := a.call(ctx, http.MethodPost, "/api/v1/repos/"+name+"/rollback", body, &out); err != nil {
		fmt.Fprintf(stderr, "hookgate rollback: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "rollback of %s to %s queued as deploy %d; %s is pinned at %s until `hookgate unpin %s`\n",
		name, short7(out.Commit), out.DeployID, name, short7(out.Commit), name)
	if !wait {
		return 0
	}
	return waitDeploy(ctx, a, out.DeployID, stdout, stderr, "rollback")
}

// waitDeploy polls deploy id until it finishes and prints how it ended.
func waitDeploy(ctx context.Context, a *apiClient, id int64, stdout, stderr io.Writer, cmd string) int {
	for {
		var dp struct {
			Status   string `json:"status"`
			ToCommit string `json:"to_commit"`
			Error    string `json:"error"`
		}
		if err := a.call(ctx, http.MethodGet, fmt.Sprintf("/api/v1/deploys/%d", id), nil, &dp); err != nil {
			fmt.Fprintf(stderr, "hookgate %s: %v\n", cmd, err)
			return 1
		}
		switch dp.Status {
		case "queued", "running":
			select {
			case <-ctx.Done():
				fmt.Fprintf(stderr, "hookgate %s: gave up waiting for deploy %d (%s)\n", cmd, id, dp.Status)
				return 1
			case <-time.After(500 * time.Millisecond):
			}
			continue
		case "succeeded":
			fmt.Fprintf(stdout, "deploy %d succeeded: the checkout is at %s\n", id, short7(dp.ToCommit))
			return 0
		}
		fmt.Fprintf(stderr, "hookgate %s: deploy %d %s: %s\n", cmd, id, dp.Status, dp.Error)
		return 1
	}
}

// cmdPin pins NAME at COMMIT (default: the live commit) without deploying.
func cmdPin(args []string, stdout, stderr io.Writer) int {
	name, commit, _, a, code := outcomeCommand("pin", args, true, stderr)
	if a == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var body any
	if commit != "" {
		body = map[string]string{"commit": commit}
	}
	var out struct {
		Pinned struct {
			Commit string    `json:"commit"`
			At     time.Time `json:"at"`
			By     string    `json:"by"`
		} `json:"pinned"`
	}
	if err := a.call(ctx, http.MethodPost, "/api/v1/repos/"+name+"/pin", body, &out); err != nil {
		fmt.Fprintf(stderr, "hookgate pin: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s pinned at %s: pushes are recorded but not deployed until `hookgate unpin %s`\n",
		name, short7(out.Pinned.Commit), name)
	return 0
}

// cmdUnpin lifts NAME's pin; the gateway then deploys origin's head if it is not live.
func cmdUnpin(args []string, stdout, stderr io.Writer) int {
	name, _, wait, a, code := outcomeCommand("unpin", args, false, stderr)
	if a == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	var out struct {
		DeployID *int64 `json:"deploy_id"`
		Reason   string `json:"reason"`
	}
	if err := a.call(ctx, http.MethodPost, "/api/v1/repos/"+name+"/unpin", nil, &out); err != nil {
		fmt.Fprintf(stderr, "hookgate unpin: %v\n", err)
		return 1
	}
	if out.DeployID == nil {
		fmt.Fprintf(stdout, "%s unpinned; nothing to deploy (%s)\n", name, out.Reason)
		return 0
	}
	fmt.Fprintf(stdout, "%s unpinned; deploy %d queued (%s)\n", name, *out.DeployID, out.Reason)
	if !wait {
		return 0
	}
	return waitDeploy(ctx, a, *out.DeployID, stdout, stderr, "unpin")
}
