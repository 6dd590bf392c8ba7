// values.go owns the resolved values other packages read: what Load worked out from the
// file (sizes, durations, secrets) and keeps unexported so nothing that prints a Config
// prints a secret.

package config

import (
	"time"

	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// MaxBody is max_body in bytes.
func (c *Config) MaxBody() int64 { return c.maxBody }

// MaxBodyMemory is max_body_memory in bytes (0: server.DefaultMaxBodyMemory, or max_body
// when larger).
func (c *Config) MaxBodyMemory() int64 { return c.maxBodyMemory }

// AdminToken is the token admin_token or admin_token_env gives ("" for none).
func (c *Config) AdminToken() string { return c.adminToken }

// Synchronous is sqlite_synchronous.
func (s *ServerConfig) Synchronous() store.Synchronous { return s.synchronous }

// KeepFor is retention: how long history is kept (0: everything).
func (s *ServerConfig) KeepFor() time.Duration { return s.retention }

// KeepUnsignedFor is unsigned_retention: how long deliveries without a valid signature
// are kept (0: as retention).
func (s *ServerConfig) KeepUnsignedFor() time.Duration { return s.unsignedRetention }

// ShutdownWait is shutdown_timeout: how long a shutdown waits for running deploys.
func (s *ServerConfig) ShutdownWait() time.Duration { return s.shutdownTimeout }

// HeaderBytes is max_header_bytes in bytes (0: server.DefaultMaxHeaderBytes).
func (s *ServerConfig) HeaderBytes() int { return s.maxHeaderBytes }

// ResolvedSecret is the hook's secret, as secret, secret_env or secret_file gives it.
func (r *RepoConfig) ResolvedSecret() []byte { return r.secret }

// ResolvedSecret is the hook's secret, as secret, secret_env or secret_file gives it.
func (h *HookConfig) ResolvedSecret() []byte { return h.secret }

// UnsignedBudget is what [server] unsigned_records_* allow.
func (c *Config) UnsignedBudget() server.UnsignedBudget {
	s := c.Server
	return server.UnsignedBudget{PerMinute: s.UnsignedRecordsPerMinute, PerWindow: s.UnsignedRecordsPerWindow, Window: s.unsignedWindow}
}
