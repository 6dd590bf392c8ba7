// This file owns the credentials for origin (HTTPS token, SSH key).
package checkout

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// authFor picks credentials by the URL's protocol, since go-git rejects an SSH
// auth method on an HTTPS transport and the other way round.
func authFor(ctx context.Context, rawURL string, s Spec) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse origin url: %w", err)
	}
	switch ep.Protocol {
	case "ssh":
		if s.SSHKey == "" {
			return nil, nil
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeysFromFile(user, s.SSHKey, "")
		if err != nil {
			return nil, fmt.Errorf("load ssh key %s: %w", s.SSHKey, err)
		}
		var files []string
		if s.KnownHosts != "" {
			files = []string{s.KnownHosts}
		}
		db, err := gitssh.NewKnownHostsDb(files...)
		if err != nil {
			return nil, fmt.Errorf("load known_hosts: %w", err)
		}
		keys.HostKeyCallback = db.HostKeyCallback()
		port := ep.Port
		if port == 0 {
			port = 22
		}
		timeout := sshDialTimeout
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
			timeout = max(time.Until(dl), time.Millisecond)
		}
		return &sshAuth{
			PublicKeys: keys,
			// Without these, a server offering an RSA key first fails against an
			// ed25519 known_hosts line; go-git only fills them when it owns the callback.
			algorithms: db.HostKeyAlgorithms(net.JoinHostPort(ep.Host, strconv.Itoa(port))),
			timeout:    timeout,
		}, nil
	case "http", "https":
		if s.Token == "" {
			return nil, nil
		}
		return &githttp.BasicAuth{Username: "x-access-token", Password: s.Token}, nil
	}
	return nil, nil
}

// sshAuth adds a dial timeout and host key algorithms to go-git's public key auth.
type sshAuth struct {
	*gitssh.PublicKeys
	algorithms []string
	timeout    time.Duration
}

// ClientConfig returns the SSH client configuration with the dial timeout set.
func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	cfg, err := a.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = a.timeout
	if len(a.algorithms) > 0 {
		cfg.HostKeyAlgorithms = a.algorithms
	}
	return cfg, nil
}
