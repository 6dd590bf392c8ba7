-- +goose Up
-- Every notification the gateway sent or gave up on, so "were we told?" has an answer too.
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    deploy_id   INTEGER REFERENCES deploys (id) ON DELETE SET NULL,
    repo        TEXT NOT NULL,
    target      TEXT NOT NULL, -- the target's name, never its URL (a Slack URL is a secret)
    kind        TEXT NOT NULL CHECK (kind IN ('webhook', 'slack')),
    event       TEXT NOT NULL CHECK (event IN ('failure', 'recovery')),
    status      TEXT NOT NULL CHECK (status IN ('sent', 'failed', 'dropped')),
    attempts    INTEGER NOT NULL,
    http_status INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL
);
CREATE INDEX notifications_deploy_id ON notifications (deploy_id);
CREATE INDEX notifications_repo_id ON notifications (repo, id);
CREATE INDEX notifications_created_at ON notifications (created_at);

-- +goose Down
DROP TABLE notifications;
