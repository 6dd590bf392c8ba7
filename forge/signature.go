// Signatures: verifying a delivery's HMAC or token as each forge sends it, and signing a
// payload as GitHub and Gitea do.

package forge

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// The results of a signature check. They are the strings the store records (its
// SignatureValid, SignatureInvalid and SignatureMissing hold the same; a test keeps them
// equal), so a result is stored as it is.
const (
	Valid   = "valid"
	Invalid = "invalid"
	Missing = "missing"
)

// Signature is the outcome of checking a delivery's HMAC.
type Signature struct {
	Result string // Valid, Invalid or Missing
	Alg    string // "sha256", "sha1", "token" (GitLab) or "" when no header was sent
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
	return Signature{Result: Missing}
}

func check(vals []string, prefix string, alg func() hash.Hash, body, secret []byte) string {
	// A repeated header is ambiguous; which copy a proxy would pass on is anyone's guess.
	if len(vals) != 1 || len(secret) == 0 {
		return Invalid
	}
	v := strings.TrimSpace(vals[0])
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return Invalid
	}
	got, err := hex.DecodeString(v[len(prefix):])
	if err != nil || len(got) != alg().Size() {
		return Invalid
	}
	mac := hmac.New(alg, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return Invalid
	}
	return Valid
}

// Sign returns the X-Hub-Signature-256 value for body, as GitHub computes it.
func Sign(body, secret []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifyGiteaSignature checks a Gitea or Forgejo delivery: X-Gitea-Signature (or
// X-Forgejo-Signature) is the hex HMAC-SHA256, without a prefix, of the JSON payload. For
// a form delivery that is the "payload" field's value, not the form body, which is how
// Gitea signs. Every signature header sent must match (Forgejo sends both, equal).
func VerifyGiteaSignature(h http.Header, contentType string, body, secret []byte) Signature {
	gitea, forgejo := h.Values("X-Gitea-Signature"), h.Values("X-Forgejo-Signature")
	if len(gitea) == 0 && len(forgejo) == 0 {
		return Signature{Result: Missing}
	}
	signed := giteaSignedBytes(contentType, body)
	for _, vals := range [][]string{gitea, forgejo} {
		if len(vals) > 0 && check(vals, "", sha256.New, signed, secret) != Valid {
			return Signature{Result: Invalid, Alg: "sha256"}
		}
	}
	return Signature{Result: Valid, Alg: "sha256"}
}

// giteaSignedBytes returns what Gitea signed: the payload field of a well-formed form
// body, else the body itself (for a malformed form the signature then simply fails).
func giteaSignedBytes(contentType string, body []byte) []byte {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return body
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || len(form["payload"]) != 1 {
		return body
	}
	return []byte(form["payload"][0])
}

// VerifyGitLabToken checks a GitLab delivery: X-Gitlab-Token is the secret itself, so it
// is compared in constant time (of hashes, so the time does not tell the length either)
// and never recorded.
func VerifyGitLabToken(h http.Header, secret []byte) Signature {
	vals := h.Values("X-Gitlab-Token")
	if len(vals) == 0 {
		return Signature{Result: Missing}
	}
	if len(vals) != 1 || len(secret) == 0 {
		return Signature{Result: Invalid, Alg: "token"}
	}
	got, want := sha256.Sum256([]byte(vals[0])), sha256.Sum256(secret)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return Signature{Result: Invalid, Alg: "token"}
	}
	return Signature{Result: Valid, Alg: "token"}
}

// SignGitea returns the X-Gitea-Signature value for a JSON payload, as Gitea computes it.
func SignGitea(payload, secret []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(payload)
	return hex.EncodeToString(mac.Sum(nil))
}
