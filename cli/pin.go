// pin.go owns `hookgate pin` and `hookgate unpin`.

package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

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
		fmt.Fprintf(stdout, "%s unpinned; nothing to deploy (%s)\n", name, strings.TrimPrefix(out.Reason, "unpinned; "))
		return 0
	}
	fmt.Fprintf(stdout, "%s unpinned; deploy %d queued (%s)\n", name, *out.DeployID, strings.TrimPrefix(out.Reason, "unpinned; "))
	if !wait {
		return 0
	}
	return waitDeploy(ctx, a, *out.DeployID, stdout, stderr, "unpin")
}
