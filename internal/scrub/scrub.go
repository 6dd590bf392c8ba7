// Package scrub removes credentials from what hookgate prints: `check` and `send` output,
// logs, pages, API answers and errors. A repository URL may carry them
// (https://user:token@host/x.git), and go-git copies the URL into its errors.
package scrub

import (
	"errors"
	"regexp"
	"strings"
)

// userinfoRE finds the user[:password]@ part of URLs in free text.
var userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)([^/@\s"'<>]+)@`)

// Text returns s with the credentials of every URL in it replaced by "***", and each of
// secrets too. Over HTTP(S) the whole userinfo goes: a token is as often given as the user
// (https://TOKEN@host, https://TOKEN:x-oauth-basic@host) as as the password. Over other
// schemes (ssh://git@host) the user name is kept and only a password goes.
func Text(s string, secrets ...string) string {
	s = userinfoRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := userinfoRE.FindStringSubmatch(m)
		scheme, info := sub[1], sub[2]
		if http := strings.HasPrefix(strings.ToLower(scheme), "http"); http {
			return scheme + "***@"
		}
		if user, _, ok := strings.Cut(info, ":"); ok {
			return scheme + user + ":***@"
		}
		return m
	})
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "***")
		}
	}
	return s
}

// URL is Text for one URL, as the config or a payload gives it.
func URL(raw string) string { return Text(raw) }

// Error returns err with its message scrubbed by Text, or err itself when there was
// nothing to remove. errors.Is still sees the causes; Unwrap is deliberately missing, as
// it would hand out the unscrubbed text.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := Text(msg, secrets...)
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, cause: err}
}

type scrubbedError struct {
	msg   string
	cause error
}

func (e *scrubbedError) Error() string { return e.msg }

func (e *scrubbedError) Is(target error) bool { return errors.Is(e.cause, target) }

// As lets callers find a typed cause (whose own text may hold what was scrubbed: print
// the scrubbed error, not the cause).
func (e *scrubbedError) As(target any) bool { return errors.As(e.cause, target) }
