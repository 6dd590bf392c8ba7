// helpers_test.go owns the cli tests' shared helpers: the in-process gateway's, under the
// names the tests use.

package cli

import "github.com/hookgate/hookgate/internal/gatewaytest"

var (
	freeAddr    = gatewaytest.FreeAddr
	writeConfig = gatewaytest.WriteConfig
)

type syncBuffer = gatewaytest.SyncBuffer
