// This file owns the configured hooks (one immutable set, swapped whole on a reload) and
// the settings a reload applies to the running server.
package server

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hookgate/hookgate/app"
)

// hookSet is the configured hooks as one immutable value: a reload builds a new one and
// swaps it in whole, so a request sees either the old configuration or the new one, never
// a mix, and never waits for a lock.
type hookSet struct {
	byName map[string]Hook
	names  []string // sorted
	// repos are the deploy targets' names, sorted: each hook's Targets, or the hook itself.
	repos []string
}

func newHookSet(hooks []Hook) (*hookSet, error) {
	hs := &hookSet{byName: make(map[string]Hook, len(hooks))}
	for _, h := range hooks {
		if !ValidProvider(h.Provider) {
			return nil, fmt.Errorf("hook %s: unknown provider %q", h.Name, h.Provider)
		}
		if _, dup := hs.byName[h.Name]; dup {
			return nil, fmt.Errorf("hook %s: configured twice", h.Name)
		}
		hs.byName[h.Name] = h
		hs.names = append(hs.names, h.Name)
	}
	sort.Strings(hs.names)
	for _, r := range appRepos(hooks) {
		hs.repos = append(hs.repos, r.Name)
	}
	sort.Strings(hs.repos)
	return hs, nil
}

// appRepos is the hooks' targets as the App's repositories.
func appRepos(hooks []Hook) []app.Repo {
	var out []app.Repo
	for _, h := range hooks {
		if len(h.Targets) == 0 {
			out = append(out, app.Repo{Name: h.Name, Branch: h.Branch, Repository: h.Repository, Path: h.Path, Tags: h.Tags, Paths: h.Paths})
			continue
		}
		for _, t := range h.Targets {
			out = append(out, app.Repo{Name: t.Name, Branch: t.Branch, Repository: h.Repository, Path: t.Path,
				Hook: h.Name, Tags: t.Tags, Paths: t.Paths, Shared: true})
		}
	}
	return out
}

// isRepo tells whether name is a configured deploy target now.
func (s *Server) isRepo(name string) bool {
	_, ok := slices.BinarySearch(s.hooks.Load().repos, name)
	return ok
}

// repoNames returns the deploy targets' names, sorted. The slice is shared: do not modify.
func (s *Server) repoNames() []string { return s.hooks.Load().repos }

// hook returns the hook configured under name now.
func (s *Server) hook(name string) (Hook, bool) {
	h, ok := s.hooks.Load().byName[name]
	return h, ok
}

// hookNames returns the configured hook names, sorted. The slice is shared: do not modify.
func (s *Server) hookNames() []string { return s.hooks.Load().names }

// Settings is what a configuration reload can change in a running server. The listen
// address, the database and the trusted proxies are fixed for the life of the process.
type Settings struct {
	Hooks   []Hook
	MaxBody int64
	// MaxBodyMemory: 0 means DefaultMaxBodyMemory, or MaxBody when that is larger.
	MaxBodyMemory int64
	AdminToken    string
	// Hostnames: see Options.Hostnames.
	Hostnames []string
	// Unsigned: see Options.Unsigned.
	Unsigned UnsignedBudget
}

// Apply swaps in new settings. Requests already past the hook lookup finish with the
// hook they found; the next request sees the new set.
func (s *Server) Apply(set Settings) error {
	if set.MaxBody <= 0 {
		return errors.New("max body must be positive")
	}
	switch {
	case set.MaxBodyMemory == 0:
		set.MaxBodyMemory = max(DefaultMaxBodyMemory, set.MaxBody)
	case set.MaxBodyMemory < set.MaxBody:
		return fmt.Errorf("max body memory (%d bytes) is less than max body (%d bytes): no body that large could be read", set.MaxBodyMemory, set.MaxBody)
	}
	switch {
	case set.Unsigned == UnsignedBudget{}:
		set.Unsigned = DefaultUnsignedBudget
	case set.Unsigned.PerMinute < 0 || set.Unsigned.PerWindow < 0 || set.Unsigned.Window < time.Minute:
		return fmt.Errorf("unsigned budget %+v: counts must not be negative and the window at least a minute", set.Unsigned)
	}
	hs, err := newHookSet(set.Hooks)
	if err != nil {
		return err
	}
	hosts, err := ParseHostnames(set.Hostnames)
	if err != nil {
		return fmt.Errorf("hostnames: %w", err)
	}
	var token *[]byte
	if set.AdminToken != "" {
		h := sha256.Sum256([]byte(set.AdminToken))
		b := h[:]
		token = &b
	}
	old := s.hooks.Swap(hs)
	s.app.SetRepos(appRepos(set.Hooks))
	s.maxBody.Store(set.MaxBody)
	// Bodies being read keep their charge; a lower limit refuses new chunks until they end.
	s.bodyMem.limit.Store(set.MaxBodyMemory)
	s.adminToken.Store(token)
	s.hostnames.Store(&hosts)
	s.budget.set(set.Unsigned)
	if old != nil && s.metrics != nil {
		s.metrics.reconcile(old.names, hs.names, old.repos, hs.repos)
	}
	return nil
}
