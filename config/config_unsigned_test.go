package config

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/server"
)

const minimalRepo = "[repos.a]\nsecret = \"x\"\npath = \"/x\"\n"

// TestUnsignedConfig: the unsigned_* keys default to the server's budget and a week's
// retention, take the file's values, and refuse bad ones naming the key.
func TestUnsignedConfig(t *testing.T) {
	cfg, err := Load(writeConfig(t, minimalRepo))
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.UnsignedBudget(); b != server.DefaultUnsignedBudget || cfg.Server.unsignedRetention != 7*24*time.Hour || cfg.Server.retention != 0 {
		t.Fatalf("defaults: budget %+v, unsigned_retention %s, retention %s", b, cfg.Server.unsignedRetention, cfg.Server.retention)
	}
	cfg, err = Load(writeConfig(t, "[server]\nunsigned_records_per_minute = 0\nunsigned_records_per_window = 50\n"+
		"unsigned_records_window = \"1h\"\nunsigned_retention = \"0\"\n"+minimalRepo))
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.UnsignedBudget(); b != (server.UnsignedBudget{PerMinute: 0, PerWindow: 50, Window: time.Hour}) || cfg.Server.unsignedRetention != 0 {
		t.Fatalf("from the file: budget %+v, unsigned_retention %s", b, cfg.Server.unsignedRetention)
	}
	for _, tc := range []struct{ body, want string }{
		{"unsigned_records_per_minute = -1", "server.unsigned_records_per_minute must be 0 or more"},
		{"unsigned_records_per_window = -5", "server.unsigned_records_per_window must be 0 or more"},
		{"unsigned_records_window = \"30s\"", "server.unsigned_records_window \"30s\": at least 1m"},
		{"unsigned_records_window = \"daily\"", "server.unsigned_records_window"},
		{"unsigned_retention = \"forever\"", "server.unsigned_retention"},
	} {
		t.Run(tc.want, func(t *testing.T) { assertConfigError(t, "[server]\n"+tc.body+"\n"+minimalRepo, []string{tc.want}) })
	}
}
