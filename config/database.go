// database.go owns [server] database, database_env and node.

package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hookgate/hookgate/store"
)

// defaultDatabase is the SQLite file used when neither database nor database_env is set.
const defaultDatabase = "data/hookgate.db"

// resolveDatabase reads database or database_env into s.database: a SQLite file's path,
// anchored at dir, or a PostgreSQL URL. Errors never quote a URL, which may hold a password.
func (s *ServerConfig) resolveDatabase(dir string) error {
	v := s.Database
	switch {
	case s.Database != "" && s.DatabaseEnv != "":
		return errors.New("server: set database or database_env, not both")
	case s.DatabaseEnv != "":
		if v = os.Getenv(s.DatabaseEnv); v == "" {
			return envUnset("server.database_env", s.DatabaseEnv)
		}
	case v == "":
		v = defaultDatabase
	}
	if store.IsPostgres(v) {
		if err := store.CheckPostgresURL(v); err != nil {
			return fmt.Errorf("server.database: %w", err)
		}
		s.database = v
		return nil
	}
	if strings.Contains(v, "://") {
		return errors.New("server.database: neither a file path nor a postgres:// or postgresql:// URL")
	}
	s.database = anchor(dir, v)
	if s.DatabaseEnv == "" {
		s.Database = s.database
	}
	return nil
}

// Database is the database the gateway opens: a SQLite file's path or a PostgreSQL URL.
// Never log it as it is: see store.Redact.
func (c *Config) Database() string { return c.Server.database }

// resolveNode defaults the node's name to the host name and checks it.
func (s *ServerConfig) resolveNode() error {
	if s.Node == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("server.node: not set, and the host name is unknown: %w", err)
		}
		s.Node = strings.SplitN(host, ".", 2)[0]
	}
	if !store.ValidNodeName(s.Node) {
		return fmt.Errorf("server.node: %q is not a name (letters, digits, '.', '_', '-'; at most 63)", s.Node)
	}
	return nil
}
