// reload.go owns what a reload may not change: the settings that keep their value until
// the gateway restarts.

package config

import "slices"

// KeepRestartSettings gives c the values old has of the settings a reload cannot change
// (those RestartRequired names), so the configuration in force says what runs.
func (c *Config) KeepRestartSettings(old *Config) {
	cfg := c
	cfg.Server.Listen, cfg.Server.Database = old.Server.Listen, old.Server.Database
	cfg.Server.DatabaseEnv, cfg.Server.database = old.Server.DatabaseEnv, old.Server.database
	cfg.Server.Node = old.Server.Node
	cfg.Server.Workers, cfg.Server.TrustedProxies = old.Server.Workers, old.Server.TrustedProxies
	cfg.Server.MaxClones = old.Server.MaxClones
	cfg.Server.MaxConnections, cfg.Server.MaxConnectionsPerClient = old.Server.MaxConnections, old.Server.MaxConnectionsPerClient
	cfg.Server.MaxHeaderBytes, cfg.Server.maxHeaderBytes = old.Server.MaxHeaderBytes, old.Server.maxHeaderBytes
}

// RestartRequired names the restart-only settings that differ between the configuration
// in force and the file.
func RestartRequired(old, file ServerConfig) []string {
	out := []string{}
	if old.Listen != file.Listen {
		out = append(out, "server.listen")
	}
	if old.Database != file.Database || old.DatabaseEnv != file.DatabaseEnv || old.database != file.database {
		out = append(out, "server.database")
	}
	if old.Node != file.Node {
		out = append(out, "server.node")
	}
	if old.synchronous != file.synchronous {
		out = append(out, "server.sqlite_synchronous")
	}
	if old.Workers != file.Workers {
		out = append(out, "server.workers")
	}
	if old.MaxClones != file.MaxClones {
		out = append(out, "server.max_clones")
	}
	if !slices.Equal(old.TrustedProxies, file.TrustedProxies) {
		out = append(out, "server.trusted_proxies")
	}
	if old.MaxConnections != file.MaxConnections {
		out = append(out, "server.max_connections")
	}
	if old.MaxConnectionsPerClient != file.MaxConnectionsPerClient {
		out = append(out, "server.max_connections_per_client")
	}
	if old.maxHeaderBytes != file.maxHeaderBytes {
		out = append(out, "server.max_header_bytes")
	}
	return out
}
