package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
)

// TestApplySwapsHooksAndToken: Apply (what a reload calls) changes which hooks answer,
// with which secret, and which admin token opens the API, for the next request.
func TestApplySwapsHooksAndToken(t *testing.T) {
	g := newGateway(t, func(o *server.Options) { o.AdminToken = "first-token" })
	push := testkit.Push(t, "refs/heads/main", "", g.origin.Head(), "binkkatal/sample_app")
	if resp, _ := g.send(delivery{event: "push", guid: "before", body: push}); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("before Apply: %d", resp.StatusCode)
	}
	err := g.srv.Apply(server.Settings{
		Hooks:      []server.Hook{{Name: "site", Secret: []byte("rotated-secret"), Branch: "main", Path: g.checkout}},
		MaxBody:    maxBody,
		AdminToken: "second-token",
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := g.send(delivery{event: "push", guid: "old-secret", body: push}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the old secret after rotation: %d %v", resp.StatusCode, body)
	}
	if resp, _ := g.send(delivery{event: "push", guid: "new-secret", body: push,
		headers: map[string]string{"X-Hub-Signature-256": forge.Sign(push, []byte("rotated-secret"))}}); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the new secret: %d", resp.StatusCode)
	}
	if code := g.api("GET", "/api/v1/repos", "first-token", nil); code != http.StatusUnauthorized {
		t.Fatalf("the old admin token: %d", code)
	}
	if code := g.api("GET", "/api/v1/repos", "second-token", nil); code != http.StatusOK {
		t.Fatalf("the new admin token: %d", code)
	}
	if err := g.srv.Apply(server.Settings{Hooks: []server.Hook{{Name: "x", Provider: "bitbucket"}}, MaxBody: maxBody}); err == nil {
		t.Fatal("Apply took an unknown provider")
	}
	if code := g.api("GET", "/api/v1/repos", "second-token", nil); code != http.StatusOK {
		t.Fatalf("a refused Apply changed the token: %d", code)
	}
}

// TestReloadAPI: POST /api/v1/reload answers with the reload's report, 422 for a refused
// file, 501 when the gateway has no file to reload.
func TestReloadAPI(t *testing.T) {
	var result error
	report := server.ReloadReport{Added: []string{"api"}, Removed: []string{}, Changed: []string{"site"}, RestartRequired: []string{"server.listen"}}
	g := newGateway(t, func(o *server.Options) {
		o.Reload = func(context.Context) (server.ReloadReport, error) { return report, result }
	})
	var ok struct {
		Reloaded bool                `json:"reloaded"`
		Changes  server.ReloadReport `json:"changes"`
	}
	if code := g.api("POST", "/api/v1/reload", "", &ok); code != http.StatusOK || !ok.Reloaded || !reflect.DeepEqual(ok.Changes, report) {
		t.Fatalf("reload: %d %+v", code, ok)
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	result = fmt.Errorf("%w: config.toml: line 3, column 1: unknown key \"sever\"", server.ErrInvalidConfig)
	if code := g.api("POST", "/api/v1/reload", "", &e); code != http.StatusUnprocessableEntity || e.Error.Code != "invalid_config" ||
		e.Error.Message != result.Error() {
		t.Fatalf("refused reload: %d %+v", code, e)
	}
	result = errors.New("disk on fire")
	if code := g.api("POST", "/api/v1/reload", "", &e); code != http.StatusInternalServerError || e.Error.Message == result.Error() {
		t.Fatalf("failed reload: %d %+v", code, e)
	}
	if code := g.api("GET", "/api/v1/reload", "", nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /api/v1/reload: %d", code)
	}
	plain := newGateway(t)
	if code := plain.api("POST", "/api/v1/reload", "", &e); code != http.StatusNotImplemented {
		t.Fatalf("reload without a file: %d", code)
	}
}
