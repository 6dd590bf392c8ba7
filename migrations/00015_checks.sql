-- +goose Up
-- Issue 22: require_checks: a deploy waiting for its commit's checks on the forge keeps
-- when they are looked at next, how many looks there were (the backoff) and what it still
-- waits for (shown on the pages and in the API). The commit is its to_commit.
ALTER TABLE deploys ADD COLUMN next_check_at TIMESTAMP;
ALTER TABLE deploys ADD COLUMN check_polls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deploys ADD COLUMN waiting_for TEXT NOT NULL DEFAULT '';
-- The forge's repository the deploy's reports go to: the newest joined delivery's payload
-- repository (GitHub/Gitea full_name, GitLab project.id); '' takes the target's repository.
ALTER TABLE deploys ADD COLUMN forge_repo TEXT NOT NULL DEFAULT '';
CREATE INDEX deploys_waiting ON deploys (node, next_check_at) WHERE status = 'waiting';
