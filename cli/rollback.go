// rollback.go owns `hookgate rollback`.

package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

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
		case "queued", "waiting", "running", "verifying":
			// Not done: a deploy may wait for the forge's checks, and verifying is its
			// health check after the commands.
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
