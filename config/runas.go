package config

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"

	"github.com/hookgate/hookgate/repos"
)

// resolveRunAs gives each repository the account its commands run as: its own run_as, or
// the server's. An unknown user is an error, and so is a user the gateway cannot switch
// to (see switchUsersProblem). Naming the gateway's own user runs the
// commands as it, as without run_as: a way to exempt one repository from the default.
func (c *Config) resolveRunAs() []error {
	var errs []error
	accounts := map[string]*repos.Account{}
	lookUp := func(key, name string) *repos.Account {
		if a, ok := accounts[name]; ok {
			return a
		}
		a, err := lookUpAccount(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
		accounts[name] = a
		return a
	}
	if c.Server.RunAs != "" {
		lookUp("server.run_as", c.Server.RunAs)
	}
	for _, name := range c.RepoNames() {
		r := c.Repos[name]
		switch {
		case r.RunAs != "":
			r.runAs = lookUp("repos."+name+".run_as", r.RunAs)
		case c.Server.RunAs != "":
			r.runAs = accounts[c.Server.RunAs]
		}
	}
	return errs
}

// lookUpAccount finds a run_as user by name or numeric uid. It returns nil, and no error,
// for the gateway's own user and group: there is nothing to switch.
func lookUpAccount(name string) (*repos.Account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, numeric := strconv.ParseUint(name, 10, 32); numeric == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		var unknown user.UnknownUserError
		var unknownID user.UnknownUserIdError
		if errors.As(err, &unknown) || errors.As(err, &unknownID) {
			return nil, fmt.Errorf("run_as = %q: no such user on this system (create it, e.g. useradd --system --user-group %s)", name, name)
		}
		return nil, fmt.Errorf("run_as = %q: look up the user: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("run_as = %q: uid %s, gid %s: %w", name, u.Uid, u.Gid, err)
	}
	a := &repos.Account{Name: u.Username, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("run_as = %q: list the user's groups: %w", name, err)
	}
	for _, id := range ids {
		g, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("run_as = %q: group %s: %w", name, id, err)
		}
		a.Groups = append(a.Groups, uint32(g))
	}
	if a.UID == uint32(os.Geteuid()) && a.GID == uint32(os.Getegid()) {
		return nil, nil
	}
	if problem := switchUsersProblem(); problem != "" {
		return nil, fmt.Errorf("run_as = %q: %s; start hookgate as root (docs/operations.md, \"Running as a service\") or remove run_as", name, problem)
	}
	return a, nil
}
