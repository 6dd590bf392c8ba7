package forge_test

import (
	"testing"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/store"
)

// TestResultsAreTheStoredStrings: a signature's result is recorded as it is, so forge's
// results must be the store's strings.
func TestResultsAreTheStoredStrings(t *testing.T) {
	for _, c := range []struct{ forge, store string }{
		{forge.Valid, store.SignatureValid},
		{forge.Invalid, store.SignatureInvalid},
		{forge.Missing, store.SignatureMissing},
	} {
		if c.forge != c.store {
			t.Errorf("forge result %q, store %q: they must be equal", c.forge, c.store)
		}
	}
}
