// send.go owns the requests tests make of a gateway: signed deliveries to its hooks and
// calls of its admin API.

package gatewaytest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/hookgate/hookgate/forge"
)

// Delivery is one request to the gateway's hook endpoint, signed as its forge signs.
type Delivery struct {
	Repo     string // the hook; default "site"
	Provider string // whose headers; default github
	Event    string // default push
	GUID     string // default a fresh one
	Body     []byte
	Secret   string            // default Secret
	Headers  map[string]string // set after signing; "" deletes
}

// Send posts d and returns the answer and its decoded JSON (nil when the body is empty).
func (g *Gateway) Send(d Delivery) (*http.Response, map[string]any) {
	g.t.Helper()
	if d.Repo == "" {
		d.Repo = "site"
	}
	if d.Event == "" {
		d.Event = "push"
	}
	if d.GUID == "" {
		d.GUID = NewGUID()
	}
	if d.Secret == "" {
		d.Secret = Secret
	}
	req, err := http.NewRequest(http.MethodPost, g.URL+"/hooks/"+d.Repo, bytes.NewReader(d.Body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/gatewaytest")
	forge.SetDeliveryHeaders(req.Header, d.Provider, d.Event, d.GUID, d.Body, []byte(d.Secret))
	for k, v := range d.Headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			g.t.Fatalf("hook answer %d is not JSON: %q", resp.StatusCode, raw)
		}
	}
	return resp, out
}

// HookAnswer is what the hook endpoint answered one delivery.
type HookAnswer struct {
	GUID       string
	HTTPStatus int
	DeliveryID int64  `json:"delivery_id"`
	DeployID   int64  `json:"deploy_id"`
	Status     string `json:"status"`
}

// Deliver signs body with secret and posts it to the hook of the gateway at addr like
// GitHub does.
func Deliver(t testing.TB, addr, hook, event, guid string, body, secret []byte) HookAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/hooks/"+hook, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/crash-test")
	forge.SetDeliveryHeaders(req.Header, forge.ProviderGitHub, event, guid, body, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := HookAnswer{GUID: guid, HTTPStatus: resp.StatusCode}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("hook answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return a
}

// API calls the admin API at url with token and decodes its JSON answer into out (when
// not nil); it returns the status.
func API(t testing.TB, method, url, token string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s answered %d, not JSON: %q", method, url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}
