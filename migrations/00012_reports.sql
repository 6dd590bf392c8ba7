-- +goose Up
-- The forge reports' outbox (issue 22): one row per change of a reporting target's deploy
-- status, written in the transaction that changes it and sent by the node that runs the
-- deploy (reporter.Sender), with its last attempt. Never a token: the forge's name only.
CREATE TABLE reports (
    id          INTEGER PRIMARY KEY,
    deploy_id   INTEGER NOT NULL REFERENCES deploys (id) ON DELETE CASCADE,
    node        TEXT NOT NULL DEFAULT '',
    repo        TEXT NOT NULL,
    status      TEXT NOT NULL, -- the deploy's status this report tells
    result      TEXT NOT NULL DEFAULT 'pending' CHECK (result IN ('pending', 'sent', 'skipped', 'failed')),
    forge       TEXT NOT NULL DEFAULT '',
    endpoint    TEXT NOT NULL DEFAULT '', -- method and path of the last call, e.g. POST /repos/o/r/statuses/SHA
    state       TEXT NOT NULL DEFAULT '', -- the forge's word for status, e.g. success
    attempts    INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL,
    next_at     TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE INDEX reports_due ON reports (node, next_at) WHERE result = 'pending';
CREATE INDEX reports_deploy_id ON reports (deploy_id, id);

-- +goose Down
DROP TABLE reports;
