-- +goose Up
-- The gateways ("nodes") that work this database, each with the repositories it deploys.
-- PostgreSQL's copy of ../00007_nodes.sql.
CREATE TABLE nodes (
    name       TEXT PRIMARY KEY,
    version    TEXT NOT NULL DEFAULT '',
    started_at TIMESTAMPTZ NOT NULL,
    last_seen  TIMESTAMPTZ NOT NULL,
    repos      TEXT NOT NULL DEFAULT '[]' -- a JSON array of repository names
);

-- +goose Down
DROP TABLE nodes;
