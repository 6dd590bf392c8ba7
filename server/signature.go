package server

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
	"strings"

	"github.com/hookgate/hookgate/store"
)

// Signature is the outcome of checking a delivery's HMAC.
type Signature struct {
	Result string // store.SignatureValid, SignatureInvalid or SignatureMissing
	Alg    string // "sha256", "sha1" or "" when no header was sent
}

// VerifySignature checks body against the GitHub signature headers with secret.
// X-Hub-Signature-256 wins when present; the legacy sha1 header is only looked at when it
// is absent, so a request cannot downgrade a bad sha256 to a good sha1. An empty secret
// never verifies anything.
func VerifySignature(h http.Header, body []byte, secret []byte) Signature {
	if vals := h.Values("X-Hub-Signature-256"); len(vals) > 0 {
		return Signature{Result: check(vals, "sha256=", sha256.New, body, secret), Alg: "sha256"}
	}
	if vals := h.Values("X-Hub-Signature"); len(vals) > 0 {
		return Signature{Result: check(vals, "sha1=", sha1.New, body, secret), Alg: "sha1"}
	}
	return Signature{Result: store.SignatureMissing}
}

func check(vals []string, prefix string, alg func() hash.Hash, body, secret []byte) string {
	// A repeated header is ambiguous; which copy a proxy would pass on is anyone's guess.
	if len(vals) != 1 || len(secret) == 0 {
		return store.SignatureInvalid
	}
	v := strings.TrimSpace(vals[0])
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return store.SignatureInvalid
	}
	got, err := hex.DecodeString(v[len(prefix):])
	if err != nil || len(got) != alg().Size() {
		return store.SignatureInvalid
	}
	mac := hmac.New(alg, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return store.SignatureInvalid
	}
	return store.SignatureValid
}

// Sign returns the X-Hub-Signature-256 value for body, as GitHub computes it.
func Sign(body, secret []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
