-- +goose Up
-- PostgreSQL's copy of ../00015_checks.sql: a waiting deploy's next look at its checks.
ALTER TABLE deploys ADD COLUMN next_check_at TIMESTAMPTZ;
ALTER TABLE deploys ADD COLUMN check_polls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deploys ADD COLUMN waiting_for TEXT NOT NULL DEFAULT '';
ALTER TABLE deploys ADD COLUMN forge_repo TEXT NOT NULL DEFAULT '';
CREATE INDEX deploys_waiting ON deploys (node, next_check_at) WHERE status = 'waiting';
