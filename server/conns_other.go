//go:build !unix

package server

// openFilesLimit: there is no RLIMIT_NOFILE to read here.
func openFilesLimit() (uint64, bool) { return 0, false }
