package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/server"
)

// TestReloadSaysTheEnvironmentCannotChange: a reload refused because a secret_env
// variable is unset says why setting it now cannot help, and what rotates a secret
// (secret_file), where the 422 and the log carry it.
func TestReloadSaysTheEnvironmentCannotChange(t *testing.T) {
	p := writeConfig(t, "[repos.a]\nsecret_env = \"HOOKGATE_TEST_ROTATED\"\npath = \"/x\"\n")
	g := &Gateway{path: p, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	_, err := g.Reload(context.Background())
	if !errors.Is(err, server.ErrInvalidConfig) {
		t.Fatalf("reload with an unset secret_env: %v, want ErrInvalidConfig (422)", err)
	}
	for _, want := range []string{"HOOKGATE_TEST_ROTATED is empty or unset", "environment the gateway started with", "secret_file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("reload error %q lacks %q", err, want)
		}
	}
}
