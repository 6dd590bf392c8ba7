-- +goose Up
-- The gateways ("nodes") that work this database, each with the repositories it deploys.
-- Numbered 00007: 00005 and 00006 are taken by work on other branches.
CREATE TABLE nodes (
    name       TEXT PRIMARY KEY,
    version    TEXT NOT NULL DEFAULT '',
    started_at TIMESTAMP NOT NULL,
    last_seen  TIMESTAMP NOT NULL,
    repos      TEXT NOT NULL DEFAULT '[]' -- a JSON array of repository names
);

-- +goose Down
DROP TABLE nodes;
