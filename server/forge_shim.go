// forge_shim.go forwards the names the forge code had in this package to package forge,
// where it lives now, for the files that still use them while the packages move (issue
// 23): cli.go, config.go, and Providers in cli_forge_test.go. It goes once they call
// forge themselves.

package server

import (
	"net/http"

	"github.com/hookgate/hookgate/forge"
)

// The providers, as forge names them.
const (
	ProviderGitHub = forge.ProviderGitHub
	ProviderGitea  = forge.ProviderGitea
	ProviderGitLab = forge.ProviderGitLab
)

// Providers is forge.Providers.
func Providers() []string { return forge.Providers() }

// ValidProvider is forge.ValidProvider.
func ValidProvider(p string) bool { return forge.ValidProvider(p) }

// SetDeliveryHeaders is forge.SetDeliveryHeaders.
func SetDeliveryHeaders(h http.Header, provider, event, guid string, payload, secret []byte) {
	forge.SetDeliveryHeaders(h, provider, event, guid, payload, secret)
}
