-- +goose Up
-- Why a deploy exists beyond its trigger: a reconcile says what drifted, a rollback what
-- it moves back to. Empty for pushes.
ALTER TABLE deploys ADD COLUMN reason TEXT NOT NULL DEFAULT '';
-- The commit a rollback moves the checkout to; empty: the branch head as fetched.
ALTER TABLE deploys ADD COLUMN target_commit TEXT NOT NULL DEFAULT '';

-- A pinned repository stays at commit: pushes are recorded but ignored, reconcile queues
-- nothing, and every deploy (a recovery after a crash too) moves to the pinned commit.
CREATE TABLE pins (
    repo        TEXT PRIMARY KEY,
    commit_hash TEXT NOT NULL,
    pinned_by   TEXT NOT NULL CHECK (pinned_by IN ('rollback', 'pin')),
    pinned_at   TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE pins;
ALTER TABLE deploys DROP COLUMN target_commit;
ALTER TABLE deploys DROP COLUMN reason;
