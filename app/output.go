// This file owns a deploy's output as a watcher follows it: live from the worker while the
// deploy runs on this gateway, else as the store keeps it.
package app

import "github.com/hookgate/hookgate/repos"

// Output is a running deploy's output (see repos.Output); Chunk one read of it.
type (
	Output = repos.Output
	Chunk  = repos.Chunk
)

// OutputSource is the worker side that has the running deploys' output (*repos.Manager).
type OutputSource interface {
	Output(id int64) (repos.Output, bool)
}

// DeployOutput returns deploy id's output while it runs on this gateway; false when it
// does not (queued, finished, or run by another node of a fleet: read the store then).
func (a *App) DeployOutput(id int64) (Output, bool) {
	src, ok := a.workers.(OutputSource)
	if !ok {
		return Output{}, false
	}
	return src.Output(id)
}

// SavedOutput splits a stored log into the offset of its first byte and its output, counted
// as a running deploy's Output counts them (see repos.SavedOutput).
func SavedOutput(log string) (int64, string) { return repos.SavedOutput(log) }
