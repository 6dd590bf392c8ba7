// forge_shim.go forwards the names the forge code had in this package to package forge,
// where it lives now, so the tests and the root files that use them compile untouched
// while the packages move (issue 23). It goes once they call forge themselves.

package server

import (
	"net/http"

	"github.com/hookgate/hookgate/forge"
)

// Signature is forge.Signature.
type Signature = forge.Signature

// VerifySignature is forge.VerifySignature.
func VerifySignature(h http.Header, body []byte, secret []byte) Signature {
	return forge.VerifySignature(h, body, secret)
}

// VerifyGiteaSignature is forge.VerifyGiteaSignature.
func VerifyGiteaSignature(h http.Header, contentType string, body, secret []byte) Signature {
	return forge.VerifyGiteaSignature(h, contentType, body, secret)
}

// VerifyGitLabToken is forge.VerifyGitLabToken.
func VerifyGitLabToken(h http.Header, secret []byte) Signature {
	return forge.VerifyGitLabToken(h, secret)
}

// Sign is forge.Sign.
func Sign(body, secret []byte) string { return forge.Sign(body, secret) }

// SignGitea is forge.SignGitea.
func SignGitea(payload, secret []byte) string { return forge.SignGitea(payload, secret) }

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

// Push is forge.Push.
type Push = forge.Push

// ParsePush is forge.ParsePush.
func ParsePush(payload []byte) (Push, error) { return forge.ParsePush(payload) }

// ParseGiteaPush is forge.ParseGiteaPush.
func ParseGiteaPush(payload []byte) (Push, error) { return forge.ParseGiteaPush(payload) }

// ParseGitLabPush is forge.ParseGitLabPush.
func ParseGitLabPush(payload []byte) (Push, error) { return forge.ParseGitLabPush(payload) }

// GitLabEventName is forge.GitLabEventName.
func GitLabEventName(raw string) string { return forge.GitLabEventName(raw) }

// SetDeliveryHeaders is forge.SetDeliveryHeaders.
func SetDeliveryHeaders(h http.Header, provider, event, guid string, payload, secret []byte) {
	forge.SetDeliveryHeaders(h, provider, event, guid, payload, secret)
}
