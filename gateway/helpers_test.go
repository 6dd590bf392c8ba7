package gateway

import (
	"os"
	"path/filepath"
	"testing"
)

// writeConfig writes body as a config.toml in a temporary directory and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
