// This file owns scrubbing credentials out of errors.
package checkout

import "github.com/hookgate/hookgate/internal/scrub"

// redact removes credentials from err's message: the userinfo of any URL (go-git copies
// the origin URL into its errors) and the HTTPS token. See scrub.Error.
func redact(err error, token string) error { return scrub.Error(err, token) }
