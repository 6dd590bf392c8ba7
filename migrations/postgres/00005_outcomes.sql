-- +goose Up
-- PostgreSQL's copy of ../00005_outcomes.sql: a deploy's reason and target commit, and pins.
ALTER TABLE deploys ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE deploys ADD COLUMN target_commit TEXT NOT NULL DEFAULT '';

CREATE TABLE pins (
    repo        TEXT PRIMARY KEY,
    commit_hash TEXT NOT NULL,
    pinned_by   TEXT NOT NULL CHECK (pinned_by IN ('rollback', 'pin')),
    pinned_at   TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE pins;
ALTER TABLE deploys DROP COLUMN target_commit;
ALTER TABLE deploys DROP COLUMN reason;
