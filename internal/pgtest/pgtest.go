// Package pgtest gives each test its own database in the throwaway PostgreSQL cluster that
// scripts/pgtest (and so .ci/run) starts and names in HOOKGATE_TEST_POSTGRES.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver the admin connection uses
)

// Env names the variable holding the cluster's address.
const Env = "HOOKGATE_TEST_POSTGRES"

// Enabled reports whether the PostgreSQL tests run. Without the variable they do not on a
// developer's machine, but under CI (CI set, as .ci/run does) t fails: a CI run must never
// pass by leaving PostgreSQL out.
func Enabled(t testing.TB) bool {
	t.Helper()
	if os.Getenv(Env) != "" {
		return true
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not set; .ci/run must start PostgreSQL (scripts/pgtest)", Env)
	}
	return false
}

var (
	adminOnce sync.Once
	admin     *sql.DB
	adminErr  error
)

// Database creates an empty database for t, dropped when t ends, and returns its address.
// It skips t when PostgreSQL tests do not run (see Enabled).
func Database(t testing.TB) string {
	t.Helper()
	if !Enabled(t) {
		t.Skipf("%s is not set; run the tests under scripts/pgtest to include PostgreSQL", Env)
	}
	base := os.Getenv(Env)
	adminOnce.Do(func() {
		admin, adminErr = sql.Open("pgx", base)
	})
	if adminErr != nil {
		t.Fatalf("pgtest: %v", adminErr)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", Env, err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	name := "test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}
