// health.go owns the [repos.NAME.health] table: its defaults and its checks.

package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hookgate/hookgate/repos"
)

// HealthConfig is one [repos.NAME.health] table: the check that proves a deploy worked.
type HealthConfig struct {
	URL          string `toml:"url"`
	Command      string `toml:"command"`
	ExpectStatus []int  `toml:"expect_status"` // default: any 2xx
	ExpectBody   string `toml:"expect_body"`
	Host         string `toml:"host"`
	ProbeTimeout string `toml:"probe_timeout"`
	StartDelay   string `toml:"start_delay"`
	Interval     string `toml:"interval"`
	Deadline     string `toml:"deadline"`
	HealthyAfter *int   `toml:"healthy_after"` // a pointer, so that 0 is refused rather than read as unset
	OnFailure    string `toml:"on_failure"`

	health repos.Health
}

// resolve checks h and fills h.health. Its errors name the key in TOML terms, below
// table (repos.NAME.health).
func (h *HealthConfig) resolve(table string) error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", table, key, fmt.Sprintf(format, args...)))
	}
	v := repos.Health{URL: h.URL, Command: h.Command, ExpectStatus: h.ExpectStatus, ExpectBody: h.ExpectBody, Host: h.Host}
	switch {
	case h.URL != "" && h.Command != "":
		errs = append(errs, fmt.Errorf("%s: set url or command, not both", table))
	case h.URL == "" && strings.TrimSpace(h.Command) == "":
		errs = append(errs, fmt.Errorf("%s: set url (an http or https address to GET) or command (run with sh -c in the checkout)", table))
	case h.URL != "":
		u, err := url.Parse(h.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("url", "%q is not an http or https URL such as http://127.0.0.1:3000/healthz", h.URL)
		} else if u.User != nil {
			add("url", "credentials in the URL are not supported (they would be shown with the probes)")
		}
	}
	if h.Command != "" && (len(h.ExpectStatus) > 0 || h.ExpectBody != "" || h.Host != "") {
		errs = append(errs, fmt.Errorf("%s: expect_status, expect_body and host apply to url only; a command passes when it exits 0", table))
	}
	for i, s := range h.ExpectStatus {
		if s < 100 || s > 599 {
			add(fmt.Sprintf("expect_status[%d]", i), "%d is not an HTTP status (100-599)", s)
		}
	}
	if strings.ContainsAny(h.Host, " \t\r\n/") {
		add("host", "%q is not a host name such as site.example.com", h.Host)
	}
	durations := []struct {
		key, value, def string
		min             time.Duration
		zero            bool
		to              *time.Duration
	}{
		{"probe_timeout", h.ProbeTimeout, "5s", 0, false, &v.ProbeTimeout},
		{"start_delay", h.StartDelay, "0s", 0, true, &v.StartDelay},
		{"interval", h.Interval, "2s", 10 * time.Millisecond, false, &v.Interval},
		{"deadline", h.Deadline, "60s", 0, false, &v.Deadline},
	}
	for _, d := range durations {
		s := d.value
		if s == "" {
			s = d.def
		}
		if d.zero && (s == "0" || s == "0s") {
			continue
		}
		got, err := parseDuration(s)
		switch {
		case err != nil:
			add(d.key, "%v", err)
		case got < d.min:
			add(d.key, "%q: at least %s", s, d.min)
		default:
			*d.to = got
		}
	}
	if v.Deadline > 0 && v.StartDelay >= v.Deadline {
		add("start_delay", "%s leaves no time before deadline %s", v.StartDelay, v.Deadline)
	}
	v.HealthyAfter = 1
	if h.HealthyAfter != nil {
		if *h.HealthyAfter < 1 {
			add("healthy_after", "%d: at least 1 (the consecutive passing probes that make a deploy healthy)", *h.HealthyAfter)
		}
		v.HealthyAfter = *h.HealthyAfter
	}
	switch h.OnFailure {
	case "":
		v.OnFailure = repos.HealthRollback
	case repos.HealthRollback, repos.HealthFail:
		v.OnFailure = h.OnFailure
	default:
		add("on_failure", "%q: use %q (the default) or %q", h.OnFailure, repos.HealthRollback, repos.HealthFail)
	}
	h.health = v
	return errors.Join(errs...)
}
