//go:build !linux

// serve_other.go holds what serve does to its own process elsewhere than Linux.

package cli

// setNonDumpable does nothing here: PR_SET_DUMPABLE is Linux's.
func setNonDumpable() error { return nil }
