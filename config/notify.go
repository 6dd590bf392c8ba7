// notify.go owns the [[notify]] and [[repos.NAME.notify]] targets: their checks and
// the notifier's view of them.

package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/hookgate/hookgate/notify"
)

// resolve reads the target's URL and secret and checks it. Errors never quote the URL: for
// Slack it is the credential.
func (n *NotifyConfig) resolve() error {
	var errs []error
	if !repoName.MatchString(n.Name) {
		errs = append(errs, errors.New("name is required: 1-100 letters, digits, '.', '_' or '-'"))
	}
	switch n.Type {
	case notify.KindWebhook, notify.KindSlack:
	case "":
		errs = append(errs, fmt.Errorf("type is required: %q or %q", notify.KindWebhook, notify.KindSlack))
	default:
		errs = append(errs, fmt.Errorf("type %q: use %q or %q", n.Type, notify.KindWebhook, notify.KindSlack))
	}
	switch {
	case (n.URL == "") == (n.URLEnv == ""):
		errs = append(errs, errors.New("set exactly one of url or url_env"))
	case n.URLEnv != "":
		if n.url = os.Getenv(n.URLEnv); n.url == "" {
			errs = append(errs, envUnset("url_env", n.URLEnv))
		}
	default:
		n.url = n.URL
	}
	if n.url != "" {
		u, err := url.Parse(n.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("the url is not an http:// or https:// URL"))
		}
	}
	switch {
	case n.Secret != "" && n.SecretEnv != "":
		errs = append(errs, errors.New("set secret or secret_env, not both"))
	case n.SecretEnv != "":
		if n.secret = []byte(os.Getenv(n.SecretEnv)); len(n.secret) == 0 {
			errs = append(errs, envUnset("secret_env", n.SecretEnv))
		}
	default:
		n.secret = []byte(n.Secret)
	}
	switch {
	case n.Type == notify.KindSlack && len(n.secret) > 0:
		errs = append(errs, errors.New("a slack target takes no secret: Slack does not verify signatures (its URL is the credential)"))
	case n.Type == notify.KindWebhook && len(n.secret) == 0 && n.SecretEnv == "":
		errs = append(errs, errors.New("a webhook target needs secret or secret_env, so the receiver can verify X-Hookgate-Signature-256"))
	}
	for _, e := range n.Events {
		if e != notify.EventFailure && e != notify.EventRecovery {
			errs = append(errs, fmt.Errorf("events: %q is not %q or %q", e, notify.EventFailure, notify.EventRecovery))
		}
	}
	return errors.Join(errs...)
}

// target is the notifier's view of n.
func (n *NotifyConfig) target() notify.Target {
	return notify.Target{Name: n.Name, Kind: n.Type, URL: n.url, Secret: n.secret, Events: n.Events}
}

// NotifyTargets are the notifier's targets: global ones and each repository's own.
func (c *Config) NotifyTargets() (global []notify.Target, perRepo map[string][]notify.Target) {
	for _, n := range c.Notify {
		global = append(global, n.target())
	}
	perRepo = map[string][]notify.Target{}
	for name, r := range c.Repos {
		for _, n := range r.Notify {
			perRepo[name] = append(perRepo[name], n.target())
		}
	}
	return global, perRepo
}
