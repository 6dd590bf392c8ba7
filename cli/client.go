// client.go owns the API client the commands that act through a running gateway share
// (rollback, pin, unpin).

package cli

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

// decodeAPIError reads the API's error body.
func decodeAPIError(raw []byte, e *apiError) error { return json.Unmarshal(raw, e) }
