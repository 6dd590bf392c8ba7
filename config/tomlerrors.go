// tomlerrors.go owns decode errors in TOML terms: the key as written and the kinds in
// TOML's words, not Go's struct fields and types.

package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

func describeTOMLError(err error) string {
	var missing *toml.StrictMissingError
	if errors.As(err, &missing) {
		var msgs []string
		for _, e := range missing.Errors {
			row, col := e.Position()
			msgs = append(msgs, fmt.Sprintf("line %d, column %d: unknown key %q", row, col, strings.Join(e.Key(), ".")))
		}
		return strings.Join(msgs, "; ")
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if m := typeMismatch.FindStringSubmatch(msg); m != nil {
			// go-toml names the Go struct field; the operator wrote a TOML key.
			want := tomlKind(m[2])
			if want == "a number" && m[1] == "float" && !strings.HasPrefix(m[2], "float") {
				want = "a whole number"
			}
			msg = fmt.Sprintf("expected %s, got %s", want, article(m[1]))
			if k := de.Key(); len(k) > 0 {
				msg = strings.Join(k, ".") + ": " + msg
			}
		}
		return fmt.Sprintf("line %d, column %d: %s", row, col, msg)
	}
	return err.Error()
}

// typeMismatch matches go-toml's "cannot decode TOML string into struct field
// config.ServerConfig.Workers of type int" (and the same without a struct field).
var typeMismatch = regexp.MustCompile(`^cannot decode TOML ([a-z ]+?) into (?:struct field \S+ of type )?(\S+)$`)

// tomlKind says in TOML's words which value a Go type takes.
func tomlKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map[") || strings.Contains(goType, "."):
		return "a table"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint"):
		return "a number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	}
	return goType
}

// article puts "a" or "an" before a TOML kind ("an integer", "a string").
func article(kind string) string {
	if kind == "" {
		return kind
	}
	if strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}
